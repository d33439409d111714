"""Fixtures for the scoring tests: a real trained bundle, raw requests, the loaded script."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from flask import Request
from werkzeug.test import EnvironBuilder

from scoring import score
from tests.bundles import SPEC_NAMES, TrainedBundle, train_bundle

SCORING_VARIABLES = (
    "SCORING_MAX_ROWS",
    "SCORING_MAX_BODY_BYTES",
    "SCORING_API_KEY",
    "SCORING_API_KEY_SECONDARY",
    "SCORING_COLLECT",
    "SCORING_COLLECT_DIR",
    "SCORING_REQUEST_LOG",
    "AZUREML_MDC_CONFIG_PATH",
    "AZUREML_MDC_ENABLED",
    "MODEL_SHA256",
    "AZUREML_MODEL_DIR",
)
API_KEY = "test-key-0123456789abcdef"


@pytest.fixture(scope="session", params=SPEC_NAMES)
def bundle(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> TrainedBundle:
    """A real bundle of each example definition: the scoring tests run against both."""
    return train_bundle(request.param, tmp_path_factory.mktemp(request.param) / "model")


@pytest.fixture(scope="session")
def diabetes_bundle(tmp_path_factory: pytest.TempPathFactory) -> TrainedBundle:
    """The diabetes example's bundle, for tests about that example alone."""
    return train_bundle("diabetes", tmp_path_factory.mktemp("diabetes-only") / "model")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No scoring variable leaks in from the developer's shell."""
    for name in SCORING_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def load_script(
    bundle: TrainedBundle, clean_env: pytest.MonkeyPatch
) -> Iterator[Callable[..., Any]]:
    """Call score.init() with the bundle and extra environment; returns the module."""

    def load(**env: str) -> Any:
        clean_env.setenv("AZUREML_MODEL_DIR", str(bundle.path))
        clean_env.setenv("MODEL_SHA256", bundle.digest)
        for name, value in env.items():
            clean_env.setenv(name, value)
        score.init()
        return score

    numpy_errors = np.geterr()  # init() sets the worker's for its life; the tests keep theirs
    yield load
    np.seterr(**numpy_errors)
    service = score._service
    if service is not None and service.collection is not None:
        service.collection.stop()
    score._service = None


@pytest.fixture
def scorer(load_script: Callable[..., Any]) -> Any:
    """score.py initialised with the default settings."""
    return load_script()


def make_request(
    body: bytes | str | Any = b"",
    *,
    method: str = "POST",
    content_type: str | None = "application/json",
    headers: dict[str, str] | None = None,
    chunked: bool = False,
) -> Request:
    """A raw request as the inference server hands it to run() under @rawhttp."""
    if not isinstance(body, bytes | str):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode("utf-8")
    builder = EnvironBuilder(path="/score", method=method, data=body, headers=headers or {})
    environ = builder.get_environ()
    if content_type is None:
        environ.pop("CONTENT_TYPE", None)
    else:
        environ["CONTENT_TYPE"] = content_type
    if chunked:
        environ.pop("CONTENT_LENGTH", None)
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        environ["wsgi.input_terminated"] = True
    return Request(environ)


def rows_body(rows: Any) -> dict[str, Any]:
    """A request body for these rows."""
    return {"data": np.asarray(rows).tolist() if isinstance(rows, np.ndarray) else rows}
