"""Hand-written encoders and a bounds-checked cursor for Kafka's primitive types.

Used by the hot-path codecs (`produce`, `fetch`), which skip kio for speed. Strings and arrays come
in two encodings: "legacy" (int16/int32 length, -1 for null) in non-flexible versions and
"compact" (unsigned varint of length+1, 0 for null) in flexible ones. Every read is bounds-checked
and raises `MalformedRequestError`, never `struct.error` or `IndexError`.
"""

from __future__ import annotations

import struct

from firth.kafka.protocol.errors import MalformedRequestError

Buffer = bytes | bytearray | memoryview

INT8 = struct.Struct(">b")
INT16 = struct.Struct(">h")
INT32 = struct.Struct(">i")
INT64 = struct.Struct(">q")
INT16_INT32 = struct.Struct(">hi")
EMPTY_TAGS = b"\x00"


_ONE_BYTE_VARINTS = [bytes((value,)) for value in range(0x80)]
"""One-byte varints (compact lengths and counts below 127, the common case), built once."""


def uvarint(value: int) -> bytes:
    """Unsigned varint (LEB128), as Kafka's compact lengths and tag counts use."""
    if value < 0x80:
        return _ONE_BYTE_VARINTS[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_uvarint(buf: Buffer, pos: int, end: int | None = None) -> tuple[int, int]:
    """Decode the unsigned varint at `pos`, reading nothing at or past `end` (default: the end
    of `buf`): (value, next position). At most 5 bytes."""
    if end is None:
        end = len(buf)
    if pos < end and buf[pos] < 0x80:  # one-byte varints are the common case
        return int(buf[pos]), pos + 1
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise MalformedRequestError(message="truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 35:
            raise MalformedRequestError(message="varint longer than 5 bytes")


def skip_tagged_fields(buf: Buffer, pos: int, end: int | None = None) -> int:
    """Skip the tagged-field section at `pos` (all its tags: none is one we read); return the
    position after it. Reads nothing at or past `end` (default: the end of `buf`)."""
    if end is None:
        end = len(buf)
    if pos < end and buf[pos] == 0:  # no tagged fields: the common case
        return pos + 1
    count, pos = read_uvarint(buf, pos, end)
    for _ in range(count):
        _tag, pos = read_uvarint(buf, pos, end)
        size, pos = read_uvarint(buf, pos, end)
        pos += size
        if pos > end:
            raise MalformedRequestError(message="tagged field past the end")
    return pos


def legacy_string(value: str | None) -> bytes:
    if value is None:
        return b"\xff\xff"
    raw = value.encode()
    return INT16.pack(len(raw)) + raw


def compact_string(value: str | None) -> bytes:
    if value is None:
        return b"\x00"
    raw = value.encode()
    return uvarint(len(raw) + 1) + raw


def string(value: str | None, flexible: bool) -> bytes:
    return compact_string(value) if flexible else legacy_string(value)


def array_length(count: int | None, flexible: bool) -> bytes:
    """Length prefix of an array of `count` items (None = null array)."""
    if flexible:
        return b"\x00" if count is None else uvarint(count + 1)
    return INT32.pack(-1 if count is None else count)


def bytes_length(size: int | None, flexible: bool) -> bytes:
    """Length prefix of a byte string / records field of `size` bytes (None = null)."""
    if flexible:
        return b"\x00" if size is None else uvarint(size + 1)
    return INT32.pack(-1 if size is None else size)


class Cursor:
    """Reads primitives from `buf` starting at `pos`, never past `len(buf)`."""

    __slots__ = ("buf", "end", "pos", "view")

    def __init__(self, buf: Buffer, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf)
        self.view = memoryview(buf)

    def _need(self, size: int) -> int:
        start = self.pos
        if size < 0 or start + size > self.end:
            raise MalformedRequestError(message=f"field of {size} bytes past the end at {start}")
        self.pos = start + size
        return start

    def int16(self) -> int:
        return int(INT16.unpack_from(self.buf, self._need(2))[0])

    def int32(self) -> int:
        return int(INT32.unpack_from(self.buf, self._need(4))[0])

    def int64(self) -> int:
        return int(INT64.unpack_from(self.buf, self._need(8))[0])

    def int16_int32(self) -> tuple[int, int]:
        return INT16_INT32.unpack_from(self.buf, self._need(6))  # type: ignore[return-value]

    def uvarint(self) -> int:
        buf = self.buf
        pos = self.pos
        if pos < self.end and buf[pos] < 0x80:  # inlined here too: the produce path's case
            self.pos = pos + 1
            return int(buf[pos])
        value, self.pos = read_uvarint(buf, pos, self.end)
        return value

    def _text(self, size: int) -> str:
        start = self._need(size)
        try:
            return bytes(self.buf[start : start + size]).decode()
        except UnicodeDecodeError:
            raise MalformedRequestError(message="string is not UTF-8") from None

    def string(self, flexible: bool) -> str:
        value = self.nullable_string(flexible)
        if value is None:
            raise MalformedRequestError(message="null where a string is required")
        return value

    def nullable_string(self, flexible: bool) -> str | None:
        size = self.uvarint() - 1 if flexible else self.int16()
        if size < 0:
            if size != -1:
                raise MalformedRequestError(message=f"negative string length {size}")
            return None
        return self._text(size)

    def array_length(self, flexible: bool) -> int:
        """Item count of an array; null arrays read as 0 items."""
        count = self.uvarint() - 1 if flexible else self.int32()
        if count < -1:
            raise MalformedRequestError(message=f"negative array length {count}")
        if count > self.end - self.pos:
            # Every item takes at least one byte: a larger count is a lie, not a big array.
            raise MalformedRequestError(message=f"array of {count} items past the end")
        return max(count, 0)

    def nullable_bytes_view(self, flexible: bool) -> memoryview | None:
        size = self.uvarint() - 1 if flexible else self.int32()
        if size < 0:
            if size != -1:
                raise MalformedRequestError(message=f"negative bytes length {size}")
            return None
        start = self._need(size)
        return self.view[start : start + size]

    def skip_tagged_fields(self) -> None:
        pos = self.pos
        if pos < self.end and self.buf[pos] == 0:  # inlined here too: the produce path's case
            self.pos = pos + 1
            return
        self.pos = skip_tagged_fields(self.buf, pos, self.end)
