"""``_client.codec``: msgspec's speed with exactly the standard library's results, bytes and errors alike."""

from __future__ import annotations

import json
import math
import random
import struct
from typing import Any

import pytest

from airflow_provider_ecoinvent._client.codec import decode, json_line, stdlib_json_line

AWKWARD_FLOATS = [
    1e-05,
    -0.0,
    0.0,
    1e300,
    -1e300,
    0.1 + 0.2,
    5e-324,
    1e16,
    9.999999999999998e15,
    1e-4,
    9.99e-05,
    -1.2345e-07,
    2.0,
    1.7976931348623157e308,
    float("nan"),
    float("inf"),
    float("-inf"),
]
AWKWARD_TEXT = ["", "ü北😀", "\u2028\u2029", '"\\/', "".join(map(chr, range(0x80))), "\ufeff\U0010ffff"]


def random_float(rng: random.Random) -> float:
    while True:
        value: float = struct.unpack("d", rng.randbytes(8))[0]
        if math.isfinite(value):
            return rng.choice([value, rng.uniform(-1e-3, 1e-3), rng.uniform(-1e18, 1e18), round(value, 3)])


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """A value as JSON decoding makes them, awkward parts over-represented."""
    pick = rng.randrange(10 if depth < 4 else 7)
    if pick == 0:
        return rng.choice(AWKWARD_FLOATS)
    if pick == 1:
        return random_float(rng)
    if pick == 2:
        return rng.choice([0, -1, 2**63, -(2**64) - 1, 10**30, rng.randrange(-(10**6), 10**6)])
    if pick == 3:
        return rng.choice([True, False, None])
    if pick in (4, 5, 6):
        return rng.choice(AWKWARD_TEXT) + "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(5)))
    if pick in (7, 8):
        keys = [rng.choice(["a", "B", "é", "_", "10", "9", "😀", ""]) + str(i) for i in range(rng.randrange(6))]
        return {key: random_json(rng, depth + 1) for key in keys}
    return [random_json(rng, depth + 1) for _ in range(rng.randrange(5))]


def test_lines_are_byte_for_byte_those_of_the_standard_library() -> None:
    rng = random.Random(16)
    for _ in range(5000):
        record = {"id": rng.randrange(1000), "value": random_json(rng)}
        assert json_line(record) == stdlib_json_line(record), record


@pytest.mark.parametrize("value", AWKWARD_FLOATS, ids=repr)
def test_every_awkward_float_is_spelled_as_json_spells_it(value: float) -> None:
    assert json_line({"score": value, "nested": [{"x": value}]}) == stdlib_json_line(
        {"score": value, "nested": [{"x": value}]}
    )


class Score(float):
    pass


@pytest.mark.parametrize(
    "record",
    [
        {1: "int key", 2: "sorted by number"},
        {"t": (1, 2.5e-7)},
        {"f": Score(1e-7)},
        {"s": "lone \ud800 surrogate"},
        {"x": {1, 2}},
    ],
    ids=["int-keys", "tuple", "float-subclass", "lone-surrogate", "set"],
)
def test_what_json_treats_its_own_way_gets_jsons_result_or_error(record: dict[Any, Any]) -> None:
    try:
        expected: bytes | type[BaseException] = stdlib_json_line(record)
    except (TypeError, ValueError) as err:
        expected = type(err)
    if isinstance(expected, bytes):
        assert json_line(record) == expected
    else:
        with pytest.raises(expected):
            json_line(record)


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1.5e-7, "a": 2, "b": [1e16, -0.0, 123456789012345678901234567890]}',
        b"[NaN, Infinity, -Infinity, 1e400]",
        b'\xef\xbb\xbf{"bom": true}',
        '{"utf16": 1}'.encode("utf-16"),
        b'"lone \\ud800"',
        b" \t\r\n[1]\n",
        b'{"x": "\\u00fc\\ud83d\\ude00"}',
    ],
)
def test_answers_decode_to_what_json_loads_gives(body: bytes) -> None:
    expected = json.loads(body)
    assert json.dumps(decode(body)) == json.dumps(expected)  # NaN == NaN and -0.0 != 0.0 as text


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"<html>502</html>", json.JSONDecodeError),
        (b'{"a": 1} trailing', json.JSONDecodeError),
        (b'{"a": "\xff"}', UnicodeDecodeError),
        (b"[" * 100_000 + b"]" * 100_000, RecursionError),
        (b"1" * 5000, ValueError),
    ],
    ids=["html", "trailing", "bad-utf8", "too-deep", "int-over-4300-digits"],
)
def test_what_is_not_json_raises_what_json_loads_raises(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        json.loads(body)
    with pytest.raises(error):
        decode(body)
