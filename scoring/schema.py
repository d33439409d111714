"""The scoring API contract: the request format here, the model's features in its bundle.

Online validation (`scoring/score.py`), batch validation (`scoring/batch_driver.py`), the OpenAPI
files the inference server serves (written by `python -m scoring.openapi` from a bundle) and
docs/scoring.md all read the definitions below, so the spec cannot drift from the behaviour.
Which features a row lists, and what the model answers, is the model's own contract
(`ModelContract`), read from the bundle's `contract.json`: serving code holds no feature list.

Only the standard library, numpy, simdjson and orjson are imported: this module is on the
cold-start path.
"""

from __future__ import annotations

import json
import math
import struct
import threading
from collections.abc import Callable, Mapping
from itertools import chain
from typing import Any, NoReturn

import numpy as np
import orjson
import simdjson

INPUT_FIELD = "data"
OUTPUT_FIELD = "result"
JSON_MEDIA_TYPE = "application/json"

MIN_ROWS = 1
DEFAULT_MAX_ROWS = 1000
# Far below the 100 MB the Azure ML endpoint router allows (the endpoint limits, Learn
# "how-to-manage-quotas"): 1000 rows of 30 numbers need ~750 kB.
DEFAULT_MAX_BODY_BYTES = 1_048_576
CONTRACT_FORMAT = 1

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


class ContractError(ValueError):
    """A bundle's contract.json is missing a part or is not the format this code reads."""


