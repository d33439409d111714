"""score.py in-process: init() and run() with raw requests, as the inference server calls them."""

from __future__ import annotations

import json
import logging
import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.runtime import ModelLoadError
from scoring.schema import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ROWS
from scoring.settings import SettingsError
from tests.bundles import TrainedBundle
from tests.scoring.conftest import API_KEY, make_request, rows_body


@pytest.fixture
def ROW(bundle: TrainedBundle) -> list[float]:
    """One real holdout row of the model under test."""
    return [float(value) for value in bundle.rows[0]]


def call(scorer: Any, *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any], Any]:
    """run() on a raw request; returns (status, JSON body, headers).

    Success is a plain dict, which the server answers with 200 as JSON (adding x-request-id),
    or for larger results the 200 Response with those very bytes; every rejection is a
    Response carrying its status.
    """
    response = scorer.run(make_request(*args, **kwargs))
    if isinstance(response, dict):
        json.dumps(response, allow_nan=False)  # what the server does with it must not fail
        return 200, response, {}
    payload = json.loads(response.get_data())
    if response.status_code == 200:
        assert response.get_data() == json.dumps(payload).encode()
    return response.status_code, payload, response.headers


# (id, request body, request options, status, fragment of the message)
def bad_requests(
    features: tuple[str, ...],
    ROW: list[float],
) -> list[tuple[str, Any, dict[str, Any], int, str]]:
    """Every client mistake for a model with these features, and its answer."""
    n = len(features)
    zeros = ", ".join(["0"] * (n - 1)).encode()
    return [
        ("not json", b'{"data": [[1, 2', {}, 400, "not valid JSON"),
        ("empty body", b"", {}, 400, "request body is empty"),
        ("whitespace body", b"  \n ", {}, 400, "request body is empty"),
        ("json array", [ROW], {}, 400, "must be a JSON object"),
        ("json string", b'"data"', {}, 400, "must be a JSON object"),
        (
            "json null",
            b"null",
            {},
            400,
            f'must be a JSON object like {{"data": [[{n} numbers], ...]}}, not null',
        ),
        ("missing data", {}, {}, 400, "has no 'data' field"),
        ("unknown field", {"data": [ROW], "extra": 1}, {}, 400, "unknown field(s) 'extra'"),
        ("other field only", {"inputs": [ROW]}, {}, 400, "unknown field(s) 'inputs'"),
        ("data is string", {"data": "1,2,3"}, {}, 400, "must be a list of rows"),
        ("data is object", {"data": {features[0]: 1}}, {}, 400, "not an object"),
        ("data is number", {"data": 5}, {}, 400, "not a number"),
        ("data is null", {"data": None}, {}, 400, "not null"),
        ("row is number", {"data": [5]}, {}, 400, "row 0 of 'data' must be a list"),
        (
            "row is object",
            {"data": [dict(zip(features, ROW, strict=True))]},
            {},
            400,
            "not an object",
        ),
        (
            "too few features",
            {"data": [ROW[:-1]]},
            {},
            400,
            f"row 0 of 'data' has {n - 1} values; expected {n}",
        ),
        (
            "too many features",
            {"data": [[*ROW, 1.0]]},
            {},
            400,
            f"has {n + 1} values; expected {n}",
        ),
        ("ragged rows", {"data": [ROW, ROW[:7]]}, {}, 400, "row 1 of 'data' has 7 values"),
        ("empty row", {"data": [[]]}, {}, 400, "has 0 values"),
        (
            "string value",
            {"data": [[*ROW[:2], "0.06", *ROW[3:]]]},
            {},
            400,
            f"data[0][2] ({features[2]}) is a string",
        ),
        (
            "boolean value",
            {"data": [[True, *ROW[1:]]]},
            {},
            400,
            f"data[0][0] ({features[0]}) is a boolean",
        ),
        (
            "null value",
            {"data": [[*ROW[:-1], None]]},
            {},
            400,
            f"data[0][{n - 1}] ({features[-1]}) is null",
        ),
        (
            "nested value",
            {"data": [[[1.0], *ROW[1:]]]},
            {},
            400,
            f"data[0][0] ({features[0]}) is an array",
        ),
        ("NaN literal", b'{"data": [[NaN, ' + zeros + b"]]}", {}, 400, "contains NaN"),
        ("Infinity literal", b'{"data": [[Infinity, ' + zeros + b"]]}", {}, 400, "Infinity"),
        ("-Infinity literal", b'{"data": [[-Infinity, ' + zeros + b"]]}", {}, 400, "-Infinity"),
        (
            "overflowing float",
            b'{"data": [[1e999, ' + zeros + b"]]}",
            {},
            400,
            f"data[0][0] ({features[0]}) is too large",
        ),
        (
            "overflowing int",
            b'{"data": [[1' + b"0" * 400 + b", " + zeros + b"]]}",
            {},
            400,
            f"data[0][0] ({features[0]}) is too large",
        ),
        (
            "5000-digit int",
            b'{"data": [[' + b"9" * 5000 + b", " + zeros + b"]]}",
            {},
            400,
            "unreadable number",
        ),
        ("empty data", {"data": []}, {}, 400, "'data' is empty"),
        (
            "too many rows",
            {"data": [ROW] * (DEFAULT_MAX_ROWS + 1)},
            {},
            413,
            "1001 rows, more than the limit of 1000",
        ),
        (
            "invalid utf-8",
            b'{"data": [[0.1\xff]]}',
            {},
            400,
            "not valid UTF-8 (byte 0xff at offset 14)",
        ),
        ("utf-16 body", json.dumps({"data": [ROW]}).encode("utf-16"), {}, 400, "not valid UTF-8"),
        ("deep nesting", b"[" * 100_000 + b"]" * 100_000, {}, 400, "nested too deeply"),
        ("GET", b"", {"method": "GET"}, 405, "method GET is not allowed"),
        ("PUT", {"data": [ROW]}, {"method": "PUT"}, 405, "method PUT is not allowed"),
        ("text/plain", {"data": [ROW]}, {"content_type": "text/plain"}, 415, "not 'text/plain'"),
        (
            "form",
            {"data": [ROW]},
            {"content_type": "application/x-www-form-urlencoded"},
            415,
            "Content-Type must be application/json",
        ),
        (
            "no content type",
            {"data": [ROW]},
            {"content_type": None},
            415,
            "Content-Type header is missing",
        ),
        (
            "latin-1 charset",
            {"data": [ROW]},
            {"content_type": "application/json; charset=latin-1"},
            415,
            "charset 'latin-1'",
        ),
    ]


