"""`codec.encode` writes floats so that both backends give back the float that was appended:
exponent forms with a positive exponent ("1e+16", which jsonb would store as an integer) are
rewritten in fixed-point form, and nothing else (strings, ints, other floats) changes."""

from __future__ import annotations

import json
import math
import random
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firth.eventsourcing import codec
from firth.eventsourcing.codec import decode, encode, encode_unchecked, fixed_point_floats
from firth.eventsourcing.errors import SerializationError


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


def identical(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down, floats bit for bit (so -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return _bits(a) == _bits(b)
    if isinstance(a, list):
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(identical(a[key], b[key]) for key in a)
    return bool(a == b)


def _compact(value: Any) -> str:
    """What the encoder wrote before big floats were rewritten (json.dumps, compact)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def random_finite_floats(count: int, seed: int) -> list[float]:
    """Floats from random 64-bit patterns (every exponent equally likely), finite ones only."""
    rng = random.Random(seed)
    floats: list[float] = []
    while len(floats) < count:
        (value,) = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))
        if math.isfinite(value):
            floats.append(value)
    return floats


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e16, "10000000000000000.0"),
        (-1e16, "-10000000000000000.0"),
        (-2.5e20, "-250000000000000000000.0"),
        (1.2345678901234567e16, "12345678901234568.0"),
        (1e300, "1" + "0" * 300 + ".0"),
        (1.5e300, "15" + "0" * 299 + ".0"),
        (1.7976931348623157e308, "17976931348623157" + "0" * 292 + ".0"),
    ],
)
def test_floats_in_positive_exponent_form_are_written_in_fixed_point(
    value: float, text: str
) -> None:
    assert "e+" in repr(value)
    assert encode(value) == encode_unchecked(value) == text
    assert identical(json.loads(text), value)
    assert identical(decode(text), value)


@pytest.mark.parametrize(
    "value",
    [
        0.0,
        -0.0,
        0.1,
        -2.5,
        1e15,
        9999999999999998.0,
        1e-05,
        -1.5e-07,
        5e-324,
        2.2250738585072014e-308,
    ],
)
def test_other_floats_are_written_as_python_writes_them(value: float) -> None:
    assert encode(value) == repr(value)
    assert identical(decode(encode(value)), value)


@pytest.mark.parametrize("value", [0, 1, -1, 10**16, -(10**16), 10**20, 10**300, -(10**30)])
def test_integers_keep_their_form(value: int) -> None:
    assert encode(value) == str(value)
    assert identical(decode(encode(value)), value)


@pytest.mark.parametrize(
    "value",
    [
        "1e+16",
        "e+",
        {"1e+16": "-2.5e+20"},
        ['quote " 1e+16', "backslash \\", "\\", 'x\\"1e+16', "ünïcödé e+ ✓ 𝄞", "\n1e+16\t"],
        {"k e+": [1, "e+", 2.5, {"e+": "e+"}]},
    ],
)
def test_strings_holding_e_plus_come_out_unchanged(value: Any) -> None:
    """They take the slow path (the text holds "e+"), which must leave them as they were."""
    text = encode(value)
    assert "e+" in text
    assert text == _compact(value)
    assert identical(decode(text), value)


def test_floats_nested_among_strings_that_look_like_them() -> None:
    value = {
        "1e+16": [1e16, "1e+16", {"x": -2.5e20, "y": ["e+", 1.5e300, 7]}],
        "small": [1e-05, 5e-324],
        "n": 10**20,
    }
    text = encode(value)
    assert text == (
        '{"1e+16":[10000000000000000.0,"1e+16",{"x":-250000000000000000000.0,'
        f'"y":["e+",15{"0" * 299}.0,7]}}],"small":[1e-05,5e-324],"n":100000000000000000000}}'
    )
    assert identical(decode(text), value)


def test_random_bit_patterns_decode_to_the_identical_float() -> None:
    floats = random_finite_floats(50_000, seed=20261127)
    assert sum("e+" in repr(value) for value in floats) > 10_000  # the rewrite is exercised
    for value in floats:
        text = encode(value)
        assert "e+" not in text
        assert identical(json.loads(text), value), (value, text)
    assert identical(decode(encode(floats)), floats)


def test_fixed_point_floats_leaves_other_numbers_alone() -> None:
    text = '[1e-05,5e-324,-0.0,12,1.5,"1e+16",1e+16]'
    assert fixed_point_floats(text) == '[1e-05,5e-324,-0.0,12,1.5,"1e+16",10000000000000000.0]'


def test_the_pure_python_encoder_writes_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the C encoder is missing, the fallback gets the same fixed-point pass."""
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    python_encode = codec._make_encoder()
    value = {"a": [1e16, -2.5e20, 1e-05, 10**20, "1e+16", 'q"e+\\'], "b": {"c": 1.5e300}}
    assert python_encode(value) == encode(value)
    assert identical(decode(python_encode(value)), value)


def test_refusals_are_unchanged() -> None:
    with pytest.raises(SerializationError):
        encode({"x": math.inf})
    with pytest.raises(SerializationError):
        encode([math.nan, 1e16])
    with pytest.raises(SerializationError):
        encode({"x": object(), "y": 1e16})
    with pytest.raises(SerializationError, match="NUL"):
        encode(["\x00", 1e16])


_text = st.text(st.characters(exclude_characters="\x00"))  # NUL is refused (tested above)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
    | st.sampled_from(["e+", "1e+16", '"e+', "\\e+", "2.5e+20"]),
    lambda children: st.lists(children) | st.dictionaries(_text, children),
    max_leaves=20,
)


@given(_json)
def test_any_json_value_decodes_to_the_identical_value(value: Any) -> None:
    text = encode(value)
    assert identical(json.loads(text), value)
    if "e+" not in "".join(repr(x) for x in _floats(value)):
        assert text == _compact(value)  # without big floats, the text is what it always was


def _floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, list):
        return [x for item in value for x in _floats(item)]
    if isinstance(value, dict):
        return [x for item in value.values() for x in _floats(item)]
    return []
