"""Entry script for the Azure ML inference server (`azmlinfsrv`): the online scoring contract.

    POST /score   {"data": [[one number per feature], ...]}  ->  200 {"result": [outputs]}

A regressor answers one number per row, a classifier one list of class probabilities per row;
the features and outputs are the model's contract, read from its bundle (`contract.json`).

`init()` verifies the model bundle against its manifest and the registered digest
(MODEL_SHA256) and refuses to serve on any mismatch, so the server never becomes healthy with a
tampered model. `run()` gets the raw request (`@rawhttp`) and answers every client mistake with
a 4xx and a JSON body `{"message": ...}` naming the problem; the contract lives in
`scoring/schema.py`, the settings in `scoring/settings.py`, the reference in docs/scoring.md.

Cold start is what a scale-out or a restart waits for, so this module imports only the standard
library, numpy, flask (already loaded by the server) and the small `scoring` modules; bundles
with a verified fast path are served from their coefficients without importing scikit-learn
(the log line says which path serves), and the data collection SDK runs in a process of its
own (scoring/collection.py), started by init() and not waited for.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The server loads this file by path; make the `scoring` package beside it importable (the
# folder that holds scoring/ is AML_APP_ROOT's parent locally, and the code root on Azure ML).
_CODE_ROOT = str(Path(__file__).resolve().parent.parent)
if _CODE_ROOT not in sys.path:
    sys.path.append(_CODE_ROOT)

import gc  # noqa: E402
import hmac  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable, Mapping  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

import numpy as np  # noqa: E402
from flask import Request, Response, g  # noqa: E402
from werkzeug.http import parse_options_header  # noqa: E402

from scoring.collection import DataCollection  # noqa: E402
from scoring.model_bundle import SERVING_NUMPY, expected_digest_from_env  # noqa: E402
from scoring.runtime import LoadedModel, ModelLoadError, load_model, model_dir_from_env  # noqa: E402
from scoring.schema import (  # noqa: E402
    JSON_MEDIA_TYPE,
    METHOD_NOT_ALLOWED,
    OUTPUT_FIELD,
    PAYLOAD_TOO_LARGE,
    UNAUTHORIZED,
    UNSUPPORTED_MEDIA_TYPE,
    InputError,
    parse_request_body,
    result_body,
)
from scoring.settings import ScoringSettings, SettingsError, load_settings  # noqa: E402

_F = TypeVar("_F", bound=Callable[..., Any])

try:
    from azureml_inference_server_http.api.aml_request import rawhttp
except ImportError:  # outside the server (unit tests, tools) there is nothing to flag

    def rawhttp(func: _F) -> _F:
        """Stand-in for the server's decorator, which only marks run() as raw-request."""
        return func


_LOG = logging.getLogger("azmlinfsrv.score")
# The server logs this for every answer a script returns as a Response
# (azureml_inference_server_http/server/routes.py, handle_score). From this script it only says
# which of two serialisers wrote the answer (see run()): a line per request carrying nothing,
# ~10 µs of a worker's CPU. init() filters that one message out of the server's logger.
SERVER_RESPONSE_NOTICE = "run() output is HTTP Response"
SERVER_LOGGER = "azmlinfsrv"