CASES = [case[0] for case in bad_requests(("a", "b", "c"), [0.0, 0.0, 0.0])]


@pytest.mark.parametrize("case", CASES)
def test_every_client_mistake_gets_its_4xx_and_a_json_message(
    scorer: Any,
    bundle: TrainedBundle,
    ROW: list[float],
    case: str,
) -> None:
    _, body, options, status, fragment = next(
        c for c in bad_requests(bundle.spec.feature_names, ROW) if c[0] == case
    )
    code, payload, headers = call(scorer, body, **options)
    assert code == status
    assert set(payload) == {"message"}
    assert fragment in payload["message"]
    assert headers["Content-Type"] == "application/json"
    if status == 405:
        assert headers["Allow"] == "POST"


def test_declared_body_over_the_limit_is_413_before_parsing(scorer: Any) -> None:
    body = b'{"data": [' + b" " * DEFAULT_MAX_BODY_BYTES + b"]}"
    code, payload, _ = call(scorer, body)
    assert code == 413
    assert f"over the limit of {DEFAULT_MAX_BODY_BYTES}" in payload["message"]


def test_chunked_body_over_the_limit_is_413(scorer: Any) -> None:
    body = b'{"data": [' + b" " * DEFAULT_MAX_BODY_BYTES + b"]}"
    code, payload, _ = call(scorer, body, chunked=True)
    assert code == 413
    assert "over the limit" in payload["message"]


def test_body_of_exactly_the_limit_is_accepted(scorer: Any, ROW: list[float]) -> None:
    body = json.dumps({"data": [ROW]}).encode()
    body += b" " * (DEFAULT_MAX_BODY_BYTES - len(body))
    assert len(body) == DEFAULT_MAX_BODY_BYTES
    code, payload, _ = call(scorer, body)
    assert code == 200
    assert len(payload["result"]) == 1


