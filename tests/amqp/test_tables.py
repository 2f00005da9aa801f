"""Field tables: golden bytes, every errata type, typed round trips, pika interop, depth bomb."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from decimal import Decimal

import pika.data
import pytest

from firth.amqp.protocol import AmqpConnectionError, ReplyCode, Typed
from firth.amqp.protocol.constants import MAX_TABLE_DEPTH
from firth.amqp.protocol.tables import (
    decode_array,
    decode_table,
    encode_array,
    encode_table,
    infer_kind,
)

GOLDEN_TABLE = (
    b"\x00\x00\x00\x28"  # table size: 40 bytes follow
    b"\x05count"  # name: shortstr "count"
    b"l"  # type l: int64 (RabbitMQ errata; the 0-9-1 text says unsigned)
    b"\x00\x00\x00\x00\x00\x00\x00\x03"  # 3
    b"\x06reason"  # name "reason"
    b"S"  # type S: long string
    b"\x00\x00\x00\x08rejected"  # uint32 length 8, "rejected"
    b"\x02ok"  # name "ok"
    b"t"  # type t: boolean
    b"\x01"  # true
)


def test_golden_table_decodes_field_by_field() -> None:
    table, end = decode_table(GOLDEN_TABLE)
    assert table == {"count": 3, "reason": "rejected", "ok": True}
    assert end == len(GOLDEN_TABLE)


def test_golden_table_encodes_with_explicit_types() -> None:
    encoded = encode_table({"count": Typed("l", 3), "reason": "rejected", "ok": True})
    assert encoded == GOLDEN_TABLE


EVERY_TYPE = {
    "t": Typed("t", True),
    "b": Typed("b", -5),
    "B": Typed("B", 250),
    "s": Typed("s", -30000),
    "u": Typed("u", 65000),
    "I": Typed("I", -(2**31)),
    "i": Typed("i", 2**32 - 1),
    "l": Typed("l", -(2**63)),
    "f": Typed("f", 1.5),
    "d": Typed("d", 3.141592653589793),
    "D": Typed("D", Decimal("12.345")),
    "S": Typed("S", "héllo"),
    "x": Typed("x", b"\x00\xff raw"),
    "T": Typed("T", datetime(2026, 11, 26, 12, 0, tzinfo=UTC)),
    "F": Typed("F", {"inner": Typed("I", 1)}),
    "A": Typed("A", [Typed("I", 1), Typed("S", "two"), Typed("V", None)]),
    "V": Typed("V", None),
}


def test_every_errata_type_round_trips_typed_byte_for_byte() -> None:
    encoded = encode_table(EVERY_TYPE)
    typed, end = decode_table(encoded, typed=True)
    assert end == len(encoded)
    assert typed == EVERY_TYPE
    assert encode_table(typed) == encoded


def test_every_errata_type_decodes_to_plain_python_values() -> None:
    plain, _ = decode_table(encode_table(EVERY_TYPE))
    assert plain["t"] is True
    assert plain["s"] == -30000 and plain["l"] == -(2**63)
    assert plain["D"] == Decimal("12.345")
    assert plain["T"] == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert plain["F"] == {"inner": 1}
    assert plain["A"] == [1, "two", None]
    assert plain["x"] == b"\x00\xff raw"
    assert Typed("F", {"a": Typed("s", 1)}).plain() == {"a": 1}


def test_wire_type_codes_are_the_errata_ones() -> None:
    # One value of each width: the type octet follows the 1-byte name "k".
    for kind, size in {"b": 1, "B": 1, "s": 2, "u": 2, "I": 4, "i": 4, "l": 8}.items():
        encoded = encode_table({"k": Typed(kind, 1)})
        assert encoded[4:7] == b"\x01k" + kind.encode()
        assert len(encoded) == 4 + 3 + size


def test_typed_decoding_preserves_narrow_types_that_plain_reencoding_would_change() -> None:
    client_headers = encode_table({"retries": Typed("s", 2), "ratio": Typed("f", 0.5)})
    plain, _ = decode_table(client_headers)
    assert encode_table(plain) != client_headers  # s→I and f→d: why typed decoding exists
    typed, _ = decode_table(client_headers, typed=True)
    assert encode_table(typed) == client_headers


def test_non_utf8_long_string_survives_a_round_trip_as_the_same_bytes() -> None:
    raw = b"\x00\x00\x00\x09\x01kS\x00\x00\x00\x02\xff\xfe"
    plain, _ = decode_table(raw)
    assert encode_table(plain) == raw


def test_inference_rules() -> None:
    assert [infer_kind(v) for v in (True, 1, 2**40, 1.0, "s", b"b", None, [], {})] == list(
        "tIldSxVAF"
    )
    with pytest.raises(TypeError):
        infer_kind(object())


@pytest.mark.parametrize("kind", ["F", "A"])
def test_depth_bomb_of_10000_levels_is_a_syntax_error_not_recursion(kind: str) -> None:
    # Build the bomb bytes directly: each level wraps the previous one.
    inner = b"\x00\x00\x00\x00"
    for _ in range(10_000):
        entry = b"\x01a" + b"F" + inner if kind == "F" else b"A" + inner
        inner = struct.pack(">I", len(entry)) + entry
    with pytest.raises(AmqpConnectionError) as caught:
        if kind == "F":
            decode_table(inner)
        else:
            decode_array(inner)
    assert caught.value.reply_code is ReplyCode.SYNTAX_ERROR


def test_nesting_up_to_the_limit_decodes() -> None:
    value: object = {}
    for _ in range(MAX_TABLE_DEPTH - 1):
        value = {"a": value}
    assert isinstance(value, dict)
    table, _ = decode_table(encode_table(value))
    assert table == value


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\x00\x00",  # size cut short
        b"\x00\x00\x00\x05\x01k",  # size promises more than there is
        b"\x00\x00\x00\x03\x01kI",  # value missing
        b"\x00\x00\x00\x04\x01kZ\x00",  # unknown type octet
        b"\x00\x00\x00\x08\x01kS\x00\x00\x00\x09",  # string longer than its table
        b"\x00\x00\x00\x04\x05k",  # name longer than the table
        b"\x00\x00\x00\x0b\x01kT\xff\xff\xff\xff\xff\xff\xff\xff",  # timestamp out of range
    ],
)
def test_malformed_tables_are_syntax_errors(raw: bytes) -> None:
    with pytest.raises(AmqpConnectionError) as caught:
        decode_table(raw)
    assert caught.value.reply_code is ReplyCode.SYNTAX_ERROR


def test_table_with_trailing_data_stops_at_its_end() -> None:
    table, end = decode_table(GOLDEN_TABLE + b"trailing")
    assert table["count"] == 3 and end == len(GOLDEN_TABLE)


def test_array_round_trip() -> None:
    items = [1, "x", [2, {"k": False}]]
    decoded, _ = decode_array(encode_array(items))
    assert decoded == items


def test_pika_encoded_tables_decode_here() -> None:
    pieces: list[bytes] = []
    table = {
        "str": "value",
        "int": 42,
        "big": 2**40,
        "neg": -7,
        "bool": False,
        "nested": {"list": [1, "a", {"deep": True}]},
        "dec": Decimal("1.25"),
        "none": None,
        "time": datetime(2020, 1, 1),
        "bytes": b"\x01\x02",
    }
    pika.data.encode_table(pieces, table)
    decoded, _ = decode_table(b"".join(pieces))
    assert decoded["str"] == "value" and decoded["int"] == 42 and decoded["big"] == 2**40
    assert decoded["neg"] == -7 and decoded["bool"] is False
    assert decoded["nested"] == {"list": [1, "a", {"deep": True}]}
    assert decoded["dec"] == Decimal("1.25") and decoded["none"] is None
    assert decoded["time"] == datetime(2020, 1, 1, tzinfo=UTC)
    assert decoded["bytes"] == b"\x01\x02"


def test_our_tables_decode_in_pika() -> None:
    table = {"str": "value", "int": 42, "big": 2**40, "nested": {"list": [1, "a"]}, "t": True}
    decoded, _ = pika.data.decode_table(encode_table(table), 0)
    assert decoded == table
