"""Content headers: the properties of a message (basic class) with their presence flags.

Content header payload (section 4.2.6)::

    offset  size  field
    0       2     class-id        60 (basic) for every message the broker moves
    2       2     weight          always 0
    4       8     body-size       total body bytes in the body frames that follow
    12      2     property-flags  bit 15 = first property ... bit 2 = 14th; bit 0 = more flag words
    14      ...   the present properties, in flag order

Basic properties, in flag order: content_type (shortstr), content_encoding (shortstr), headers
(table), delivery_mode (octet), priority (octet), correlation_id, reply_to, expiration,
message_id (shortstr), timestamp (uint64 seconds), type, user_id, app_id, cluster_id (shortstr).

The broker mostly does not look inside: ``ContentHeader`` keeps the payload bytes and decodes
properties only when asked, so a delivery re-sends the publisher's properties byte for byte
(headers included, whatever types they used). Strings decode with ``surrogateescape`` so odd
bytes survive a round trip.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields
from typing import Any

from firth.amqp.protocol.constants import CLASS_BASIC
from firth.amqp.protocol.errors import syntax_error
from firth.amqp.protocol.tables import Buffer, decode_table, encode_table

_HEADER = struct.Struct(">HHQH")
"""class-id, weight, body-size, first property-flags word."""
_U16 = struct.Struct(">H")
_U64 = struct.Struct(">Q")

_SHORTSTR, _OCTET, _TABLE, _TIMESTAMP = range(4)

PROPERTY_SPEC: tuple[tuple[str, int], ...] = (
    ("content_type", _SHORTSTR),
    ("content_encoding", _SHORTSTR),
    ("headers", _TABLE),
    ("delivery_mode", _OCTET),
    ("priority", _OCTET),
    ("correlation_id", _SHORTSTR),
    ("reply_to", _SHORTSTR),
    ("expiration", _SHORTSTR),
    ("message_id", _SHORTSTR),
    ("timestamp", _TIMESTAMP),
    ("type", _SHORTSTR),
    ("user_id", _SHORTSTR),
    ("app_id", _SHORTSTR),
    ("cluster_id", _SHORTSTR),
)
"""The basic class's properties in flag order: property i has flag bit 15 - i."""

PERSISTENT = 2
"""delivery_mode of a persistent message (1 = transient)."""


@dataclass(slots=True)
class BasicProperties:
    """Decoded basic properties; ``None`` means absent (its flag bit is clear)."""

    content_type: str | None = None
    content_encoding: str | None = None
    headers: dict[str, Any] | None = None
    delivery_mode: int | None = None
    priority: int | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    expiration: str | None = None
    message_id: str | None = None
    timestamp: int | None = None
    type: str | None = None
    user_id: str | None = None
    app_id: str | None = None
    cluster_id: str | None = None

    @property
    def persistent(self) -> bool:
        return self.delivery_mode == PERSISTENT

    def as_dict(self) -> dict[str, Any]:
        """Only the present properties."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }


def _shortstr(value: str) -> bytes:
    raw = value.encode("utf-8", "surrogateescape")
    if len(raw) > 255:
        raise ValueError(f"short string longer than 255 bytes: {value[:40]!r}...")
    return bytes((len(raw),)) + raw


def encode_properties(props: BasicProperties) -> bytes:
    """Property flags and the present properties (the content header after body-size)."""
    flags = 0
    out = bytearray(b"\x00\x00")
    for index, (name, kind) in enumerate(PROPERTY_SPEC):
        value = getattr(props, name)
        if value is None:
            continue
        flags |= 1 << (15 - index)
        if kind == _SHORTSTR:
            out += _shortstr(value)
        elif kind == _OCTET:
            out.append(value)
        elif kind == _TABLE:
            out += encode_table(value)
        else:
            out += _U64.pack(value)
    _U16.pack_into(out, 0, flags)
    return bytes(out)


def decode_properties(
    buf: Buffer, pos: int, end: int, *, typed_headers: bool = False
) -> BasicProperties:
    """Decode property flags + properties in ``buf[pos:end]``.

    Raises SYNTAX_ERROR on truncation, trailing bytes, or a continuation flag word (the basic
    class has 14 properties, so one flags word is all a well-formed header carries).
    """
    try:
        if pos + 2 > end:
            raise syntax_error("truncated property flags")
        (flags,) = _U16.unpack_from(buf, pos)
        pos += 2
        if flags & 0x0003:
            raise syntax_error(f"property flags {flags:#06x} set reserved bits")
        props = BasicProperties()
        for index, (name, kind) in enumerate(PROPERTY_SPEC):
            if not flags & (1 << (15 - index)):
                continue
            value: Any
            if kind == _SHORTSTR:
                length = buf[pos]
                pos += 1
                if pos + length > end:
                    raise syntax_error(f"property {name} overruns the header")
                value = bytes(buf[pos : pos + length]).decode("utf-8", "surrogateescape")
                pos += length
            elif kind == _OCTET:
                if pos >= end:
                    raise syntax_error(f"truncated property {name}")
                value = buf[pos]
                pos += 1
            elif kind == _TABLE:
                value, pos = decode_table(memoryview(buf)[:end], pos, typed=typed_headers)
            else:
                if pos + 8 > end:
                    raise syntax_error(f"truncated property {name}")
                (value,) = _U64.unpack_from(buf, pos)
                pos += 8
            setattr(props, name, value)
    except (IndexError, struct.error) as exc:
        raise syntax_error(f"malformed content header: {exc}") from None
    if pos != end:
        raise syntax_error("trailing bytes after content header properties")
    return props


class ContentHeader:
    """A content header frame's payload, kept as received.

    ``payload`` is the whole frame payload; ``properties`` decodes it on first use and caches.
    """

    __slots__ = ("_properties", "body_size", "class_id", "payload")

    def __init__(self, class_id: int, body_size: int, payload: bytes) -> None:
        self.class_id = class_id
        self.body_size = body_size
        self.payload = payload
        self._properties: BasicProperties | None = None

    @classmethod
    def parse(cls, payload: bytes) -> ContentHeader:
        """Read class-id and body-size only; properties stay undecoded until asked for."""
        if len(payload) < 14:
            raise syntax_error("content header shorter than 14 bytes")
        class_id, _weight, body_size, _flags = _HEADER.unpack_from(payload, 0)
        return cls(class_id, body_size, payload)

    @property
    def properties_bytes(self) -> bytes:
        """Flags + properties exactly as the publisher sent them."""
        return self.payload[12:]

    @property
    def properties(self) -> BasicProperties:
        if self._properties is None:
            self._properties = decode_properties(self.payload, 12, len(self.payload))
        return self._properties

    def __repr__(self) -> str:
        return f"ContentHeader(class_id={self.class_id}, body_size={self.body_size})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ContentHeader):
            return NotImplemented
        return self.payload == other.payload

    __hash__ = None  # type: ignore[assignment]


def encode_content_header(
    body_size: int, properties: BasicProperties | bytes, class_id: int = CLASS_BASIC
) -> bytes:
    """A content header payload; ``properties`` may be pre-encoded flags+properties bytes."""
    raw = properties if isinstance(properties, bytes) else encode_properties(properties)
    return struct.pack(">HHQ", class_id, 0, body_size) + raw
