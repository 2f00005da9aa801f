"""Message properties as the broker core sees them: a quick scan on publish, edits by rule.

The core keeps a message's properties as the publisher's bytes (flags + properties). The front
end needs a few of them on every publish (delivery mode, priority, expiration, user id,
reply-to); ``scan_publish`` walks the flags and skips what it does not need (a headers table is
stepped over by its length, never decoded), so the common publish costs a few hundred
nanoseconds here.

``AmqpPropertiesCodec`` is the ``PropertiesCodec`` the queue core asks when it must change
properties: dead-lettering (x-death newest first, one entry per {queue, reason} with ``count``
as a 64-bit ``l``, ``time``, ``exchange``, ``routing-keys``, ``original-expiration``; the
x-first-death-* headers once, x-last-death-* each time; ``expiration`` removed). Headers are
decoded in typed form (``Typed``) so that every header the publisher set keeps its wire type.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from typing import Any

from firth.amqp.protocol.properties import decode_properties, encode_properties
from firth.amqp.protocol.tables import Typed

_U32 = struct.Struct(">I")

# property index → (flag bit, kind): 0 shortstr, 1 octet, 2 table, 3 timestamp
_LAYOUT = (
    (0x8000, 0),  # content_type
    (0x4000, 0),  # content_encoding
    (0x2000, 2),  # headers
    (0x1000, 1),  # delivery_mode
    (0x0800, 1),  # priority
    (0x0400, 0),  # correlation_id
    (0x0200, 0),  # reply_to
    (0x0100, 0),  # expiration
    (0x0080, 0),  # message_id
    (0x0040, 3),  # timestamp
    (0x0020, 0),  # type
    (0x0010, 0),  # user_id
)
_NEEDS_STRINGS = 0x0200 | 0x0100 | 0x0010
_REPLY_TO, _EXPIRATION, _USER_ID = 6, 7, 11


class PublishInfo:
    __slots__ = ("delivery_mode", "expiration", "plain", "priority", "reply_to", "user_id")

    def __init__(self) -> None:
        self.delivery_mode = 0
        self.priority = 0
        self.expiration: str | None = None
        self.user_id: str | None = None
        self.reply_to: str | None = None
        self.plain = True
        """No expiration, user_id or reply_to: nothing for the publisher to check."""


_SIMPLE_SCANS: dict[bytes, PublishInfo] = {}
"""Scans of properties holding at most delivery_mode and priority (nearly every publish), by
their bytes: at most 2 x 256 x 256 keys of 2-4 bytes, bounded anyway."""


def scan_publish(props: bytes) -> PublishInfo:
    """The properties a publish needs, read without decoding the rest. The result may be
    shared between calls: read it, never change it.

    ``props`` was accepted by the frame layer only as far as its length; a malformed one may
    raise IndexError/struct.error, which the caller treats as a syntax error.
    """
    info = _SIMPLE_SCANS.get(props)
    if info is not None:
        return info
    info = PublishInfo()
    flags = (props[0] << 8) | props[1]
    if not flags & 0xE7FF:  # at most delivery_mode and priority: they come first
        pos = 2
        if flags & 0x1000:
            info.delivery_mode = props[2]
            pos = 3
        if flags & 0x0800:
            info.priority = props[pos]
        if len(props) <= 4 and len(_SIMPLE_SCANS) < 1024:
            _SIMPLE_SCANS[props] = info
        return info
    pos = 2
    last = 11 if flags & _NEEDS_STRINGS else 4
    for index in range(last + 1):
        bit, kind = _LAYOUT[index]
        if not flags & bit:
            continue
        if kind == 0:
            length = props[pos]
            if index in (_REPLY_TO, _EXPIRATION, _USER_ID):
                text = props[pos + 1 : pos + 1 + length].decode("utf-8", "surrogateescape")
                if index == _REPLY_TO:
                    info.reply_to = text
                elif index == _EXPIRATION:
                    info.expiration = text
                else:
                    info.user_id = text
            pos += 1 + length
        elif kind == 1:
            if index == 3:
                info.delivery_mode = props[pos]
            else:
                info.priority = props[pos]
            pos += 1
        elif kind == 2:
            (size,) = _U32.unpack_from(props, pos)
            pos += 4 + size
        else:
            pos += 8
    info.plain = info.expiration is None and info.user_id is None and info.reply_to is None
    return info


class LazyHeaders(Mapping[str, Any]):
    """The headers table of raw properties, decoded on first look (headers exchanges only)."""

    __slots__ = ("_decoded", "_props")

    def __init__(self, props: bytes) -> None:
        self._props = props
        self._decoded: dict[str, Any] | None = None

    def _table(self) -> dict[str, Any]:
        if self._decoded is None:
            decoded = decode_properties(self._props, 0, len(self._props))
            self._decoded = decoded.headers or {}
        return self._decoded

    def __getitem__(self, key: str) -> Any:
        return self._table()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


def _text(value: Any) -> Any:
    if isinstance(value, Typed):
        value = value.value
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value


def with_header(props: bytes, name: str, value: Typed) -> bytes:
    """``props`` with one header set (others keep their wire types)."""
    decoded = decode_properties(props, 0, len(props), typed_headers=True)
    headers = dict(decoded.headers or {})
    headers[name] = value
    decoded.headers = headers
    return encode_properties(decoded)


def with_reply_to(props: bytes, reply_to: str) -> bytes:
    decoded = decode_properties(props, 0, len(props), typed_headers=True)
    decoded.reply_to = reply_to
    return encode_properties(decoded)


class AmqpPropertiesCodec:
    """The queue core's ``PropertiesCodec`` for AMQP 0-9-1 basic properties."""

    def headers(self, properties: bytes) -> Mapping[str, Any] | None:
        return LazyHeaders(properties)

    def dead_letter(
        self,
        properties: bytes,
        *,
        queue: str,
        reason: str,
        exchange: str,
        routing_keys: list[str],
        time_s: int,
    ) -> tuple[bytes, list[tuple[str, str]]]:
        decoded = decode_properties(properties, 0, len(properties), typed_headers=True)
        headers: dict[str, Any] = dict(decoded.headers or {})
        old = headers.get("x-death")
        entries: list[Any] = []
        if isinstance(old, Typed) and old.kind == "A" and isinstance(old.value, list):
            entries = list(old.value)
        found = None
        for index, entry in enumerate(entries):
            table = entry.value if isinstance(entry, Typed) else entry
            if not isinstance(table, dict):
                continue
            if _text(table.get("queue")) == queue and _text(table.get("reason")) == reason:
                found = index
                break
        if found is not None:
            entry = entries.pop(found)
            table = dict(entry.value if isinstance(entry, Typed) else entry)
            count = table.get("count")
            count_value = _text(count)
            table["count"] = Typed("l", (count_value if isinstance(count_value, int) else 0) + 1)
            entries.insert(0, Typed("F", table))
        else:
            table = {
                "count": Typed("l", 1),
                "reason": Typed("S", reason),
                "queue": Typed("S", queue),
                "time": Typed("T", time_s),
                "exchange": Typed("S", exchange),
                "routing-keys": Typed("A", [Typed("S", key) for key in routing_keys]),
            }
            if decoded.expiration is not None:
                table["original-expiration"] = Typed("S", decoded.expiration)
            entries.insert(0, Typed("F", table))
        headers["x-death"] = Typed("A", entries)
        if "x-first-death-queue" not in headers:
            headers["x-first-death-queue"] = Typed("S", queue)
            headers["x-first-death-reason"] = Typed("S", reason)
            headers["x-first-death-exchange"] = Typed("S", exchange)
        headers["x-last-death-queue"] = Typed("S", queue)
        headers["x-last-death-reason"] = Typed("S", reason)
        headers["x-last-death-exchange"] = Typed("S", exchange)
        decoded.headers = headers
        decoded.expiration = None
        deaths = []
        for entry in entries:
            table = entry.value if isinstance(entry, Typed) else entry
            if isinstance(table, dict):
                deaths.append((str(_text(table.get("queue"))), str(_text(table.get("reason")))))
        return encode_properties(decoded), deaths
