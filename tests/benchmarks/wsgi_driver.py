"""Drive the inference server's Flask app in process: POST /score, N times, through its WSGI entry.

    .venv-scoring/bin/python tests/benchmarks/wsgi_driver.py ENTRY_SCRIPT MODEL_DIR ROWS REQUESTS
        [--digest SHA256] [--api-key KEY] [--write-from N] [--simdjson-from BYTES]
        [--warm-up 50] [--time-batches]

Run by bench_instructions.py, in the scoring environment: the server's own app
(`azureml_inference_server_http.server.entry`), its before/after-request hooks, the entry
script's init() and run(), the same request as the load benchmark; no sockets, no gunicorn
(their work is the same whatever the script does). Under callgrind it counts instructions; with
--time-batches it times the requests in batches of 100 and prints the least CPU time a request
took in a batch (`CPU per request: … us`, on stderr): the minimum is what a request costs when
nothing else takes the machine. The server's log goes to a temporary file.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable
from typing import Any

# The diabetes example's first bundled row, as bench_scoring.py sends it.
ROW = [
    0.0380759064334241, 0.0506801187398187, 0.0616962065186885, 0.0218723549949558,
    -0.0442234984244697, -0.0348207628376986, -0.0434008456520269, -0.00259226199818282,
    0.0199084208763183, -0.0176461251598083,
]  # fmt: skip


_BATCH = 100  # requests timed together with --time-batches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("entry_script")
    parser.add_argument("model_dir")
    parser.add_argument("rows", type=int)
    parser.add_argument("requests", type=int)
    parser.add_argument("--digest")
    parser.add_argument("--api-key")
    parser.add_argument("--write-from", type=int, help="override the script's _WRITE_RESULT_FROM")
    parser.add_argument(
        "--simdjson-from", type=int, help="override scoring.schema's _SIMDJSON_FROM_BYTES"
    )
    parser.add_argument(
        "--time-batches", action="store_true", help="print the least CPU time per request"
    )
    parser.add_argument("--warm-up", type=int, default=50)
    args = parser.parse_args()
    api_root = tempfile.mkdtemp(prefix="wsgi-driver-")
    os.environ.update(
        {
            # One BLAS thread: under valgrind, OpenBLAS's idle worker thread spins in the slices
            # valgrind gives it, adding a random ~25,000 instructions a request that a real
            # worker never spends (its second thread shows 0 CPU in /proc during load).
            "OPENBLAS_NUM_THREADS": "1",
            "AZUREML_MODEL_DIR": args.model_dir,
            "AML_APP_ROOT": api_root,
            "AZUREML_ENTRY_SCRIPT": args.entry_script,
            "SCORING_TIMEOUT_MS": "600000",
        }
    )
    if args.api_key:
        os.environ["SCORING_API_KEY"] = args.api_key
    if args.digest:
        os.environ["MODEL_SHA256"] = args.digest
    sys.stdout = open(os.path.join(api_root, "server.log"), "w")  # noqa: SIM115 - for the run
    from azureml_inference_server_http.server.entry import app

    if args.write_from is not None:
        # run()'s globals are the entry script's module (the server loads it by path).
        app.azml_blueprint.user_script.get_run_function().__globals__["_WRITE_RESULT_FROM"] = (
            args.write_from
        )
    if args.simdjson_from is not None:
        # The script imported the scoring package beside it (sys.path), so this is its module.
        sys.modules["scoring.schema"]._SIMDJSON_FROM_BYTES = args.simdjson_from
    body = json.dumps({"data": [ROW] * args.rows}).encode()
    headers = {"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body))}
    if args.api_key:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {args.api_key}"
    statuses: list[str] = []

    def start_response(status: str, _headers: Any, _exc_info: Any = None) -> None:
        statuses.append(status)

    def request() -> None:
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": "/score", "SCRIPT_NAME": "",
            "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "5001",
            "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1:5001",
            "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
            "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False,
            "wsgi.version": (1, 0), **headers,
        }  # fmt: skip
        response: Iterable[bytes] = app.wsgi_app(environ, start_response)
        b"".join(response)
        getattr(response, "close", lambda: None)()

    for _ in range(args.warm_up):
        request()
    if not args.time_batches:
        for _ in range(args.requests):
            request()
    else:
        least = float("inf")
        for start in range(0, args.requests, _BATCH):
            batch = min(_BATCH, args.requests - start)
            began = time.process_time()
            for _ in range(batch):
                request()
            least = min(least, (time.process_time() - began) / batch)
        sys.stderr.write(f"CPU per request: {least * 1e6:.2f} us\n")
    if any(not status.startswith("200") for status in statuses):
        sys.stderr.write(f"not every request answered 200: {sorted(set(statuses))}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