def test_predictions_equal_scikit_learn(scorer: Any, bundle: TrainedBundle) -> None:
    rows = bundle.rows[:50]
    code, payload, _ = call(scorer, rows_body(rows))
    assert code == 200
    assert set(payload) == {"result"}
    np.testing.assert_allclose(payload["result"], bundle.expected(rows), rtol=0, atol=1e-6)


@pytest.mark.parametrize("rows", [1, 40], ids=["one row", "40 rows"])
def test_an_overflowing_prediction_is_a_400_and_numpy_warns_nothing(
    scorer: Any, bundle: TrainedBundle, rows: int
) -> None:
    """Absurd inputs overflow both examples (the classifier's standardised inputs become
    infinities, and their weighted sum NaN): 400 naming the row, and no RuntimeWarning (init()
    silences numpy's floating-point warnings for the worker). 40 rows take ndarray.sum(), one
    row the Python floats' sum."""
    huge = [[0.01] * bundle.n_features] * (rows - 1) + [[1.5e308] * bundle.n_features]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, payload, _ = call(scorer, rows_body(huge))
    assert code == 400
    assert payload == {
        "message": f"the prediction for row {rows - 1} is not a finite number; its inputs "
        "are far outside the range the model was trained on"
    }


def test_integers_chunked_bodies_and_charset_are_accepted(
    scorer: Any, bundle: TrainedBundle
) -> None:
    ints = [[(index % 5) - 1 for index in range(bundle.n_features)]]
    code, payload, _ = call(
        scorer, rows_body(ints), chunked=True, content_type="application/json; charset=UTF-8"
    )
    assert code == 200
    np.testing.assert_allclose(payload["result"], bundle.expected(np.array(ints, float)), atol=1e-6)


def test_the_maximum_number_of_rows_is_accepted(scorer: Any, ROW: list[float]) -> None:
    code, payload, _ = call(scorer, {"data": [ROW] * DEFAULT_MAX_ROWS})
    assert code == 200
    assert len(payload["result"]) == DEFAULT_MAX_ROWS


def test_limits_come_from_the_environment(
    load_script: Callable[..., Any], ROW: list[float]
) -> None:
    scorer = load_script(SCORING_MAX_ROWS="2", SCORING_MAX_BODY_BYTES="1000")
    assert call(scorer, {"data": [ROW] * 2})[0] == 200
    code, payload, _ = call(scorer, {"data": [ROW] * 3})
    assert (code, "limit of 2" in payload["message"]) == (413, True)
    padded = json.dumps({"data": [ROW]}) + " " * 1000
    code, payload, _ = call(scorer, padded, chunked=True)
    assert (code, "limit of 1000 bytes" in payload["message"]) == (413, True)


# -- authentication -------------------------------------------------------------------------


@pytest.fixture
def keyed(load_script: Callable[..., Any]) -> Any:
    return load_script(SCORING_API_KEY=API_KEY, SCORING_API_KEY_SECONDARY="second-key-abcdefghijkl")


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({}, "missing API key"),
        ({"Authorization": f"Bearer {API_KEY}x"}, "invalid API key"),
        ({"Authorization": f"Bearer {API_KEY[:-1]}"}, "invalid API key"),
        ({"Authorization": "Bearer "}, "must read 'Bearer <key>'"),
        ({"Authorization": API_KEY}, "must read 'Bearer <key>'"),
        ({"Authorization": f"Basic {API_KEY}"}, "must read 'Bearer <key>'"),
        ({"Authorization": "Bearer ключ-не-тот-0123456789"}, "invalid API key"),
    ],
    ids=["none", "longer", "shorter", "empty", "no scheme", "basic", "non-ascii"],
)
def test_missing_or_wrong_key_is_401(
    keyed: Any, headers: dict[str, str], fragment: str, ROW: list[float]
) -> None:
    code, payload, response_headers = call(keyed, {"data": [ROW]}, headers=headers)
    assert code == 401
    assert fragment in payload["message"]
    assert response_headers["WWW-Authenticate"].startswith("Bearer")


def test_authentication_comes_before_any_parsing(keyed: Any) -> None:
    assert call(keyed, b"not json", method="GET", content_type="text/plain")[0] == 401


