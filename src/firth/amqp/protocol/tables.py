"""Field tables and arrays with RabbitMQ's errata types, decoded to typed Python values.

Wire format: a table is ``long-uint size`` then entries ``shortstr name, octet type, value``; an
array (``A``) is ``long-uint size`` then ``octet type, value`` items. The type octets are the ones
RabbitMQ and every client speak (the errata of the 0-9-1 text, which differs for ``s``, ``l``
and others)::

    t bool  b int8   B uint8  s int16  u uint16  I int32  i uint32  l int64
    f float32  d float64  D decimal (scale octet + uint32)  S longstr  x bytes (longstr)
    T timestamp (uint64 seconds)  F table  A array  V void

Two decodings, because one is not enough for a broker:

- plain (``decode_table``): ``dict[str, Any]`` of Python values, for reading arguments and
  properties. Several wire types fold into one Python type (``s``/``I``/``l`` are all ``int``),
  so re-encoding plain values may change types, which consumers notice (kombu, Celery, Java).
- typed (``decode_table(..., typed=True)``): every value is a ``Typed(kind, value)`` and nested
  tables/arrays hold ``Typed`` too; ``encode_table`` writes them back byte for byte. The broker
  uses this when it must add to a client's headers (x-death) without disturbing the rest. Where
  it can, it does not decode at all and passes the raw bytes through.

Strings (``S``) decode with ``surrogateescape`` so a non-UTF-8 string survives a round trip as
the same bytes and the same type. Nesting deeper than ``MAX_TABLE_DEPTH`` is a SYNTAX_ERROR, so
a table nested 10,000 deep is a clean protocol error, not a RecursionError.

Encoding plain values infers the type: bool t, int I (or l beyond int32), float d, Decimal D,
str S, bytes x, datetime T, list/tuple A, dict F, None V. Use ``Typed`` to pick another.
"""

from __future__ import annotations

import calendar
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from firth.amqp.protocol.constants import MAX_TABLE_DEPTH
from firth.amqp.protocol.errors import AmqpConnectionError, syntax_error

Buffer = bytes | bytearray | memoryview

_U8 = struct.Struct(">B")
_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_U16 = struct.Struct(">H")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
_DECIMAL = struct.Struct(">BI")

_FIXED: dict[str, struct.Struct] = {
    "b": _I8,
    "B": _U8,
    "s": _I16,
    "u": _U16,
    "I": _I32,
    "i": _U32,
    "l": _I64,
    "f": _F32,
    "d": _F64,
}
"""Fixed-size numeric types: one struct each."""

FIELD_TYPES = frozenset("tbBsuIilfdDSxTFAV")


@dataclass(frozen=True, slots=True)
class Typed:
    """A field value with its wire type, for exact round trips and explicit encodings.

    ``Typed("l", 1)`` encodes as int64 (x-death's ``count`` must); ``Typed("F", {...})`` holds
    a dict whose values may themselves be ``Typed`` or plain.
    """

    kind: str
    value: Any

    def plain(self) -> Any:
        """The value with all nested ``Typed`` wrappers removed."""
        return _unwrap(self)


def _unwrap(value: Any) -> Any:
    if isinstance(value, Typed):
        value = value.value
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


