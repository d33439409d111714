"""The real Azure ML inference server, from the scoring venv, running scoring/score.py."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines.errors import MlopsError
from pipelines.scoring_env import (
    InferenceServer,
    ensure_scoring_env,
    free_port,
    start_inference_server,
    stop_process,
    wait_healthy,
)
from scoring import openapi
from scoring.schema import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ROWS
from tests.bundles import TrainedBundle
from tests.scoring.conftest import API_KEY
from tests.scoring.test_score import CASES, bad_requests

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def ROW(bundle: TrainedBundle) -> list[float]:
    """One real holdout row of the model served."""
    return [float(value) for value in bundle.rows[0]]


class Reply:
    """Status, headers and body of one response."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = {name.lower(): value for name, value in response.getheaders()}
        self.raw = response.read()

    def json(self) -> Any:
        assert self.headers.get("content-type", "").startswith("application/json"), self.raw
        return json.loads(self.raw)


def send(
    server: InferenceServer,
    body: Any = b"",
    *,
    method: str = "POST",
    path: str = "/score",
    content_type: str | None = "application/json",
    headers: dict[str, str] | None = None,
    chunked: bool = False,
    auth: bool = True,
) -> Reply:
    """One raw HTTP request to the server on loopback."""
    if not isinstance(body, bytes | str):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    all_headers = {**(AUTH if auth else {}), **(headers or {})}
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        if chunked:
            chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
            connection.request(
                method, path, body=iter(chunks), headers=all_headers, encode_chunked=True
            )
        else:
            connection.request(
                method, path, body=body if body or method != "GET" else None, headers=all_headers
            )
        return Reply(connection.getresponse())
    finally:
        connection.close()


@pytest.fixture(scope="module")
def server(
    bundle: TrainedBundle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InferenceServer]:
    ensure_scoring_env()
    state = tmp_path_factory.mktemp("server")
    process = start_inference_server(
        bundle.path,
        free_port(),
        api_key=API_KEY,
        model_sha256=bundle.digest,
        collect_dir=state / "collected",
        log_file=state / "server.log",
        extra_env={"SCORING_REQUEST_LOG": "all"},
    )
    try:
        wait_healthy(process.url, 60, process)
        yield process
    finally:
        stop_process(process)


def test_server_listens_on_loopback_only(server: InferenceServer) -> None:
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port = local.rsplit(":", 1)
            if state == "0A" and int(port, 16) == server.port:  # 0A: LISTEN
                listening.append(address)
    assert listening == ["0100007F"]  # 127.0.0.1, little-endian hex


def test_health_and_specs_need_no_key(server: InferenceServer, bundle: TrainedBundle) -> None:
    health = send(server, method="GET", path="/", auth=False, content_type=None)
    assert (health.status, health.raw) == (200, b"Healthy")
    for query, name in (
        ("", "swagger2.json"),
        ("?version=3", "swagger3.json"),
        ("?version=3.1", "swagger3.1.json"),
    ):
        reply = send(
            server, method="GET", path=f"/swagger.json{query}", auth=False, content_type=None
        )
        assert reply.status == 200
        assert reply.json() == openapi.specs(openapi.api_model(bundle.path))[name]


def test_valid_rows_get_scikit_learn_predictions(
    server: InferenceServer, bundle: TrainedBundle
) -> None:
    rows = bundle.rows[:100]
    reply = send(server, {"data": rows.tolist()}, headers={"x-request-id": "it-valid-1"})
    assert reply.status == 200
    assert reply.headers["x-request-id"] == "it-valid-1"
    np.testing.assert_allclose(reply.json()["result"], bundle.expected(rows), rtol=0, atol=1e-6)


def test_every_answer_is_what_json_dumps_writes_with_the_same_headers(
    server: InferenceServer, bundle: TrainedBundle
) -> None:
    # One row comes back as a dict the server serialises; larger results come written by
    # orjson (scoring.schema.result_body): a client cannot tell the two apart.
    replies = [send(server, {"data": bundle.rows[:rows].tolist()}) for rows in (1, 3, 4, 100)]
    for reply in replies:
        assert reply.status == 200
        assert reply.raw == json.dumps({"result": reply.json()["result"]}).encode()
        assert reply.headers["x-ms-run-function-failed"] == "False"
        assert set(reply.headers) == set(replies[0].headers)


@pytest.mark.parametrize("case", [case for case in CASES if case != "PUT"])
def test_every_bad_request_gets_its_4xx_from_the_real_server(
    server: InferenceServer,
    bundle: TrainedBundle,
    ROW: list[float],
    case: str,
) -> None:
    _, body, options, status, fragment = next(
        c for c in bad_requests(bundle.spec.feature_names, ROW) if c[0] == case
    )
    reply = send(server, body, **options)
    assert reply.status == status
    assert fragment in reply.json()["message"]


def test_methods_outside_the_route_get_a_json_405(
    server: InferenceServer, ROW: list[float]
) -> None:
    reply = send(server, {"data": [ROW]}, method="PUT")
    assert reply.status == 405
    assert "message" in reply.json()


def test_overlong_request_id_gets_a_json_431(server: InferenceServer, ROW: list[float]) -> None:
    reply = send(server, {"data": [ROW]}, headers={"x-request-id": "x" * 101})
    assert reply.status == 431
    assert "x-request-id" in reply.json()["message"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_the_limit_is_413(server: InferenceServer, chunked: bool) -> None:
    body = b'{"data": [' + b" " * DEFAULT_MAX_BODY_BYTES + b"]}"
    reply = send(server, body, chunked=chunked)
    assert reply.status == 413
    assert "over the limit" in reply.json()["message"]


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({}, "missing API key"),
        ({"Authorization": "Bearer wrong-key-0123456789"}, "invalid API key"),
    ],
    ids=["no key", "wrong key"],
)
def test_missing_or_wrong_key_is_401(
    server: InferenceServer, headers: dict[str, str], fragment: str, ROW: list[float]
) -> None:
    reply = send(server, {"data": [ROW]}, headers=headers, auth=False)
    assert reply.status == 401
    assert reply.headers["www-authenticate"].startswith("Bearer")
    assert fragment in reply.json()["message"]


