"""The scoring API contract, defined once.

Online validation (`scoring/score.py`), batch validation (`scoring/batch_driver.py`), the OpenAPI
files the inference server serves (written by `python -m scoring.openapi`) and docs/scoring.md
all read the definitions below, so the spec cannot drift from the behaviour.

Only the standard library and numpy are imported: this module is on the cold-start path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import numpy as np

# The model's features, in the order every row must list them (same as training.data.FEATURES).
FEATURES: tuple[str, ...] = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
N_FEATURES = len(FEATURES)

INPUT_FIELD = "data"
OUTPUT_FIELD = "result"
PREDICTION_COLUMN = "prediction"
JSON_MEDIA_TYPE = "application/json"

MIN_ROWS = 1
DEFAULT_MAX_ROWS = 1000
# Far below the 100 MB the Azure ML endpoint router allows: 1000 rows of 10 numbers need ~250 kB.
DEFAULT_MAX_BODY_BYTES = 1_048_576

# One row of the scaled diabetes data set, used as the example in the spec and the docs.
EXAMPLE_ROW: tuple[float, ...] = (
    0.0380759064334241,
    0.0506801187398187,
    0.0616962065186885,
    0.0218723549949558,
    -0.0442234984244464,
    -0.0348207628376986,
    -0.0434008456520269,
    -0.00259226199818282,
    0.0199084208763183,
    -0.0176461251598052,
)

# Status codes of the contract (docs/scoring.md has the full table).
BAD_REQUEST = 400
UNAUTHORIZED = 401
METHOD_NOT_ALLOWED = 405
PAYLOAD_TOO_LARGE = 413
UNSUPPORTED_MEDIA_TYPE = 415
ERROR_STATUSES: tuple[int, ...] = (
    BAD_REQUEST,
    UNAUTHORIZED,
    METHOD_NOT_ALLOWED,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
)


class InputError(Exception):
    """A client mistake: the HTTP status to answer with and one sentence naming the problem."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})


Locator = Callable[[int, int], str]


def json_locator(row: int, column: int) -> str:
    """Where a value sits in a JSON request, e.g. ``data[3][2] (bmi)``."""
    return f"{INPUT_FIELD}[{row}][{column}] ({FEATURES[column]})"


def _reject_constant(name: str) -> NoReturn:
    # Python's json module accepts NaN and Infinity literals, which are not JSON.
    raise InputError(
        BAD_REQUEST,
        f"request body contains {name}, which is not a JSON number; send finite numbers",
    )


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_EXPECTED = f'{{"{INPUT_FIELD}": [[{N_FEATURES} numbers], ...]}}'


def parse_request_body(body: bytes, *, max_rows: int) -> np.ndarray:
    """Decode and validate a request body; return the rows as a float64 matrix.

    Raises InputError (400 or 413) naming the first problem found.
    """
    if not body.strip():
        raise InputError(BAD_REQUEST, f"request body is empty; send {_EXPECTED}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            BAD_REQUEST,
            f"request body is not valid UTF-8 (byte {body[error.start]:#04x} at offset "
            f"{error.start}); send UTF-8 encoded JSON",
        ) from None
    try:
        document = _DECODER.decode(text)
    except json.JSONDecodeError as error:
        raise InputError(
            BAD_REQUEST,
            f"request body is not valid JSON: {error.msg} at line {error.lineno} "
            f"column {error.colno}",
        ) from None
    except RecursionError:
        raise InputError(BAD_REQUEST, "request body is nested too deeply") from None
    except ValueError:  # an integer literal longer than Python's 4300-digit limit
        raise InputError(
            BAD_REQUEST, "request body has an unreadable number (thousands of digits)"
        ) from None
    if not isinstance(document, dict):
        raise InputError(
            BAD_REQUEST,
            f"request body must be a JSON object like {_EXPECTED}, not {_json_type(document)}",
        )
    unknown = sorted(key for key in document if key != INPUT_FIELD)
    if unknown:
        raise InputError(
            BAD_REQUEST,
            f"request body has unknown field(s) {', '.join(map(repr, unknown))}; "
            f"only {INPUT_FIELD!r} is accepted",
        )
    if INPUT_FIELD not in document:
        raise InputError(
            BAD_REQUEST, f"request body has no {INPUT_FIELD!r} field; send {_EXPECTED}"
        )
    return rows_to_matrix(document[INPUT_FIELD], max_rows=max_rows, locate=json_locator)