class _Reader:
    """Decoding state: the buffer, the end of the current table, and whether to keep types."""

    __slots__ = ("buf", "typed")

    def __init__(self, buf: Buffer, typed: bool) -> None:
        self.buf = buf
        self.typed = typed

    def table(self, pos: int, depth: int) -> tuple[dict[str, Any], int]:
        if depth > MAX_TABLE_DEPTH:
            raise syntax_error(f"field table nested deeper than {MAX_TABLE_DEPTH}")
        buf = self.buf
        if pos + 4 > len(buf):
            raise syntax_error("truncated field table size")
        (size,) = _U32.unpack_from(buf, pos)
        pos += 4
        end = pos + size
        if end > len(buf):
            raise syntax_error("field table longer than its frame")
        result: dict[str, Any] = {}
        while pos < end:
            name_len = buf[pos]
            pos += 1
            if pos + name_len + 1 > end:
                raise syntax_error("truncated field table entry")
            name = bytes(buf[pos : pos + name_len]).decode("utf-8", "surrogateescape")
            pos += name_len
            kind = chr(buf[pos])
            value, pos = self.value(kind, pos + 1, end, depth)
            result[name] = value
        return result, pos

    def array(self, pos: int, depth: int) -> tuple[list[Any], int]:
        if depth > MAX_TABLE_DEPTH:
            raise syntax_error(f"field array nested deeper than {MAX_TABLE_DEPTH}")
        buf = self.buf
        if pos + 4 > len(buf):
            raise syntax_error("truncated field array size")
        (size,) = _U32.unpack_from(buf, pos)
        pos += 4
        end = pos + size
        if end > len(buf):
            raise syntax_error("field array longer than its frame")
        items: list[Any] = []
        while pos < end:
            kind = chr(buf[pos])
            value, pos = self.value(kind, pos + 1, end, depth)
            items.append(value)
        return items, pos

    def value(self, kind: str, pos: int, end: int, depth: int) -> tuple[Any, int]:
        """Decode one value of type ``kind`` at ``pos``; ``end`` bounds the enclosing table."""
        buf = self.buf
        value: Any
        fixed = _FIXED.get(kind)
        if fixed is not None:
            if pos + fixed.size > end:
                raise syntax_error(f"truncated field value of type {kind!r}")
            (value,) = fixed.unpack_from(buf, pos)
            pos += fixed.size
        elif kind == "S" or kind == "x":
            if pos + 4 > end:
                raise syntax_error("truncated string size")
            (length,) = _U32.unpack_from(buf, pos)
            pos += 4
            if pos + length > end:
                raise syntax_error("string longer than its table")
            raw = bytes(buf[pos : pos + length])
            pos += length
            value = raw.decode("utf-8", "surrogateescape") if kind == "S" else raw
        elif kind == "t":
            if pos + 1 > end:
                raise syntax_error("truncated boolean")
            value = buf[pos] != 0
            pos += 1
        elif kind == "T":
            if pos + 8 > end:
                raise syntax_error("truncated timestamp")
            (seconds,) = _U64.unpack_from(buf, pos)
            pos += 8
            try:
                value = datetime.fromtimestamp(seconds, UTC)
            except (OverflowError, ValueError, OSError):
                raise syntax_error(f"timestamp {seconds} out of range") from None
        elif kind == "D":
            if pos + 5 > end:
                raise syntax_error("truncated decimal")
            scale, digits = _DECIMAL.unpack_from(buf, pos)
            pos += 5
            value = Decimal(digits).scaleb(-scale)
        elif kind == "F":
            value, pos = self.table(pos, depth + 1)
            if pos > end:
                raise syntax_error("nested table overruns its parent")
        elif kind == "A":
            value, pos = self.array(pos, depth + 1)
            if pos > end:
                raise syntax_error("nested array overruns its parent")
        elif kind == "V":
            value = None
        else:
            raise syntax_error(f"unknown field type {kind!r}")
        if self.typed:
            return Typed(kind, value), pos
        return value, pos


def decode_table(buf: Buffer, pos: int = 0, *, typed: bool = False) -> tuple[dict[str, Any], int]:
    """Decode the table at ``pos``; returns it and the position after it.

    Raises ``AmqpConnectionError`` (SYNTAX_ERROR) on malformed or too deeply nested input.
    """
    try:
        return _Reader(buf, typed).table(pos, 1)
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise syntax_error(f"malformed field table: {exc}") from None


def decode_array(buf: Buffer, pos: int = 0, *, typed: bool = False) -> tuple[list[Any], int]:
    """Decode a field array at ``pos`` (used for tests and x-death handling)."""
    try:
        return _Reader(buf, typed).array(pos, 1)
    except (IndexError, struct.error) as exc:
        raise syntax_error(f"malformed field array: {exc}") from None


def skip_table(buf: Buffer, pos: int) -> int:
    """Position after the table at ``pos`` without decoding it (for raw pass-through)."""
    if pos + 4 > len(buf):
        raise syntax_error("truncated field table size")
    (size,) = _U32.unpack_from(buf, pos)
    end = pos + 4 + size
    if end > len(buf):
        raise syntax_error("field table longer than its frame")
    return end