def test_served_spec_agrees_with_the_behaviour(server: InferenceServer, ROW: list[float]) -> None:
    spec = send(
        server, method="GET", path="/swagger.json?version=3", auth=False, content_type=None
    ).json()
    operation = spec["paths"]["/score"]["post"]
    data = spec["components"]["schemas"]["ServiceInput"]["properties"]["data"]
    max_rows, width = data["maxItems"], data["items"]["maxItems"]
    assert send(server, {"data": [[0.0] * width] * max_rows}).status == 200
    assert send(server, {"data": [[0.0] * width] * (max_rows + 1)}).status == 413
    assert send(server, {"data": [[0.0] * (width - 1)]}).status == 400
    limit = operation["requestBody"]["x-max-body-bytes"]
    exact = json.dumps({"data": [ROW]}).encode()
    exact += b" " * (limit - len(exact))
    assert send(server, exact).status == 200
    assert send(server, exact + b" ").status == 413
    assert operation["security"] == [{"Bearer": []}]
    assert send(server, {"data": [ROW]}, auth=False).status == 401
    assert (max_rows, limit) == (DEFAULT_MAX_ROWS, DEFAULT_MAX_BODY_BYTES)


def test_inputs_and_outputs_are_collected_with_the_request_id(
    server: InferenceServer,
    bundle: TrainedBundle,
    ROW: list[float],
) -> None:
    assert (
        send(server, {"data": [ROW, ROW]}, headers={"x-request-id": "it-collect-7"}).status == 200
    )
    collected = server.log_file.parent / "collected"
    deadline = time.monotonic() + 20
    found: dict[str, Any] = {}
    while len(found) < 2:
        assert time.monotonic() < deadline, f"nothing collected; see {server.log_file}"
        for path in collected.rglob("*.jsonl"):  # <collection>/<yyyy>/<MM>/<dd>/<HH>/<id>.jsonl
            for line in path.read_text().splitlines():
                entry = json.loads(line)
                # Payloads batch requests; each row carries its request's id.
                rows = [r for r in entry["data"] if r["correlationid"].startswith("it-collect-7")]
                if rows:
                    found[entry["type"].rsplit(".", 1)[1]] = rows
        time.sleep(0.1)
    # The SDK serialises with pandas' to_json: 10 decimal places.
    third = bundle.spec.feature_names[2]
    assert [row[third] for row in found["model_inputs"]] == pytest.approx([ROW[2]] * 2, abs=1e-10)
    assert [row["correlationid"] for row in found["model_outputs"]] == [
        "it-collect-7:0",
        "it-collect-7:1",
    ]
    assert set(found["model_outputs"][0]) == {*bundle.spec.output_names, "correlationid"}


def test_log_has_request_ids_and_never_the_key(server: InferenceServer, ROW: list[float]) -> None:
    send(server, {"data": [ROW]}, headers={"x-request-id": "it-log-3"})
    send(server, {"data": []}, headers={"x-request-id": "it-log-4"})
    generated = send(server, {"data": [ROW]}).headers["x-request-id"]
    rejected = send(server, {"data": []}).headers["x-request-id"]
    time.sleep(0.2)
    log = server.log_file.read_text()
    assert "score it-log-3 status=200 rows=1" in log
    assert "score it-log-4 status=400 rejected: 'data' is empty" in log
    # Without a client id, the server's generated id is the one logged and echoed.
    assert f"score {generated} status=200 rows=1" in log
    assert f"score {rejected} status=400" in log
    assert API_KEY not in log
    assert "served by numpy (verified fast path)" in log


def test_the_servers_response_notice_is_filtered_and_nothing_else(
    server: InferenceServer, bundle: TrainedBundle
) -> None:
    # 100 rows come back as a written Response (4 values or more), a rejection as a Response.
    assert send(server, {"data": bundle.rows[:100].tolist()}).status == 200
    assert send(server, {"data": []}).status == 400
    time.sleep(0.2)
    log = server.log_file.read_text()
    assert "run() output is HTTP Response" not in log
    assert "POST /score 200" in log and "POST /score 400" in log  # the server's access lines


@pytest.mark.parametrize("fault", ["tampered file", "wrong registered digest"])
def test_corrupted_bundle_never_becomes_healthy(
    bundle: TrainedBundle, tmp_path: Path, fault: str
) -> None:
    model = bundle.copy_to(tmp_path / "model")
    digest = bundle.digest
    if fault == "tampered file":
        pickled = model / "model.pkl"
        pickled.write_bytes(pickled.read_bytes() + b"\0")
        expected = "model file model.pkl"
    else:
        digest = "0" * 64
        expected = "the registry recorded 000000000000"
    process = start_inference_server(
        model, free_port(), model_sha256=digest, log_file=tmp_path / "server.log"
    )
    try:
        started = time.monotonic()
        with pytest.raises(MlopsError) as error:
            wait_healthy(process.url, 60, process)
        assert time.monotonic() - started < 30
    finally:
        stop_process(process)
    message = str(error.value)
    assert "exited with code" in message
    assert "before it became healthy" in message
    assert "integrity check" in message
    assert expected in message