class ModelContract:
    """What a model takes and gives: feature names, output names, task and serving path.

    Read from the MLflow model signature training stores in the bundle (`contract.json`, the
    same signature as in `MLmodel`; MLflow's format: "Model Signatures and Input Examples",
    mlflow.org/docs/latest/ml/model/signatures). Plain class: the server imports score.py
    without registering it in sys.modules, so nothing it loads may need dataclass lookups.
    """

    __slots__ = ("features", "model", "outputs", "serving", "task", "title")

    def __init__(
        self,
        *,
        features: tuple[str, ...],
        outputs: tuple[str, ...],
        task: str,
        serving: str,
        model: str,
        title: str,
    ) -> None:
        self.features = features
        self.outputs = outputs
        self.task = task
        self.serving = serving
        self.model = model
        self.title = title

    @property
    def n_features(self) -> int:
        """How many values every row holds."""
        return len(self.features)

    @property
    def probabilities(self) -> bool:
        """Whether the model answers one probability per class (a classifier)."""
        return self.task == "classification"

    def expected(self) -> str:
        """The request shape, for messages."""
        return f'{{"{INPUT_FIELD}": [[{self.n_features} numbers], ...]}}'

    def locator(self) -> Locator:
        """Where a value sits in a JSON request, e.g. ``data[3][2] (bmi)``."""
        features = self.features

        def locate(row: int, column: int) -> str:
            return f"{INPUT_FIELD}[{row}][{column}] ({features[column]})"

        return locate

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ModelContract:
        """Parse contract.json; ContractError naming what is wrong."""
        try:
            if raw.get("format") != CONTRACT_FORMAT:
                raise ContractError(f"format {raw.get('format')!r}, expected {CONTRACT_FORMAT}")
            signature = raw["signature"]
            inputs = _column_names(signature["inputs"], "inputs")
            outputs = _column_names(signature["outputs"], "outputs")
            return cls(
                features=inputs,
                outputs=outputs,
                task=str(raw["task"]),
                serving=str(raw["serving"]),
                model=str(raw["model"]),
                title=str(raw["title"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, ContractError):
                raise
            raise ContractError(f"contract.json is incomplete or malformed: {error!r}") from None


def _column_names(schema: Any, part: str) -> tuple[str, ...]:
    """Column names of one side of an MLflow signature (stored as a JSON string of ColSpecs)."""
    columns = json.loads(schema) if isinstance(schema, str) else schema
    names = tuple(str(column["name"]) for column in columns if "name" in column)
    if not names or len(names) != len(columns):
        raise ContractError(f"the signature's {part} must be named columns (MLflow ColSpec)")
    return names


Locator = Callable[[int, int], str]


def _reject_constant(name: str) -> NoReturn:
    # Python's json module accepts NaN and Infinity literals, which are not JSON.
    raise InputError(
        BAD_REQUEST,
        f"request body contains {name}, which is not a JSON number; send finite numbers",
    )


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def parse_request_body(body: bytes, *, max_rows: int, contract: ModelContract) -> np.ndarray:
    """Decode and validate a request body; return the rows as a float64 matrix.

    Raises InputError (400 or 413) naming the first problem found. A well-formed request takes
    the fast path (`fast_rows`); anything else, and every error message, comes from the
    reference path, so both give the same answer to every body.
    """
    matrix = fast_rows(body, max_rows, contract.n_features)
    if matrix is not None:
        return matrix
    return parse_request_body_reference(body, max_rows=max_rows, contract=contract)


def _only_numbers_inside(body: bytes) -> bool:
    """Whether a JSON body can hold nothing but numbers and lists besides one object and its key.

    Two quotes (one string: the key), one brace (one object) and no `u` or `l` (every literal
    true, false and null has one; no number has either). Single-byte searches, ~20 times
    faster than counting substrings.
    """
    first = body.find(b'"')
    second = body.find(b'"', first + 1)
    if first < 0 or second < 0 or body.find(b'"', second + 1) >= 0:
        return False
    brace = body.find(b"{")
    if brace < 0 or body.find(b"{", brace + 1) >= 0:
        return False
    return b"u" not in body and b"l" not in body


# Bodies of this size or more are read by simdjson, smaller ones by orjson. A request through
# the server's app in process (tests/benchmarks/bench_instructions.py times each parser at
# each size): at 1 row (~210 bytes) simdjson's path costs 3-4% more CPU than orjson's, its
# larger code running cold after the server's work; at 100 rows (21 kB) orjson's costs 7-9%
# more CPU and ~17% more instructions. Timed the same way, the two tie from 10 to 30 rows.
_SIMDJSON_FROM_BYTES = 4096
# One simdjson parser per thread: a parser is not thread-safe, and it refuses a new document
# while proxies of the previous one live (pysimdjson's csimdjson.pyx, Parser.parse). A parser
# keeps buffers sized for the largest body it read: measured, 3.3 MB of memory for a 1 MB body.
_PARSERS = threading.local()
_ARRAY_OPENING = np.uint8(ord("["))
_UTF8_BOM = b"\xef\xbb\xbf"


def fast_rows(body: bytes, max_rows: int | None, n_features: int) -> np.ndarray | None:
    """The rows of a well-formed request as a float64 matrix, or None to take the reference path.

    Two parsers, each where it costs less (`_SIMDJSON_FROM_BYTES`): `rows_by_orjson` and
    `rows_by_simdjson`. Both check in C that the body holds one object whose only key is
    `data`, a list of 1 to max_rows rows that are lists of exactly n_features numbers; the
    bytes exclude strings, objects, booleans and null among the values
    (`_only_numbers_inside`). A body is only accepted when `parse_request_body_reference`
    accepts it and gives the same matrix, bit for bit (tests/scoring/test_fast_path.py feeds
    each parser and the reference the same bodies).
    """
    if not _only_numbers_inside(body):
        return None
    if len(body) < _SIMDJSON_FROM_BYTES:
        return rows_by_orjson(body, max_rows, n_features)
    return rows_by_simdjson(body, max_rows, n_features)


def rows_by_orjson(body: bytes, max_rows: int | None, n_features: int) -> np.ndarray | None:
    """fast_rows for a body `_only_numbers_inside` passed, parsed by orjson.

    The row lengths and `struct`'s packing exclude ragged rows, rows that are numbers and
    nested lists. `struct` writes the values into the matrix with the same conversion numpy's
    `np.array` applies (`float()` of each, exact for floats, correctly rounded for integers)
    at ~40% of its cost, and no finiteness check is needed: orjson rejects NaN, Infinity and
    every number beyond float range, and reads integers beyond 64 bits as the float they
    convert to.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(document) is not dict or len(document) != 1:
        return None
    data = document.get(INPUT_FIELD)
    if type(data) is not list:
        return None
    rows = len(data)
    if not _row_count_allowed(rows, max_rows):
        return None
    matrix = np.empty((rows, n_features), dtype=np.float64)
    try:
        if set(map(len, data)) != {n_features}:
            return None
        struct.pack_into(f"={rows * n_features}d", matrix.data, 0, *chain.from_iterable(data))
    except (TypeError, OverflowError, struct.error):
        return None
    return matrix


def rows_by_simdjson(body: bytes, max_rows: int | None, n_features: int) -> np.ndarray | None:
    """fast_rows for a body `_only_numbers_inside` passed, parsed by simdjson (pysimdjson).

    simdjson copies the numbers straight into the matrix's buffer (`Array.as_buffer`), with
    no Python object per value. Every row must be a list of exactly n_features values, and
    the body must open exactly one list per row besides `data` itself, so no value is a
    nested list (`as_buffer` would flatten it). simdjson reads numbers exactly as Python's
    `float()` does: doubles correctly rounded, integers of up to 64 bits converted to the
    nearest double (tested bit for bit over every exponent). It rejects what the reference
    path must answer or convert itself: NaN, Infinity, numbers beyond float range and
    integers beyond 64 bits.
    """
    # simdjson skips a byte-order mark, which the reference path answers with 400.
    if body.startswith(_UTF8_BOM):
        return None
    # The proxies below die with this call, so the parser takes the next body.
    try:
        document = _parser().parse(body)
        if type(document) is not simdjson.Object or len(document) != 1:
            return None
        data = document.get(INPUT_FIELD)
        if type(data) is not simdjson.Array:
            return None
        rows = len(data)
        if not _row_count_allowed(rows, max_rows):
            return None
        # Every row a list of n_features values, in C: ~30% cheaper than a loop over the rows.
        # A row that is a number has no len(): the TypeError is caught below.
        if set(map(len, data)) != {n_features}:  # type: ignore[arg-type]
            return None
        values = data.as_buffer(of_type="d")
    # Not JSON (ValueError, UnicodeDecodeError), a row or value that is not a list or number
    # (TypeError), an integer beyond 64 bits (RuntimeError): simdjson's errors (pysimdjson's
    # util.cpp) and len()'s.
    except (ValueError, TypeError, RuntimeError):
        return None
    # One list per row and one for `data`; numpy counts ~3 times faster than bytes.count.
    if np.count_nonzero(np.frombuffer(body, dtype=np.uint8) == _ARRAY_OPENING) != rows + 1:
        return None
    return np.frombuffer(values, dtype=np.float64).reshape(rows, n_features)


def _row_count_allowed(rows: int, max_rows: int | None) -> bool:
    return rows >= MIN_ROWS and (max_rows is None or rows <= max_rows)


def _parser() -> simdjson.Parser:
    try:
        parser: simdjson.Parser = _PARSERS.parser
    except AttributeError:
        parser = _PARSERS.parser = simdjson.Parser()
    return parser


def result_body(outputs: np.ndarray) -> bytes | None:
    """The response body `json.dumps({"result": outputs.tolist()})` writes, written by orjson.

    json.dumps formats every float with Python's `repr` (~0.6 µs a value: the bulk of a
    100-row answer); orjson writes the same shortest round-trip digits ~20 times faster. The
    two notations agree for every finite double except those below 1e-4 in magnitude, where
    `repr` writes a two-digit exponent (1e-05) and orjson a plain decimal (0.00001) or a
    one-digit exponent (1e-09 -> 1e-9). Such outputs (b"e-" or b"0.0000" in orjson's text; an
    output like 10.00001 also matches, harmlessly) return None, for json.dumps to write: the
    bytes a client receives never depend on the path (tests/scoring/test_fast_path.py).
    """
    try:
        encoded = orjson.dumps(outputs, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:  # not C-contiguous: orjson serialises only contiguous arrays
        encoded = orjson.dumps(outputs.tolist())
    if b"e-" in encoded or b"0.0000" in encoded:
        return None
    # json.dumps separates items with ", "; no string can hold a comma in a list of numbers.
    return b'{"' + OUTPUT_FIELD.encode() + b'": ' + encoded.replace(b",", b", ") + b"}"


def parse_request_body_reference(
    body: bytes, *, max_rows: int, contract: ModelContract
) -> np.ndarray:
    """parse_request_body on the standard library's JSON decoder, with every error message.

    Raises InputError (400 or 413) naming the first problem found.
    """
    expected = contract.expected()
    if not body.strip():
        raise InputError(BAD_REQUEST, f"request body is empty; send {expected}")
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
            f"request body must be a JSON object like {expected}, not {_json_type(document)}",
        )
    unknown = sorted(key for key in document if key != INPUT_FIELD)
    if unknown:
        raise InputError(
            BAD_REQUEST,
            f"request body has unknown field(s) {', '.join(map(repr, unknown))}; "
            f"only {INPUT_FIELD!r} is accepted",
        )
    if INPUT_FIELD not in document:
        raise InputError(BAD_REQUEST, f"request body has no {INPUT_FIELD!r} field; send {expected}")
    return rows_to_matrix(
        document[INPUT_FIELD],
        max_rows=max_rows,
        features=contract.features,
        locate=contract.locator(),
    )


def rows_to_matrix(
    data: Any,
    *,
    max_rows: int | None,
    features: tuple[str, ...],
    locate: Locator,
    what: str = INPUT_FIELD,
) -> np.ndarray:
    """Validate rows of feature values and return them as a (rows, features) float64 matrix.

    Every row must be a list of exactly len(features) finite numbers; booleans, null, strings
    and NaN or infinite values are rejected with the position of the first offending value.
    """
    n_features = len(features)
    if not isinstance(data, list):
        raise InputError(
            BAD_REQUEST,
            f"{what!r} must be a list of rows, each a list of {n_features} numbers, "
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
        if type(row) is not list or len(row) != n_features:
            _explain(data, features, locate, what)
        for value in row:
            kind = type(value)
            if kind is not float and kind is not int:
                _explain(data, features, locate, what)
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


def _explain(data: list[Any], features: tuple[str, ...], locate: Locator, what: str) -> NoReturn:
    """Raise the InputError for the first row or value that failed the fast path."""
    n_features = len(features)
    for index, row in enumerate(data):
        if not isinstance(row, list):
            raise InputError(
                BAD_REQUEST,
                f"row {index} of {what!r} must be a list of {n_features} numbers "
                f"({_names(features)}), not {_json_type(row)}",
            )
        if len(row) != n_features:
            raise InputError(
                BAD_REQUEST,
                f"row {index} of {what!r} has {len(row)} values; expected {n_features} "
                f"({_names(features)})",
            )
        for column, value in enumerate(row):
            kind = type(value)
            if kind is not float and kind is not int:
                raise InputError(
                    BAD_REQUEST,
                    f"{locate(index, column)} is {_json_type(value)}; expected a number",
                )
    raise AssertionError("unreachable: _explain found no problem")  # pragma: no cover


def _names(features: tuple[str, ...], shown: int = 12) -> str:
    """The feature names for a message; long lists shortened (30 names would drown it)."""
    if len(features) <= shown:
        return ", ".join(features)
    return f"{', '.join(features[:shown])}, … {features[-1]}"


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