# -- encoding ------------------------------------------------------------------------------------


def infer_kind(value: Any) -> str:
    """The wire type ``encode_table`` picks for a plain Python value."""
    if isinstance(value, Typed):
        return value.kind
    if isinstance(value, bool):
        return "t"
    if isinstance(value, int):
        return "I" if -(2**31) <= value < 2**31 else "l"
    if isinstance(value, float):
        return "d"
    if isinstance(value, Decimal):
        return "D"
    if isinstance(value, str):
        return "S"
    if isinstance(value, bytes | bytearray | memoryview):
        return "x"
    if isinstance(value, datetime):
        return "T"
    if isinstance(value, list | tuple):
        return "A"
    if isinstance(value, Mapping):
        return "F"
    if value is None:
        return "V"
    raise TypeError(f"no AMQP field type for {type(value).__name__}")


def _encode_value(out: bytearray, kind: str, value: Any, depth: int) -> None:
    if isinstance(value, Typed):
        value = value.value
    fixed = _FIXED.get(kind)
    if fixed is not None:
        out += fixed.pack(value)
    elif kind == "S" or kind == "x":
        raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)
        out += _U32.pack(len(raw))
        out += raw
    elif kind == "t":
        out.append(1 if value else 0)
    elif kind == "T":
        if isinstance(value, datetime):
            value = calendar.timegm(value.utctimetuple())
        out += _U64.pack(value)
    elif kind == "D":
        out += _encode_decimal(value)
    elif kind == "F":
        _encode_table_into(out, value, depth + 1)
    elif kind == "A":
        _encode_array_into(out, value, depth + 1)
    elif kind == "V":
        pass
    else:
        raise ValueError(f"unknown field type {kind!r}")


def _encode_decimal(value: Decimal) -> bytes:
    sign, _, exponent = value.as_tuple()
    if not isinstance(exponent, int) or sign:
        raise ValueError(f"decimal {value} cannot be encoded (negative or special)")
    scale = max(0, -exponent)
    digits = int(value.scaleb(scale))
    if scale > 255 or not 0 <= digits < 2**32:
        raise ValueError(f"decimal {value} out of range")
    return _DECIMAL.pack(scale, digits)


def _encode_table_into(out: bytearray, table: Mapping[str, Any], depth: int = 1) -> None:
    if depth > MAX_TABLE_DEPTH:
        raise ValueError(f"field table nested deeper than {MAX_TABLE_DEPTH}")
    start = len(out)
    out += b"\x00\x00\x00\x00"
    for name, value in table.items():
        raw_name = name.encode("utf-8", "surrogateescape")
        if len(raw_name) > 255:
            raise ValueError(f"field name longer than 255 bytes: {name[:40]!r}...")
        out.append(len(raw_name))
        out += raw_name
        kind = infer_kind(value)
        out.append(ord(kind))
        _encode_value(out, kind, value, depth)
    _U32.pack_into(out, start, len(out) - start - 4)


def _encode_array_into(out: bytearray, items: Any, depth: int) -> None:
    if depth > MAX_TABLE_DEPTH:
        raise ValueError(f"field array nested deeper than {MAX_TABLE_DEPTH}")
    start = len(out)
    out += b"\x00\x00\x00\x00"
    for value in items:
        kind = infer_kind(value)
        out.append(ord(kind))
        _encode_value(out, kind, value, depth)
    _U32.pack_into(out, start, len(out) - start - 4)


def encode_table(table: Mapping[str, Any] | None) -> bytes:
    """The wire bytes (size prefix included) of ``table``; ``None`` is the empty table."""
    out = bytearray()
    _encode_table_into(out, table or {})
    return bytes(out)


def encode_array(items: list[Any]) -> bytes:
    out = bytearray()
    _encode_array_into(out, items, 1)
    return bytes(out)


__all__ = [
    "FIELD_TYPES",
    "AmqpConnectionError",
    "Typed",
    "decode_array",
    "decode_table",
    "encode_array",
    "encode_table",
    "infer_kind",
    "skip_table",
]
