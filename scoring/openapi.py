"""Generate the API specs the inference server serves, from the contract in scoring/schema.py.

The server answers `GET /swagger.json` (Swagger 2.0), `?version=3` (OpenAPI 3.0) and
`?version=3.1` with `swagger2.json`, `swagger3.json` and `swagger3.1.json` found in its
AML_APP_ROOT (the scoring folder). These files are committed; regenerate them with

    .venv/bin/python -m scoring.openapi          # write (or: make specs)
    .venv/bin/python -m scoring.openapi --check  # exit 1 if a committed file is stale

Not imported by score.py: the specs are static files, nothing is built at start-up.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from scoring.schema import (
    BAD_REQUEST,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_ROWS,
    EXAMPLE_ROW,
    FEATURES,
    INPUT_FIELD,
    JSON_MEDIA_TYPE,
    METHOD_NOT_ALLOWED,
    MIN_ROWS,
    N_FEATURES,
    OUTPUT_FIELD,
    PAYLOAD_TOO_LARGE,
    UNAUTHORIZED,
    UNSUPPORTED_MEDIA_TYPE,
)

SPEC_DIR = Path(__file__).resolve().parent
TITLE = "Diabetes progression scoring"
API_VERSION = "1"
SECURITY_SCHEME = "Bearer"
MAX_BODY_EXTENSION = "x-max-body-bytes"
FEATURES_EXTENSION = "x-features"

_ERROR_DESCRIPTIONS: dict[int, str] = {
    BAD_REQUEST: "The body is not a valid request (message names the problem).",
    UNAUTHORIZED: "Missing or invalid key, when the service enforces one.",
    METHOD_NOT_ALLOWED: "Only POST scores.",
    PAYLOAD_TOO_LARGE: (
        f"Body over {DEFAULT_MAX_BODY_BYTES} bytes or more than {DEFAULT_MAX_ROWS} rows."
    ),
    UNSUPPORTED_MEDIA_TYPE: "Content-Type is not application/json (UTF-8).",
}


def input_schema() -> dict[str, Any]:
    """JSON Schema of the request body (used by both spec versions and the tests)."""
    return {
        "type": "object",
        "required": [INPUT_FIELD],
        "additionalProperties": False,
        "properties": {
            INPUT_FIELD: {
                "type": "array",
                "description": (
                    f"Rows to score, {MIN_ROWS} to {DEFAULT_MAX_ROWS}; each row lists the "
                    f"{N_FEATURES} features in this order: {', '.join(FEATURES)}. Values are "
                    "finite numbers (the scaled diabetes features); booleans, null and strings "
                    "are rejected."
                ),
                "minItems": MIN_ROWS,
                "maxItems": DEFAULT_MAX_ROWS,
                "items": {
                    "type": "array",
                    "minItems": N_FEATURES,
                    "maxItems": N_FEATURES,
                    "items": {"type": "number", "format": "double"},
                    FEATURES_EXTENSION: list(FEATURES),
                },
            }
        },
        "example": {INPUT_FIELD: [list(EXAMPLE_ROW)]},
    }


def output_schema() -> dict[str, Any]:
    """JSON Schema of a successful response."""
    return {
        "type": "object",
        "required": [OUTPUT_FIELD],
        "properties": {
            OUTPUT_FIELD: {
                "type": "array",
                "description": "One predicted disease progression per input row, in order.",
                "minItems": MIN_ROWS,
                "maxItems": DEFAULT_MAX_ROWS,
                "items": {"type": "number", "format": "double"},
            }
        },
        "example": {OUTPUT_FIELD: [206.1]},
    }


def error_schema() -> dict[str, Any]:
    """JSON Schema of every error response (the server's own errors use it too)."""
    return {
        "type": "object",
        "required": ["message"],
        "properties": {"message": {"type": "string", "description": "What is wrong."}},
    }


_DESCRIPTION = (
    "Scores rows of the 10 diabetes features with the registered model. Every client mistake "
    'is answered with a 4xx status and a JSON body {"message": ...}. Send the key as '
    "'Authorization: Bearer <key>'. An x-request-id header, if sent, is echoed and logged; "
    "otherwise one is generated. The limits below are the defaults (SCORING_MAX_ROWS, "
    "SCORING_MAX_BODY_BYTES)."
)


def _request_id_headers_v3() -> dict[str, Any]:
    return {
        "x-request-id": {
            "description": "The request id: the one sent, or a generated one.",
            "schema": {"type": "string"},
        }
    }


def openapi3(version: str = "3.0.3") -> dict[str, Any]:
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
        "info": {"title": TITLE, "description": _DESCRIPTION, "version": API_VERSION},
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
                    "description": "Predict disease progression for each row.",
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
                "ServiceInput": input_schema(),
                "ServiceOutput": output_schema(),
                "ErrorResponse": error_schema(),
            },
        },
    }


def swagger2() -> dict[str, Any]:
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
        "info": {"title": TITLE, "description": _DESCRIPTION, "version": API_VERSION},
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
                    "description": "Predict disease progression for each row.",
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
            "ServiceInput": input_schema(),
            "ServiceOutput": output_schema(),
            "ErrorResponse": error_schema(),
        },
    }


def specs() -> dict[str, dict[str, Any]]:
    """File name -> document, for every spec version the server can serve."""
    return {
        "swagger2.json": swagger2(),
        "swagger3.json": openapi3("3.0.3"),
        "swagger3.1.json": openapi3("3.1.0"),
    }


def render(document: dict[str, Any]) -> str:
    """The committed text of a spec file."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def stale_files(directory: Path = SPEC_DIR) -> list[str]:
    """Spec files that are missing or differ from what the contract generates."""
    stale = []
    for name, document in specs().items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != render(document):
            stale.append(name)
    return stale


def write_specs(directory: Path = SPEC_DIR) -> list[Path]:
    """Write every spec file; return their paths."""
    written = []
    for name, document in specs().items():
        path = directory / name
        path.write_text(render(document), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: write the spec files, or check them with --check."""
    parser = argparse.ArgumentParser(description="Generate the scoring API specs.")
    parser.add_argument("--check", action="store_true", help="fail if a committed spec is stale")
    parser.add_argument("--dir", type=Path, default=SPEC_DIR, help="where the specs live")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.dir)
        if stale:
            print(
                f"stale API spec(s): {', '.join(stale)}; run `make specs`",
                file=sys.stderr,
            )
            return 1
        print("API specs are up to date")
        return 0
    for path in write_specs(args.dir):
        print(f"wrote {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