class _WithoutResponseNotice(logging.Filter):
    """Drops the server's per-request SERVER_RESPONSE_NOTICE; every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != SERVER_RESPONSE_NOTICE


REQUEST_ID_HEADER = "x-request-id"
# The server's AMLResponse sets it on every answer it builds from a returned dict
# (azureml_inference_server_http/api/aml_response.py); answers written here carry it too.
RUN_FAILED_HEADER = "x-ms-run-function-failed"
# Results of this many values or more are written here by orjson and returned as a Response;
# smaller ones go back as a dict for the server's json.dumps (~0.6 µs a value), the cheaper
# path below it: a returned Response costs the server a LogRecord (filtered, see init()).
# Instructions a request through the server's app (callgrind): the same at 4 values (1.121M),
# the dict cheaper below (2 values: 1.095M against 1.117M written), the written answer cheaper
# above (16 values: ~1.20M against ~1.29M; tests/benchmarks/bench_instructions.py).
_WRITE_RESULT_FROM = 4
_MAX_REQUEST_ID = 100  # the server answers 431 above this, before run() is called
_CHUNK = 64 * 1024
# Bodies rejected early are still read (up to this much) before answering: closing a socket
# with unread data makes the kernel send a reset, and the client may lose the 4xx answer.
_DRAIN_LIMIT = 16 * 1024 * 1024


class _Service:
    # A plain class, not a dataclass: the server imports this file without registering it in
    # sys.modules, and dataclasses look their module up there.
    __slots__ = ("collection", "model", "settings")

    def __init__(
        self, settings: ScoringSettings, model: LoadedModel, collection: DataCollection | None
    ) -> None:
        self.settings = settings
        self.model = model
        self.collection = collection


_service: _Service | None = None


def init() -> None:
    """Verify and load the model once per worker; raise (and so fail the server) on mismatch."""
    global _service
    started = time.perf_counter()
    expected_digest = expected_digest_from_env()
    try:
        settings = load_settings()
        model = load_model(model_dir_from_env(), expected_digest)
    except (SettingsError, ModelLoadError) as error:
        _LOG.critical("scoring init failed, refusing to serve: %s", error)
        raise
    # For the worker's life (it runs this script alone): LoadedModel.score expects overflow
    # from absurd inputs and answers it with 400; entering np.errstate for each request would
    # cost ~1% of a one-row request's CPU.
    np.seterr(all="ignore")
    server_log = logging.getLogger(SERVER_LOGGER)
    if not any(isinstance(f, _WithoutResponseNotice) for f in server_log.filters):
        server_log.addFilter(_WithoutResponseNotice())
    # Everything loaded so far lives as long as the worker: keep it out of the garbage
    # collector's scans, which otherwise show up as latency spikes (gc.freeze, Python's gc
    # docs). Only the young generations are collected first: a full collection scans the
    # server's whole heap (~80,000 objects), tens of milliseconds of every cold start, to free a
    # few dozen.
    gc.collect(1)
    gc.freeze()
    collection = None
    if settings.collect:
        collection = DataCollection(
            settings.collect_dir,
            features=model.contract.features,
            outputs=model.contract.outputs,
        )
        collection.start()
    _service = _Service(settings=settings, model=model, collection=collection)
    if expected_digest is None:
        _LOG.warning(
            "MODEL_SHA256 is not set: the bundle was checked against its own manifest only"
        )
    _LOG.info(
        "model bundle %s verified (digest %s); model %s (%s, %d features) served by %s; "
        "max_rows=%d max_body_bytes=%d auth=%s collection=%s; init took %.0f ms",
        model.bundle,
        model.digest[:12],
        model.contract.model,
        model.contract.task,
        model.contract.n_features,
        "numpy (verified fast path)"
        if model.contract.serving == SERVING_NUMPY
        else "the estimator (scikit-learn)",
        settings.max_rows,
        settings.max_body_bytes,
        "on" if settings.auth_enabled else "off",
        "on" if collection else "off",
        (time.perf_counter() - started) * 1000,
    )


@rawhttp
def run(request: Request) -> Response | dict[str, list[Any]]:
    """Score one raw HTTP request; every client mistake is a 4xx with a JSON message.

    Returns the result as a dict (the server answers 200 with it as JSON) or, for larger
    results, as the same JSON already written (`scoring.schema.result_body`); a JSON Response
    with the 4xx status otherwise.
    """
    started = time.perf_counter()
    environ = request.environ
    service = _service
    if service is None:  # init() failed, so the server is exiting; never reached on Azure ML
        return _json(503, {"message": "the model is not loaded"}, _request_id(environ))
    body = _Body(environ)
    try:
        matrix = _validated_rows(environ, body, service)
        predictions = service.model.score(matrix)
    except InputError as error:
        body.drain()
        request_id = _request_id(environ)
        _LOG.info(
            "score %s%s status=%d rejected: %s",
            request_id,
            _client_id_suffix(environ),
            error.status,
            error.message,
        )
        return _json(error.status, {"message": error.message}, request_id, error.headers)
    if service.collection is not None or service.settings.log_all_requests:
        # The id the server echoes in x-request-id: the collected rows' correlation id.
        request_id = _request_id(environ)
        if service.collection is not None:
            service.collection.submit(matrix, predictions, request_id)
        if service.settings.log_all_requests:
            _LOG.info(
                "score %s%s status=200 rows=%d ms=%.2f",
                request_id,
                _client_id_suffix(environ),
                len(predictions),
                (time.perf_counter() - started) * 1000,
            )
    if predictions.size >= _WRITE_RESULT_FROM:
        encoded = result_body(predictions)
        if encoded is not None:
            return _response(200, encoded)
    # A dict: the server serialises it (json.dumps, ~0.6 µs a value) into the same bytes.
    return {OUTPUT_FIELD: predictions.tolist()}


# The helpers below read the WSGI environ directly: werkzeug's header and stream wrappers cost
# more than the whole validation of a one-row request.


def _validated_rows(environ: dict[str, Any], body: _Body, service: _Service) -> np.ndarray:
    settings = service.settings
    if settings.auth_enabled:
        _authorize(environ, settings.api_keys)
    method = environ.get("REQUEST_METHOD", "GET")
    if method != "POST":
        raise InputError(
            METHOD_NOT_ALLOWED,
            f"method {method} is not allowed; use POST with a JSON body",
            {"Allow": "POST"},
        )
    _check_content_type(environ.get("CONTENT_TYPE", ""))
    return parse_request_body(
        body.read(settings.max_body_bytes),
        max_rows=settings.max_rows,
        contract=service.model.contract,
    )


def _authorize(environ: dict[str, Any], keys: tuple[bytes, ...]) -> None:
    challenge = {"WWW-Authenticate": 'Bearer realm="score"'}
    header = environ.get("HTTP_AUTHORIZATION")
    if header is None:
        raise InputError(
            UNAUTHORIZED,
            "missing API key; send the header 'Authorization: Bearer <key>'",
            challenge,
        )
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise InputError(
            UNAUTHORIZED, "the Authorization header must read 'Bearer <key>'", challenge
        )
    presented = token.encode("utf-8", "replace")
    # Compare against every key, in constant time, so timing reveals neither key nor match.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented, key)
    if not matched:
        raise InputError(UNAUTHORIZED, "invalid API key", challenge)


def _check_content_type(header: str) -> None:
    if header == JSON_MEDIA_TYPE:  # the common case, without parsing
        return
    mimetype, options = parse_options_header(header)
    mimetype = mimetype.lower()
    if not mimetype:
        raise InputError(
            UNSUPPORTED_MEDIA_TYPE, f"the Content-Type header is missing; send {JSON_MEDIA_TYPE}"
        )
    if mimetype != JSON_MEDIA_TYPE:
        raise InputError(
            UNSUPPORTED_MEDIA_TYPE, f"Content-Type must be {JSON_MEDIA_TYPE}, not {mimetype!r}"
        )
    charset = options.get("charset", "utf-8").lower().replace("_", "-")
    if charset not in ("utf-8", "utf8"):
        raise InputError(
            UNSUPPORTED_MEDIA_TYPE, f"charset {charset!r} is not supported; send UTF-8 JSON"
        )


class _Body:
    """The request body, read straight from wsgi.input, never past its declared length."""

    __slots__ = ("consumed", "declared", "stream")

    def __init__(self, environ: dict[str, Any]) -> None:
        self.stream = environ.get("wsgi.input")
        self.consumed = 0
        raw = environ.get("CONTENT_LENGTH")
        try:
            declared = int(raw) if raw else None
        except ValueError:
            declared = None
        if declared is None and not environ.get("wsgi.input_terminated"):
            # No length and a server that does not mark the end: nothing can be read safely
            # (werkzeug treats such a body as empty too). gunicorn marks chunked bodies.
            declared = 0
        self.declared = declared if declared is None or declared >= 0 else 0

    def _read(self, size: int) -> bytes:
        if self.declared is not None:
            size = min(size, self.declared - self.consumed)
        if size <= 0 or self.stream is None:
            return b""
        chunk: bytes = self.stream.read(size)
        self.consumed += len(chunk)
        return chunk

    def read(self, limit: int) -> bytes:
        """The whole body; 413 if it is (or declares to be) larger than `limit` bytes."""
        if self.declared is not None and self.declared > limit:
            raise InputError(
                PAYLOAD_TOO_LARGE,
                f"request body is {self.declared} bytes, over the limit of {limit}; "
                "split the request",
            )
        chunks: list[bytes] = []
        size = 0
        while True:
            # At most limit + 1 bytes: a chunked body declares no length.
            chunk = self._read(min(_CHUNK, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise InputError(
                    PAYLOAD_TOO_LARGE,
                    f"request body is over the limit of {limit} bytes; split the request",
                )
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def drain(self) -> None:
        """Read and drop what is left (bounded), so that closing does not reset the socket."""
        try:
            remaining = _DRAIN_LIMIT
            while remaining > 0:
                chunk = self._read(min(_CHUNK, remaining))
                if not chunk:
                    return
                remaining -= len(chunk)
        except Exception:  # a client that hung up mid-body: nothing left to protect
            return


def _request_id(environ: dict[str, Any]) -> str:
    """The request id the server echoes in x-request-id: the client's, or one it generated."""
    given = environ.get("HTTP_X_REQUEST_ID", "").strip()
    if given:
        return str(given[:_MAX_REQUEST_ID])
    try:
        generated = g.get("request_id")
    except RuntimeError:  # no Flask app context: called outside the server
        generated = None
    return str(generated) if generated else str(uuid.uuid4())


def _client_id_suffix(environ: dict[str, Any]) -> str:
    client_id = environ.get("HTTP_X_MS_CLIENT_REQUEST_ID", "").strip()
    return f" client_request_id={client_id[:_MAX_REQUEST_ID]}" if client_id else ""


def _json(
    status: int,
    body: dict[str, Any],
    request_id: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    response = _response(status, json.dumps(body).encode())
    response.headers[REQUEST_ID_HEADER] = request_id
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _response(status: int, body: bytes) -> Response:
    """A JSON response with the headers the server gives a returned dict (AMLResponse)."""
    response = Response(body, status=status, mimetype=JSON_MEDIA_TYPE)
    response.headers[RUN_FAILED_HEADER] = "False"
    return response
