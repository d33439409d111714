"""Generate the API specs the inference server serves, from a model bundle's contract.

The server answers `GET /swagger.json` (Swagger 2.0), `?version=3` (OpenAPI 3.0) and
`?version=3.1` with `swagger2.json`, `swagger3.json` and `swagger3.1.json` found in its
AML_APP_ROOT (`azureml_inference_server_http/server/swagger.py`, `_SwaggerBuilder._read_swagger`;
read after init()). The features, outputs and example come from the bundle (`contract.json`,
`golden.json`), the request rules from `scoring/schema.py`; every deployment writes them next
to the code it serves:

    .venv/bin/python -m scoring.openapi --bundle MODEL_DIR --dir OUT           # write
    .venv/bin/python -m scoring.openapi --bundle MODEL_DIR --dir OUT --check   # exit 1 if stale

Not imported by score.py: the specs are static files, nothing is built at start-up.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scoring.model_bundle import GOLDEN_SAMPLE, IntegrityError, find_bundle, read_contract
from scoring.schema import (
    BAD_REQUEST,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_ROWS,
    INPUT_FIELD,
    JSON_MEDIA_TYPE,
    METHOD_NOT_ALLOWED,
    MIN_ROWS,
    OUTPUT_FIELD,
    PAYLOAD_TOO_LARGE,
    UNAUTHORIZED,
    UNSUPPORTED_MEDIA_TYPE,
    ModelContract,
)

SPEC_FILES = ("swagger2.json", "swagger3.json", "swagger3.1.json")
API_VERSION = "1"
SECURITY_SCHEME = "Bearer"
MAX_BODY_EXTENSION = "x-max-body-bytes"
FEATURES_EXTENSION = "x-features"
OUTPUTS_EXTENSION = "x-outputs"

_ERROR_DESCRIPTIONS: dict[int, str] = {
    BAD_REQUEST: "The body is not a valid request (message names the problem).",
    UNAUTHORIZED: "Missing or invalid key, when the service enforces one.",
    METHOD_NOT_ALLOWED: "Only POST scores.",
    PAYLOAD_TOO_LARGE: (
        f"Body over {DEFAULT_MAX_BODY_BYTES} bytes or more than {DEFAULT_MAX_ROWS} rows."
    ),
    UNSUPPORTED_MEDIA_TYPE: "Content-Type is not application/json (UTF-8).",
}


@dataclass(frozen=True)
class ApiModel:
    """What the specs describe: the model's contract and one golden row with its output."""

    contract: ModelContract
    example_row: list[float]
    example_output: Any


def api_model(model_dir: Path) -> ApiModel:
    """The contract and first golden row of the bundle under `model_dir`."""
    bundle = find_bundle(model_dir)
    golden = json.loads((bundle / GOLDEN_SAMPLE).read_text())
    return ApiModel(read_contract(bundle), golden["rows"][0], golden["predictions"][0])


def input_schema(api: ApiModel) -> dict[str, Any]:
    """JSON Schema of the request body (used by both spec versions and the tests)."""
    features = api.contract.features
    n_features = len(features)
    return {
        "type": "object",
        "required": [INPUT_FIELD],
        "additionalProperties": False,
        "properties": {
            INPUT_FIELD: {
                "type": "array",
                "description": (
                    f"Rows to score, {MIN_ROWS} to {DEFAULT_MAX_ROWS}; each row lists the "
                    f"{n_features} features in this order: {', '.join(features)}. Values are "
                    "finite numbers; booleans, null and strings are rejected."
                ),
                "minItems": MIN_ROWS,
                "maxItems": DEFAULT_MAX_ROWS,
                "items": {
                    "type": "array",
                    "minItems": n_features,
                    "maxItems": n_features,
                    "items": {"type": "number", "format": "double"},
                    FEATURES_EXTENSION: list(features),
                },
            }
        },
        "example": {INPUT_FIELD: [api.example_row]},
    }