def test_both_keys_are_accepted(keyed: Any, ROW: list[float]) -> None:
    for key in (API_KEY, "second-key-abcdefghijkl"):
        code, _, _ = call(keyed, {"data": [ROW]}, headers={"Authorization": f"Bearer {key}"})
        assert code == 200
    lower = {"Authorization": f"bearer {API_KEY}"}
    assert call(keyed, {"data": [ROW]}, headers=lower)[0] == 200


def test_key_never_reaches_the_log(
    load_script: Callable[..., Any], caplog: pytest.LogCaptureFixture, ROW: list[float]
) -> None:
    caplog.set_level(logging.DEBUG)
    keyed = load_script(SCORING_API_KEY=API_KEY)
    call(keyed, {"data": [ROW]}, headers={"Authorization": f"Bearer {API_KEY}"})
    call(keyed, {"data": [ROW]}, headers={"Authorization": f"Bearer {API_KEY}0"})
    assert "auth=on" in caplog.text
    assert API_KEY not in caplog.text
    assert API_KEY not in repr(keyed._service.settings)


def test_no_key_configured_means_no_check(scorer: Any, ROW: list[float]) -> None:
    assert call(scorer, {"data": [ROW]}, headers={"Authorization": "Bearer anything"})[0] == 200


# -- request ids ----------------------------------------------------------------------------


def test_request_id_is_logged_and_echoed_on_rejections(
    scorer: Any, caplog: pytest.LogCaptureFixture, ROW: list[float]
) -> None:
    caplog.set_level(logging.INFO, logger="azmlinfsrv.score")
    headers = {"x-request-id": "req-42", "x-ms-client-request-id": "client-7"}
    code, _, _ = call(scorer, {"data": [ROW]}, headers=headers)
    assert code == 200  # the server itself echoes x-request-id on a 200 (integration test)
    assert "req-42" not in caplog.text  # by default only rejections get a line of their own
    code, _, response_headers = call(scorer, {"data": []}, headers=headers)
    assert (code, response_headers["x-request-id"]) == (400, "req-42")
    assert "score req-42 client_request_id=client-7 status=400 rejected: 'data' is empty" in (
        caplog.text
    )


def test_every_request_is_logged_when_asked(
    load_script: Callable[..., Any], caplog: pytest.LogCaptureFixture, ROW: list[float]
) -> None:
    scorer = load_script(SCORING_REQUEST_LOG="all")
    caplog.set_level(logging.INFO, logger="azmlinfsrv.score")
    headers = {"x-request-id": "req-43", "x-ms-client-request-id": "client-8"}
    assert call(scorer, {"data": [ROW] * 3}, headers=headers)[0] == 200
    assert "score req-43 client_request_id=client-8 status=200 rows=3 ms=" in caplog.text
    assert call(scorer, {"data": []}, headers=headers)[0] == 400
    assert "score req-43 client_request_id=client-8 status=400 rejected: 'data' is empty" in (
        caplog.text
    )


def test_init_filters_the_servers_response_notice_and_nothing_else(scorer: Any) -> None:
    server_log = logging.getLogger(scorer.SERVER_LOGGER)

    def passes(message: str) -> bool:
        record = server_log.makeRecord(
            server_log.name, logging.INFO, __file__, 1, message, (), None
        )
        return bool(server_log.filter(record))

    assert not passes(scorer.SERVER_RESPONSE_NOTICE)
    assert passes("POST /score 200 0.512ms 33")
    assert passes("run() output is HTTP Response, status 500")
    scorer.init()  # a second init (a reload) adds no second filter
    assert sum(isinstance(f, scorer._WithoutResponseNotice) for f in server_log.filters) == 1


def test_request_id_is_generated_when_absent(scorer: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="azmlinfsrv.score")
    _, _, headers = call(scorer, {"data": []})
    generated = headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f-]{36}", generated)
    assert f"score {generated} status=400" in caplog.text
    assert call(scorer, {"data": []})[2]["x-request-id"] != generated


# -- init -----------------------------------------------------------------------------------