def rows_to_matrix(
    data: Any, *, max_rows: int | None, locate: Locator = json_locator, what: str = INPUT_FIELD
) -> np.ndarray:
    """Validate rows of feature values and return them as a (rows, features) float64 matrix.

    Every row must be a list of exactly N_FEATURES finite numbers; booleans, null, strings and
    NaN or infinite values are rejected with the position of the first offending value.
    """
    if not isinstance(data, list):
        raise InputError(
            BAD_REQUEST,
            f"{what!r} must be a list of rows, each a list of {N_FEATURES} numbers, "
            f"not {_json_type(data)}",
        )
    if len(data) < MIN_ROWS:
        raise InputError(BAD_REQUEST, f"{what!r} is empty; send at least {MIN_ROWS} row")
    if max_rows is not None and len(data) > max_rows:
        raise InputError(
            PAYLOAD_TOO_LARGE,
            f"{what!r} has {len(data)} rows, more than the limit of {max_rows}; split the request",
        )
    # Fast path: exact type checks (bool is a subclass of int, so isinstance would let it in).
    for row in data:
        if type(row) is not list or len(row) != N_FEATURES:
            _explain(data, locate, what)
        for value in row:
            kind = type(value)
            if kind is not float and kind is not int:
                _explain(data, locate, what)
    try:
        matrix = np.array(data, dtype=np.float64)
    except OverflowError:
        _explain_overflow(data, locate)
    finite = np.isfinite(matrix)
    if not finite.all():
        row, column = (int(index) for index in np.argwhere(~finite)[0])
        value = float(matrix[row, column])
        problem = (
            "is missing (NaN)" if math.isnan(value) else "is too large (overflows to infinity)"
        )
        raise InputError(BAD_REQUEST, f"{locate(row, column)} {problem}; send finite numbers")
    return matrix


def _explain(data: list[Any], locate: Locator, what: str) -> NoReturn:
    """Raise the InputError for the first row or value that failed the fast path."""
    for index, row in enumerate(data):
        if not isinstance(row, list):
            raise InputError(
                BAD_REQUEST,
                f"row {index} of {what!r} must be a list of {N_FEATURES} numbers "
                f"({', '.join(FEATURES)}), not {_json_type(row)}",
            )
        if len(row) != N_FEATURES:
            raise InputError(
                BAD_REQUEST,
                f"row {index} of {what!r} has {len(row)} values; expected {N_FEATURES} "
                f"({', '.join(FEATURES)})",
            )
        for column, value in enumerate(row):
            kind = type(value)
            if kind is not float and kind is not int:
                raise InputError(
                    BAD_REQUEST,
                    f"{locate(index, column)} is {_json_type(value)}; expected a number",
                )
    raise AssertionError("unreachable: _explain found no problem")  # pragma: no cover


def _explain_overflow(data: list[list[Any]], locate: Locator) -> NoReturn:
    for index, row in enumerate(data):
        for column, value in enumerate(row):
            try:
                float(value)
            except OverflowError:
                raise InputError(
                    BAD_REQUEST,
                    f"{locate(index, column)} is too large for a 64-bit float; send finite numbers",
                ) from None
    raise AssertionError("unreachable: no value overflows")  # pragma: no cover


def _json_type(value: Any) -> str:
    """How a value reads in a message, in JSON terms."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        shown = value if len(value) <= 20 else value[:17] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"