def output_schema(api: ApiModel) -> dict[str, Any]:
    """JSON Schema of a successful response: a value, or class probabilities, per row."""
    contract = api.contract
    number = {"type": "number", "format": "double"}
    if contract.probabilities:
        width = len(contract.outputs)
        description = (
            f"Per input row, in order, the {width} class probabilities "
            f"({', '.join(contract.outputs)}); each row sums to 1."
        )
        item: dict[str, Any] = {
            "type": "array",
            "minItems": width,
            "maxItems": width,
            "items": {**number, "minimum": 0, "maximum": 1},
            OUTPUTS_EXTENSION: list(contract.outputs),
        }
    else:
        description = f"One {contract.outputs[0]} per input row, in order."
        item = number
    return {
        "type": "object",
        "required": [OUTPUT_FIELD],
        "properties": {
            OUTPUT_FIELD: {
                "type": "array",
                "description": description,
                "minItems": MIN_ROWS,
                "maxItems": DEFAULT_MAX_ROWS,
                "items": item,
            }
        },
        "example": {OUTPUT_FIELD: [api.example_output]},
    }


def error_schema() -> dict[str, Any]:
    """JSON Schema of every error response (the server's own errors use it too)."""
    return {
        "type": "object",
        "required": ["message"],
        "properties": {"message": {"type": "string", "description": "What is wrong."}},
    }


def _description(api: ApiModel) -> str:
    contract = api.contract
    answer = "class probabilities" if contract.probabilities else f"a {contract.outputs[0]}"
    return (
        f"Scores rows of the {contract.n_features} features of model {contract.model!r} "
        f"({contract.task}) and answers {answer} per row. Every client mistake "
        'is answered with a 4xx status and a JSON body {"message": ...}. Send the key as '
        "'Authorization: Bearer <key>'. An x-request-id header, if sent, is echoed and logged; "
        "otherwise one is generated. The limits below are the defaults (SCORING_MAX_ROWS, "
        "SCORING_MAX_BODY_BYTES)."
    )


def _score_description(api: ApiModel) -> str:
    """What `/score` does, in the definition's words: `Breast cancer diagnosis: class
    probabilities for each row.`"""
    contract = api.contract
    answer = "class probabilities" if contract.probabilities else f"a {contract.outputs[0]}"
    return f"{contract.title}: {answer} for each row."


def _request_id_headers_v3() -> dict[str, Any]:
    return {
        "x-request-id": {
            "description": "The request id: the one sent, or a generated one.",
            "schema": {"type": "string"},
        }
    }


def openapi3(api: ApiModel, version: str = "3.0.3") -> dict[str, Any]:
    """The OpenAPI 3 document (`version` 3.0.3 or 3.1.0)."""
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    responses: dict[str, Any] = {
        "200": {
            "description": "Predictions, one per row.",
            "headers": _request_id_headers_v3(),
            "content": {
                JSON_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ServiceOutput"}}
            },
        }
    }
    for status, description in _ERROR_DESCRIPTIONS.items():
        responses[str(status)] = {
            "description": description,
            "headers": _request_id_headers_v3(),
            "content": {JSON_MEDIA_TYPE: {"schema": error_ref}},
        }
    return {
        "openapi": version,
        "info": {
            "title": f"{api.contract.title} scoring",
            "description": _description(api),
            "version": API_VERSION,
        },
        "paths": {
            "/": {
                "get": {
                    "operationId": "ServiceHealthCheck",
                    "description": "Health probe; needs no key.",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The service is up.",
                            "content": {
                                "text/plain": {"schema": {"type": "string", "example": "Healthy"}}
                            },
                        }
                    },
                }
            },
            "/score": {
                "post": {
                    "operationId": "RunMLService",
                    "description": _score_description(api),
                    "security": [{SECURITY_SCHEME: []}],
                    "parameters": [
                        {
                            "name": "x-request-id",
                            "in": "header",
                            "required": False,
                            "description": "Request id to log and echo (at most 100 chars).",
                            "schema": {"type": "string", "maxLength": 100},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "description": f"At most {DEFAULT_MAX_BODY_BYTES} bytes of UTF-8 JSON.",
                        MAX_BODY_EXTENSION: DEFAULT_MAX_BODY_BYTES,
                        "content": {
                            JSON_MEDIA_TYPE: {
                                "schema": {"$ref": "#/components/schemas/ServiceInput"}
                            }
                        },
                    },
                    "responses": responses,
                }
            },
        },
        "components": {
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The endpoint key (Azure ML) or SCORING_API_KEY (local, ACI).",
                }
            },
            "schemas": {
                "ServiceInput": input_schema(api),
                "ServiceOutput": output_schema(api),
                "ErrorResponse": error_schema(),
            },
        },
    }


