"""The served API specs: generated from scoring/schema.py, committed, and true to the behaviour."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import openapi_spec_validator
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring import openapi
from scoring.schema import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ROWS, FEATURES, N_FEATURES
from tests.scoring.test_score import call


def test_committed_specs_are_up_to_date() -> None:
    assert openapi.stale_files() == [], "run `make specs`"


def test_check_command_fails_on_a_stale_spec(tmp_path: Path) -> None:
    openapi.write_specs(tmp_path)
    assert openapi.main(["--check", "--dir", str(tmp_path)]) == 0
    spec = json.loads((tmp_path / "swagger3.json").read_text())
    spec["components"]["schemas"]["ServiceInput"]["properties"]["data"]["maxItems"] = 5
    (tmp_path / "swagger3.json").write_text(json.dumps(spec))
    assert openapi.main(["--check", "--dir", str(tmp_path)]) == 1
    assert openapi.stale_files(tmp_path) == ["swagger3.json"]


@pytest.mark.parametrize("name", ["swagger2.json", "swagger3.json", "swagger3.1.json"])
def test_specs_carry_the_contract(name: str) -> None:
    spec = json.loads((openapi.SPEC_DIR / name).read_text())
    definitions = spec.get("definitions") or spec["components"]["schemas"]
    data = definitions["ServiceInput"]["properties"]["data"]
    assert (data["minItems"], data["maxItems"]) == (1, DEFAULT_MAX_ROWS)
    assert (data["items"]["minItems"], data["items"]["maxItems"]) == (N_FEATURES, N_FEATURES)
    assert data["items"]["x-features"] == list(FEATURES)
    operation = spec["paths"]["/score"]["post"]
    assert operation["security"] == [{"Bearer": []}]
    assert spec["paths"]["/"]["get"]["security"] == []
    assert set(operation["responses"]) == {"200", "400", "401", "405", "413", "415"}
    schemes = spec.get("securityDefinitions") or spec["components"]["securitySchemes"]
    assert "Bearer" in schemes
    body = (
        operation["requestBody"]
        if "requestBody" in operation
        else next(p for p in operation["parameters"] if p["in"] == "body")
    )
    assert body["x-max-body-bytes"] == DEFAULT_MAX_BODY_BYTES


def test_specs_are_valid_openapi_and_swagger() -> None:
    openapi_spec_validator.validate(openapi.openapi3("3.0.3"))
    openapi_spec_validator.validate(openapi.openapi3("3.1.0"))
    openapi_spec_validator.validate(openapi.swagger2())


_INPUT_VALIDATOR = jsonschema.Draft7Validator(openapi.input_schema())

# Finite numbers of sane magnitude: JSON Schema cannot say "the prediction must not overflow".
_number = st.integers(-1000, 1000) | st.floats(-1e6, 1e6, allow_nan=False)
_value = _number | st.none() | st.booleans() | st.text(max_size=3)
_row = st.lists(_number, min_size=N_FEATURES, max_size=N_FEATURES) | st.lists(_value, max_size=12)
_document = st.fixed_dictionaries({"data": st.lists(_row, max_size=4)}) | st.fixed_dictionaries(
    {"data": st.lists(_row, max_size=2)}, optional={"extra": st.integers()}
)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=_document)
def test_schema_and_behaviour_agree(scorer: Any, document: dict[str, Any]) -> None:
    """A body is accepted exactly when the published schema says it is valid."""
    valid = _INPUT_VALIDATOR.is_valid(document)
    code, payload, _ = call(scorer, document)
    assert (code == 200) == valid, payload
    if valid:
        assert len(payload["result"]) == len(document["data"])


def test_schema_row_bounds_match_behaviour(scorer: Any) -> None:
    row = [0.0] * N_FEATURES
    assert _INPUT_VALIDATOR.is_valid({"data": [row] * DEFAULT_MAX_ROWS})
    assert call(scorer, {"data": [row] * DEFAULT_MAX_ROWS})[0] == 200
    assert not _INPUT_VALIDATOR.is_valid({"data": [row] * (DEFAULT_MAX_ROWS + 1)})
    assert call(scorer, {"data": [row] * (DEFAULT_MAX_ROWS + 1)})[0] == 413
