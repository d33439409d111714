"""The served API specs: generated from a bundle's contract and true to the behaviour."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import openapi_spec_validator
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring import openapi
from scoring.schema import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ROWS
from tests.bundles import TrainedBundle
from tests.scoring.test_score import call


@pytest.fixture
def api(bundle: TrainedBundle) -> openapi.ApiModel:
    return openapi.api_model(bundle.path)


def test_check_command_fails_on_a_stale_spec(bundle: TrainedBundle, tmp_path: Path) -> None:
    args = ["--bundle", str(bundle.path), "--dir", str(tmp_path)]
    assert openapi.main(args) == 0
    assert openapi.main([*args, "--check"]) == 0
    spec = json.loads((tmp_path / "swagger3.json").read_text())
    spec["components"]["schemas"]["ServiceInput"]["properties"]["data"]["maxItems"] = 5
    (tmp_path / "swagger3.json").write_text(json.dumps(spec))
    assert openapi.main([*args, "--check"]) == 1
    assert openapi.stale_files(tmp_path, openapi.api_model(bundle.path)) == ["swagger3.json"]


def test_a_folder_without_a_bundle_is_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert openapi.main(["--bundle", str(tmp_path), "--dir", str(tmp_path / "out")]) == 2
    assert "cannot read the model contract" in capsys.readouterr().err


@pytest.mark.parametrize("name", openapi.SPEC_FILES)
def test_specs_carry_the_contract(
    bundle: TrainedBundle, tmp_path: Path, api: openapi.ApiModel, name: str
) -> None:
    openapi.write_specs(tmp_path, api)
    spec = json.loads((tmp_path / name).read_text())
    definitions = spec.get("definitions") or spec["components"]["schemas"]
    data = definitions["ServiceInput"]["properties"]["data"]
    n = bundle.n_features
    assert (data["minItems"], data["maxItems"]) == (1, DEFAULT_MAX_ROWS)
    assert (data["items"]["minItems"], data["items"]["maxItems"]) == (n, n)
    assert data["items"]["x-features"] == list(bundle.spec.feature_names)
    result = definitions["ServiceOutput"]["properties"]["result"]
    if bundle.spec.task == "classification":
        assert result["items"]["x-outputs"] == list(bundle.spec.output_names)
        assert result["items"]["items"]["maximum"] == 1
    else:
        assert result["items"]["type"] == "number"
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


def test_specs_are_valid_openapi_and_swagger(api: openapi.ApiModel) -> None:
    openapi_spec_validator.validate(openapi.openapi3(api, "3.0.3"))
    openapi_spec_validator.validate(openapi.openapi3(api, "3.1.0"))
    openapi_spec_validator.validate(openapi.swagger2(api))


def test_the_examples_are_the_golden_row_and_what_the_model_serves_for_it(
    scorer: Any, api: openapi.ApiModel
) -> None:
    example = openapi.input_schema(api)["example"]
    jsonschema.Draft7Validator(openapi.input_schema(api)).validate(example)
    code, payload, _ = call(scorer, example)
    assert code == 200
    jsonschema.Draft7Validator(openapi.output_schema(api)).validate(payload)
    expected = openapi.output_schema(api)["example"]["result"]
    np.testing.assert_allclose(payload["result"], expected, rtol=1e-9, atol=1e-12)


# Finite numbers of sane magnitude: JSON Schema cannot say "the prediction must not overflow".
_number = st.integers(-1000, 1000) | st.floats(-1e6, 1e6, allow_nan=False)
_value = _number | st.none() | st.booleans() | st.text(max_size=3)


def _documents(n_features: int) -> st.SearchStrategy[dict[str, Any]]:
    row = st.lists(_number, min_size=n_features, max_size=n_features) | st.lists(
        _value, max_size=n_features + 2
    )
    return st.fixed_dictionaries({"data": st.lists(row, max_size=4)}) | st.fixed_dictionaries(
        {"data": st.lists(row, max_size=2)}, optional={"extra": st.integers()}
    )


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_schema_and_behaviour_agree(
    scorer: Any, api: openapi.ApiModel, data: st.DataObject
) -> None:
    """A body is accepted exactly when the published schema says it is valid."""
    document = data.draw(_documents(api.contract.n_features))
    valid = jsonschema.Draft7Validator(openapi.input_schema(api)).is_valid(document)
    code, payload, _ = call(scorer, document)
    assert (code == 200) == valid, payload
    if valid:
        assert len(payload["result"]) == len(document["data"])
        jsonschema.Draft7Validator(openapi.output_schema(api)).validate(payload)


def test_schema_row_bounds_match_behaviour(scorer: Any, api: openapi.ApiModel) -> None:
    validator = jsonschema.Draft7Validator(openapi.input_schema(api))
    row = [0.0] * api.contract.n_features
    assert validator.is_valid({"data": [row] * DEFAULT_MAX_ROWS})
    assert call(scorer, {"data": [row] * DEFAULT_MAX_ROWS})[0] == 200
    assert not validator.is_valid({"data": [row] * (DEFAULT_MAX_ROWS + 1)})
    assert call(scorer, {"data": [row] * (DEFAULT_MAX_ROWS + 1)})[0] == 413