def swagger2(api: ApiModel) -> dict[str, Any]:
    """The Swagger 2.0 document (the server's default /swagger.json)."""
    error_ref = {"$ref": "#/definitions/ErrorResponse"}
    request_id_header = {"x-request-id": {"type": "string", "description": "The request id."}}
    responses: dict[str, Any] = {
        "200": {
            "description": "Predictions, one per row.",
            "headers": request_id_header,
            "schema": {"$ref": "#/definitions/ServiceOutput"},
        }
    }
    for status, description in _ERROR_DESCRIPTIONS.items():
        responses[str(status)] = {
            "description": description,
            "headers": request_id_header,
            "schema": error_ref,
        }
    return {
        "swagger": "2.0",
        "info": {
            "title": f"{api.contract.title} scoring",
            "description": _description(api),
            "version": API_VERSION,
        },
        "schemes": ["https", "http"],
        "consumes": [JSON_MEDIA_TYPE],
        "produces": [JSON_MEDIA_TYPE],
        "securityDefinitions": {
            SECURITY_SCHEME: {
                "type": "apiKey",
                "name": "Authorization",
                "in": "header",
                "description": "'Bearer <key>': the endpoint key or SCORING_API_KEY.",
            }
        },
        "paths": {
            "/": {
                "get": {
                    "operationId": "ServiceHealthCheck",
                    "description": "Health probe; needs no key.",
                    "security": [],
                    "produces": ["text/plain"],
                    "responses": {
                        "200": {"description": "The service is up.", "schema": {"type": "string"}}
                    },
                }
            },
            "/score": {
                "post": {
                    "operationId": "RunMLService",
                    "description": _score_description(api),
                    "security": [{SECURITY_SCHEME: []}],
                    "parameters": [
                        {
                            "name": "x-request-id",
                            "in": "header",
                            "required": False,
                            "type": "string",
                            "maxLength": 100,
                        },
                        {
                            "name": "body",
                            "in": "body",
                            "required": True,
                            "description": f"At most {DEFAULT_MAX_BODY_BYTES} bytes of UTF-8 JSON.",
                            MAX_BODY_EXTENSION: DEFAULT_MAX_BODY_BYTES,
                            "schema": {"$ref": "#/definitions/ServiceInput"},
                        },
                    ],
                    "responses": responses,
                }
            },
        },
        "definitions": {
            "ServiceInput": input_schema(api),
            "ServiceOutput": output_schema(api),
            "ErrorResponse": error_schema(),
        },
    }


def specs(api: ApiModel) -> dict[str, dict[str, Any]]:
    """File name -> document, for every spec version the server can serve."""
    documents = (swagger2(api), openapi3(api, "3.0.3"), openapi3(api, "3.1.0"))
    return dict(zip(SPEC_FILES, documents, strict=True))


def render(document: dict[str, Any]) -> str:
    """The text of a spec file."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def stale_files(directory: Path, api: ApiModel) -> list[str]:
    """Spec files that are missing or differ from what the contract generates."""
    stale = []
    for name, document in specs(api).items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != render(document):
            stale.append(name)
    return stale


def write_specs(directory: Path, api: ApiModel) -> list[Path]:
    """Write every spec file into `directory` (created if needed); return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in specs(api).items():
        path = directory / name
        path.write_text(render(document), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: write the spec files of a bundle, or check them with --check."""
    parser = argparse.ArgumentParser(description="Generate the scoring API specs of a model.")
    parser.add_argument("--bundle", type=Path, required=True, help="the model folder")
    parser.add_argument("--dir", type=Path, required=True, help="where the specs go")
    parser.add_argument("--check", action="store_true", help="fail if a spec file is stale")
    args = parser.parse_args(argv)
    try:
        api = api_model(args.bundle)
    except (IntegrityError, OSError, ValueError, KeyError, IndexError) as error:
        print(
            f"error: cannot read the model contract under {args.bundle}: {error}", file=sys.stderr
        )
        return 2
    if args.check:
        stale = stale_files(args.dir, api)
        if stale:
            print(
                f"stale API spec(s): {', '.join(stale)}; run: .venv/bin/python -m scoring.openapi "
                f"--bundle {args.bundle} --dir {args.dir}",
                file=sys.stderr,
            )
            return 1
        print("API specs are up to date")
        return 0
    for path in write_specs(args.dir, api):
        print(f"wrote {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