def test_tampered_bundle_fails_init_with_a_clear_log_line(
    load_script: Callable[..., Any],
    bundle: TrainedBundle,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    copy = bundle.copy_to(tmp_path / "model")
    contract = json.loads((copy / "contract.json").read_text())
    contract["title"] += " (edited)"
    (copy / "contract.json").write_text(json.dumps(contract))
    with pytest.raises(ModelLoadError, match=r"contract\.json .* does not match"):
        load_script(AZUREML_MODEL_DIR=str(copy))
    assert "scoring init failed, refusing to serve: model bundle failed its integrity check" in (
        caplog.text
    )


def test_wrong_registered_digest_fails_init(load_script: Callable[..., Any]) -> None:
    with pytest.raises(ModelLoadError, match="registry recorded 000000000000"):
        load_script(MODEL_SHA256="0" * 64)


@pytest.mark.parametrize(
    "below", ["diabetes", "diabetes-ridge/3"], ids=["one level down", "name/version"]
)
def test_model_below_the_model_dir_is_found(
    load_script: Callable[..., Any],
    bundle: TrainedBundle,
    tmp_path: Path,
    below: str,
    ROW: list[float],
) -> None:
    bundle.copy_to(tmp_path / "models" / below)
    scorer = load_script(AZUREML_MODEL_DIR=str(tmp_path / "models"))
    assert call(scorer, {"data": [ROW]})[0] == 200


def test_two_models_below_the_model_dir_fail_init(
    load_script: Callable[..., Any], bundle: TrainedBundle, tmp_path: Path
) -> None:
    bundle.copy_to(tmp_path / "models" / "diabetes-ridge" / "3")
    bundle.copy_to(tmp_path / "models" / "other")
    with pytest.raises(ModelLoadError, match="exactly one model bundle"):
        load_script(AZUREML_MODEL_DIR=str(tmp_path / "models"))


def test_missing_model_dir_fails_init(load_script: Callable[..., Any], tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="is not a directory"):
        load_script(AZUREML_MODEL_DIR=str(tmp_path / "absent"))


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("SCORING_MAX_ROWS", "many", "SCORING_MAX_ROWS='many' is not an integer"),
        ("SCORING_MAX_ROWS", "0", "out of range"),
        ("SCORING_MAX_BODY_BYTES", str(200 * 1024 * 1024), "out of range"),
        ("SCORING_API_KEY", "short-secret", "12 characters long"),
        ("SCORING_COLLECT", "sometimes", "not one of auto, true, false"),
        (
            "SCORING_REQUEST_LOG",
            "errors",
            "SCORING_REQUEST_LOG='errors' is not one of rejected, all",
        ),
    ],
)
def test_invalid_settings_fail_init(
    load_script: Callable[..., Any], name: str, value: str, fragment: str
) -> None:
    with pytest.raises(SettingsError) as error:
        load_script(**{name: value})
    assert fragment in str(error.value)
    if name == "SCORING_API_KEY":
        assert value not in str(error.value)


def test_collection_failure_never_breaks_scoring(
    load_script: Callable[..., Any], ROW: list[float]
) -> None:
    # The monitoring SDK is not installed in the ops environment: collection must switch
    # itself off and scoring must go on.
    scorer = load_script(SCORING_COLLECT="true")
    assert call(scorer, {"data": [ROW]})[0] == 200
    collection = scorer._service.collection
    deadline = time.monotonic() + 10
    while collection.failure is None and not collection.ready.is_set():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    if collection.failure is not None:
        assert "ModuleNotFoundError" in collection.failure
    assert call(scorer, {"data": [ROW, ROW]})[0] == 200


# -- no input produces a 5xx ----------------------------------------------------------------

_json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False)
    | st.text(max_size=5)
)
_json = st.recursive(
    _json_leaf,
    lambda children: (
        st.lists(children, max_size=12) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=40,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=_json)
def test_no_json_document_produces_a_5xx(scorer: Any, document: Any) -> None:
    for body in (document, {"data": document}, {"data": [document]}):
        code, payload, _ = call(scorer, json.dumps(body))
        assert code == 200 or 400 <= code < 500
        assert ("result" in payload) == (code == 200)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=300))
def test_no_byte_string_produces_a_5xx(scorer: Any, body: bytes) -> None:
    code, payload, _ = call(scorer, body)
    assert 400 <= code < 500
    assert "message" in payload
