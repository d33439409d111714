"""The fast request path (orjson or simdjson) answers exactly what the reference path answers.

`scoring.schema.parse_request_body` takes `fast_rows` for well-formed requests and the standard
library's decoder (`parse_request_body_reference`) for everything else and for every message.
`fast_rows` reads small bodies with orjson and larger ones with simdjson; the tests that take
the `parser` fixture run once with each parser taking every body. They feed the fast and the
reference path the same bodies, well-formed and broken, and require the same matrix or the
same error; and they require the fast path to really take the common requests, so that the
comparison is not between the reference path and itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.scoring_env import REPO_ROOT
from scoring import schema
from scoring.schema import (
    InputError,
    ModelContract,
    fast_rows,
    parse_request_body,
    parse_request_body_reference,
)
from tests.scoring.conftest import API_KEY, make_request

N = 3
CONTRACT = ModelContract(
    features=("a", "b", "c"),
    outputs=("y",),
    task="regression",
    serving="numpy",
    model="test",
    title="test",
)
MAX_ROWS = 5
PARSERS = ("orjson", "simdjson")


@pytest.fixture(params=PARSERS)
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """fast_rows with one parser taking every body, whatever its size."""
    simdjson_from = 0 if request.param == "simdjson" else 2**62
    monkeypatch.setattr(schema, "_SIMDJSON_FROM_BYTES", simdjson_from)
    return str(request.param)


def outcome(parse: Any, body: bytes) -> tuple[str, Any]:
    """What a parser answers: the matrix as exact bytes with its shape, or the error."""
    try:
        matrix = parse(body, max_rows=MAX_ROWS, contract=CONTRACT)
    except InputError as error:
        return "error", (error.status, error.message, error.headers)
    return "rows", (matrix.dtype.str, matrix.shape, matrix.tobytes())


# Bodies the fast path must take: what clients send, in the forms JSON allows.
WELL_FORMED = [
    b'{"data": [[1.5, -2.25, 3e-3]]}',
    b'{"data": [[1, 2, 3]]}',  # integers
    b'{"data": [[1, 2.5, -0]]}',  # integers and floats mixed, negative zero
    b'{"data": [[-0.0, 0.0, 1E5], [1e+5, 2.5E-300, 1.7976931348623157e308]]}',
    # 64-bit integers, rounded to the nearest double (2**53 + 1 to 2**53) as float() rounds them
    b'{"data": [[9007199254740993, 18446744073709551615, -9223372036854775808]]}',
    b'{"data": [[1e-400, -1e-400, 4.9e-324]]}',  # underflow to (negative) zero, subnormal
    b'\n { "data" :\n[ [1,2,3] ,[4,5,6] ] }\r\n',  # whitespace anywhere
    b'{"data": [[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 1, 1], [0, 0, 0]]}',  # max rows
]

# Bodies the fast path must leave to the reference path, which names the problem.
REFERENCE_ONLY = [
    b"",
    b"   ",
    b"not json",
    b'{"data": [[1, 2, 3]]',  # truncated
    b'{"data": [[NaN, 2, 3]]}',
    b'{"data": [[Infinity, 2, 3]]}',
    b'{"data": [[-Infinity, 2, 3]]}',
    b'{"data": [[1e400, 2, 3]]}',  # overflows to infinity
    b'{"data": [[1' + b"0" * 400 + b", 2, 3]]}",  # an integer too large for a float
    b'{"data": [[true, 2, 3]]}',
    b'{"data": [[false, 2, 3]]}',
    b'{"data": [[null, 2, 3]]}',
    b'{"data": [["1.5", 2, 3]]}',  # a number in a string
    b'{"data": [[{"v": 1}, 2, 3]]}',
    b'{"data": [[[1], 2, 3]]}',  # a nested list
    # Nested lists a row's length and the count of its numbers cannot tell from numbers:
    b'{"data": [[[1], [2], [3]]]}',
    b'{"data": [[1, 2, 3], [4, [5], 6]]}',
    b'{"data": [[[], 1, [2, 3]]]}',
    b'{"data": [[1, 2, 3], [[4, 5, 6]]]}',
    b'{"data": [[1, 2, 3], 4]}',
    b'{"data": [[1, 2]]}',  # a value missing
    b'{"data": [[1, 2, 3, 4]]}',  # a value too many
    b'{"data": [[1, 2, 3], [1, 2]]}',  # ragged
    b'{"data": [1, 2, 3]}',  # not a list of rows
    b'{"data": []}',
    b'{"data": [[]]}',
    b'{"data": [[1, 2, 3]], "extra": 1}',
    b'{"rows": [[1, 2, 3]]}',  # the field missing
    b"{}",
    b'{"data": [[1, 2, 3]], "data": [[4, 5, 6]]}',  # a duplicate key
    b'{"data": {"0": [1, 2, 3]}}',
    b'{"data": "[[1, 2, 3]]"}',
    b"[[1, 2, 3]]",
    b'"data"',
    b"null",
    b'{"data": [[1, 2, 3]]} trailing',
    b'\xef\xbb\xbf{"data": [[1, 2, 3]]}',  # a byte-order mark
    b'{"data": [[1, 2, 3\xff]]}',  # invalid UTF-8
    b'{"d\\u0061ta": [[1, 2, 3]]}',  # an escaped key
    b'{"data": [[1, 2, 3]] ' + b"[" * 2000 + b"]" * 2000 + b"}",
    json.dumps({"data": [[1, 2, 3]] * (MAX_ROWS + 1)}).encode(),  # over the row limit
]


# Integers beyond 64 bits: orjson reads them as the float they convert to; simdjson refuses
# them, and the reference path converts them itself.
BEYOND_64_BITS = [
    b'{"data": [[123456789012345678901234567890, 1, 2]]}',
    b'{"data": [[18446744073709551616, 1, 2]]}',
    b'{"data": [[-9223372036854775809, 1, 2]]}',
]


@pytest.mark.parametrize("body", WELL_FORMED)
def test_the_fast_path_takes_well_formed_requests_and_gives_the_references_matrix(
    parser: str, body: bytes
) -> None:
    assert fast_rows(body, MAX_ROWS, N) is not None
    assert outcome(parse_request_body, body) == outcome(parse_request_body_reference, body)


@pytest.mark.parametrize("body", REFERENCE_ONLY)
def test_the_fast_path_leaves_every_other_body_to_the_reference_path(
    parser: str, body: bytes
) -> None:
    assert fast_rows(body, MAX_ROWS, N) is None
    assert outcome(parse_request_body, body) == outcome(parse_request_body_reference, body)


@pytest.mark.parametrize("body", BEYOND_64_BITS)
def test_integers_beyond_64_bits_get_the_references_float_from_either_parser(
    parser: str, body: bytes
) -> None:
    assert (fast_rows(body, MAX_ROWS, N) is not None) is (parser == "orjson")
    assert outcome(parse_request_body, body) == outcome(parse_request_body_reference, body)


def test_small_bodies_are_read_by_orjson_and_large_ones_by_simdjson(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken: list[str] = []
    monkeypatch.setattr(schema, "rows_by_orjson", lambda *args: taken.append("orjson"))
    monkeypatch.setattr(schema, "rows_by_simdjson", lambda *args: taken.append("simdjson"))
    for rows in (1, 2, 500):
        fast_rows(json.dumps({"data": [[0.25, 0.5, 0.75]] * rows}).encode(), None, N)
    small, large = len(b'{"data": [[0.25, 0.5, 0.75]]}'), schema._SIMDJSON_FROM_BYTES
    assert small < large < len(json.dumps({"data": [[0.25, 0.5, 0.75]] * 500}))
    assert taken == ["orjson", "orjson", "simdjson"]


_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),  # json.dumps writes NaN and Infinity
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
_ROWS = st.lists(st.lists(_VALUES, min_size=N - 1, max_size=N + 1), max_size=MAX_ROWS + 1)
_DOCUMENTS = st.one_of(
    st.builds(lambda rows: {"data": rows}, _ROWS),
    st.builds(
        lambda rows, extra: {"data": rows, **extra},
        _ROWS,
        st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    ),
    st.builds(lambda rows: {"rows": rows}, _ROWS),
    _ROWS,
)


# The parser fixture sets one module attribute for the whole test, the same for every example.
_ONE_FIXTURE_FOR_ALL_EXAMPLES = [HealthCheck.function_scoped_fixture]


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, *_ONE_FIXTURE_FOR_ALL_EXAMPLES],
)
@given(document=_DOCUMENTS, indent=st.sampled_from([None, 0, 2]))
def test_any_document_gets_the_same_answer_from_both_paths(
    parser: str, document: Any, indent: int | None
) -> None:
    body = json.dumps(document, indent=indent).encode()
    assert outcome(parse_request_body, body) == outcome(parse_request_body_reference, body)


@settings(max_examples=300, deadline=None, suppress_health_check=_ONE_FIXTURE_FOR_ALL_EXAMPLES)
@given(
    rows=st.lists(
        st.lists(
            st.one_of(
                st.floats(allow_nan=False, allow_infinity=False),
                st.integers(-(2**63), 2**64 - 1),  # what both parsers read (BEYOND_64_BITS)
            ),
            min_size=N,
            max_size=N,
        ),
        min_size=1,
        max_size=MAX_ROWS,
    )
)
def test_rows_of_numbers_take_the_fast_path_with_the_references_matrix(
    parser: str, rows: list[list[float]]
) -> None:
    body = json.dumps({"data": rows}).encode()
    assert fast_rows(body, MAX_ROWS, N) is not None
    assert outcome(parse_request_body, body) == outcome(parse_request_body_reference, body)


def every_exponent(notation: str) -> tuple[bytes, np.ndarray]:
    """A body of numbers over every exponent written in `notation`, and the matrix float() reads.

    Random bit patterns cover every exponent, subnormals included; 64-bit integers are added.
    """
    rng = np.random.default_rng(15)
    patterns = rng.integers(0, 2**64, size=30_000, dtype=np.uint64).view(np.float64)
    values = [notation.format(v) for v in patterns[np.isfinite(patterns)].tolist()]
    values += [str(v) for v in rng.integers(-(2**63), 2**63, size=3_000).tolist()]
    values = values[: len(values) // N * N]
    rows = ", ".join(f"[{', '.join(values[i : i + N])}]" for i in range(0, len(values), N))
    expected = np.array([float(json.loads(v)) for v in values]).reshape(-1, N)
    return f'{{"data": [{rows}]}}'.encode(), expected


# Python's shortest round trip, 17 and 26 significant digits (more than a double holds:
# correct rounding decides) and cut to 3 decimals, as clients write numbers.
NOTATIONS = ["{!r}", "{:.17g}", "{:.25e}", "{:.3f}"]


@pytest.mark.parametrize("notation", NOTATIONS)
def test_numbers_are_read_as_python_reads_them_over_every_exponent(
    parser: str, notation: str
) -> None:
    body, expected = every_exponent(notation)
    matrix = fast_rows(body, None, N)
    assert matrix is not None
    assert matrix.tobytes() == expected.tobytes()


# Reads a body on stdin with simdjson; writes its kernel's name on stderr, the matrix on stdout.
_READ_WITH_SIMDJSON = f"""
import sys
from scoring import schema
matrix = schema.rows_by_simdjson(sys.stdin.buffer.read(), None, {N})
sys.stderr.write(schema._parser().implementation[0])
sys.stdout.buffer.write(b"" if matrix is None else matrix.tobytes())
"""


@pytest.mark.parametrize("notation", NOTATIONS[::2])
def test_every_simdjson_kernel_reads_numbers_as_python_does(notation: str) -> None:
    # simdjson picks a kernel by the CPU it runs on (AVX-512, AVX2, SSE4.2 or portable code),
    # so an Azure VM may run another than this machine; SIMDJSON_FORCE_IMPLEMENTATION (read
    # by simdjson at its first parse) runs each one here.
    body, expected = every_exponent(notation)
    kernels = [name for name, _ in schema._parser().get_implementations()]
    assert "fallback" in kernels
    for kernel in kernels:
        done = subprocess.run(
            [sys.executable, "-c", _READ_WITH_SIMDJSON], input=body,
            env={**os.environ, "SIMDJSON_FORCE_IMPLEMENTATION": kernel},
            cwd=REPO_ROOT, capture_output=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stderr.decode() == kernel
        assert done.stdout == expected.tobytes()


def test_the_parser_takes_the_next_body_whatever_the_last_one_was(parser: str) -> None:
    # simdjson's parser refuses a document while proxies of the last one live; every way out
    # of fast_rows (accepted, refused at any check, a simdjson error) must release them.
    good = b'{"data": [[1, 2, 3]]}'
    for body in (*WELL_FORMED, *REFERENCE_ONLY, *BEYOND_64_BITS):
        fast_rows(body, MAX_ROWS, N)
        matrix = fast_rows(good, MAX_ROWS, N)
        assert matrix is not None, body
        assert matrix.tolist() == [[1.0, 2.0, 3.0]]


def test_threads_parsing_at_once_each_get_their_own_rows(parser: str) -> None:
    # Each thread has its own parser: one thread's document never leaks into another's rows.
    def parse_many(seed: int) -> bool:
        for step in range(300):
            rows = [[float(seed), float(step), float(i)] for i in range(1 + step % MAX_ROWS)]
            matrix = fast_rows(json.dumps({"data": rows}).encode(), MAX_ROWS, N)
            if matrix is None or matrix.tolist() != rows:
                return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(parse_many, range(16)))


RESPONSE_CASES = [
    ("floats", lambda n: {"data": [[0.5] * n]}),
    ("ints", lambda n: {"data": [[1] * n, [0] * n]}),
    ("mixed", lambda n: {"data": [[1] + [0.25] * (n - 1)]}),
    ("nan", lambda n: '{"data": [[NaN' + ", 1" * (n - 1) + "]]}"),
    ("infinity", lambda n: '{"data": [[Infinity' + ", 1" * (n - 1) + "]]}"),
    ("overflowing value", lambda n: '{"data": [[1e400' + ", 1" * (n - 1) + "]]}"),
    # A regressor's prediction overflows (400); a classifier's probabilities stay finite (200).
    ("huge values", lambda n: {"data": [[1.7e308] * n]}),
    ("boolean", lambda n: {"data": [[True] + [1] * (n - 1)]}),
    ("null", lambda n: {"data": [[None] * n]}),
    ("string", lambda n: {"data": [["1"] * n]}),
    ("extra field", lambda n: {"data": [[1] * n], "id": 3}),
    ("missing field", lambda n: {"rows": [[1] * n]}),
    ("value missing", lambda n: {"data": [[1] * (n - 1)]}),
    ("value too many", lambda n: {"data": [[1] * (n + 1)]}),
    ("too many rows", lambda n: {"data": [[1] * n] * 1001}),
]


@pytest.mark.parametrize(("case", "make_body"), RESPONSE_CASES, ids=[c for c, _ in RESPONSE_CASES])
def test_run_answers_the_same_on_both_paths(
    load_script: Any, monkeypatch: pytest.MonkeyPatch, parser: str, case: str, make_body: Any
) -> None:
    scorer = load_script(SCORING_API_KEY=API_KEY)
    body = make_body(scorer._service.model.contract.n_features)
    headers = {"Authorization": f"Bearer {API_KEY}", "x-request-id": f"same-{case}"}

    def answer() -> tuple[int, Any, dict[str, str]]:
        response = scorer.run(make_request(body, headers=headers))
        if isinstance(response, dict):
            return 200, json.dumps(response, allow_nan=False), {}
        return response.status_code, response.get_data(), dict(response.headers)

    fast = answer()
    monkeypatch.setattr(schema, "fast_rows", lambda *args: None)
    assert answer() == fast
    if case in ("floats", "ints", "mixed") or (fast[0] == 200 and case == "huge values"):
        assert fast[0] == 200
        assert np.all(np.isfinite(json.loads(fast[1])["result"]))
    else:
        assert fast[0] in (400, 413)


# -- the answer: orjson writes it where it writes what json.dumps writes -----------------------


def dumped(outputs: np.ndarray) -> bytes:
    """What the server writes for a returned dict: json.dumps (AMLResponse)."""
    return json.dumps({"result": outputs.tolist()}).encode()


_FINITE = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=500, deadline=None)
@given(
    values=st.lists(_FINITE, min_size=1, max_size=40),
    classes=st.sampled_from([None, 2]),
)
def test_a_written_answer_is_byte_for_byte_what_json_dumps_writes(
    values: list[float], classes: int | None
) -> None:
    outputs = np.asarray(values if classes is None else values * classes)
    if classes is not None:
        outputs = outputs.reshape(-1, classes)
    assert schema.result_body(outputs) in (None, dumped(outputs))


def test_written_answers_match_json_dumps_over_every_exponent() -> None:
    # Random bit patterns cover every exponent; the range predictions live in gets its own draw.
    rng = np.random.default_rng(15)
    patterns = rng.integers(0, 2**64, size=60_000, dtype=np.uint64).view(np.float64)
    typical = rng.uniform(-10, 10, 60_000) * 10.0 ** rng.integers(-5, 17, 60_000)
    for value in (*patterns[np.isfinite(patterns)].tolist(), *typical.tolist()):
        outputs = np.array([value])
        body = schema.result_body(outputs)
        assert body in (None, dumped(outputs)), value
        if body is None:  # left to json.dumps only where orjson's notation would differ
            assert abs(value) < 1e-4 or "0.0000" in repr(value), value


@pytest.mark.parametrize(
    ("outputs", "written"),
    [
        ([190.21229396217882, -0.0, 5.0, 1e16, 1.2345678901234568e17, 0.0001], True),
        ([1e-05], False),  # repr 1e-05, orjson 0.00001
        ([3.5e-9], False),  # repr 3.5e-09, orjson 3.5e-9
        ([[0.99999999996, 4.07e-11]], False),  # a classifier's tiny probability
        ([[0.25, 0.75], [0.5, 0.5]], True),
    ],
)
def test_answers_orjson_would_write_differently_are_left_to_json_dumps(
    outputs: list[Any], written: bool
) -> None:
    array = np.asarray(outputs)
    assert (schema.result_body(array) is not None) is written
    if written:
        assert schema.result_body(array) == dumped(array)


def test_an_answer_not_contiguous_in_memory_is_written_all_the_same() -> None:
    outputs = np.asfortranarray([[0.25, 0.75], [0.5, 0.5], [0.125, 0.875]])
    assert not outputs.flags.c_contiguous
    assert schema.result_body(outputs) == dumped(outputs)


def test_large_answers_are_written_here_and_small_ones_left_to_the_server(
    load_script: Any, monkeypatch: pytest.MonkeyPatch, bundle: Any
) -> None:
    scorer = load_script()
    assert isinstance(scorer.run(make_request({"data": bundle.rows[:1].tolist()})), dict)
    body = {"data": bundle.rows[: scorer._WRITE_RESULT_FROM].tolist()}
    written = scorer.run(make_request(body))
    monkeypatch.setattr(scorer, "_WRITE_RESULT_FROM", 10**9)
    returned = scorer.run(make_request(body))
    assert isinstance(returned, dict)
    if bundle.spec.name == "diabetes":  # predictions in the tens and hundreds: always written
        assert not isinstance(written, dict)
    if isinstance(written, dict):  # a probability below 1e-4: left to json.dumps
        assert written == returned
    else:
        assert (written.status_code, written.get_data()) == (200, json.dumps(returned).encode())
        assert written.mimetype == "application/json"
        assert written.headers["x-ms-run-function-failed"] == "False"
