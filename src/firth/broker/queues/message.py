"""A queued message, and its stored form inside a queue's log.

``QueuedMessage`` is what a queue holds: where it came from (exchange, routing key), the
publisher's properties exactly as they arrived (opaque bytes here: the front end knows their
format), the body, and delivery state (returns, redelivered). ``seq`` orders messages inside
one queue (requeued messages go back to their place by it); ``offset`` is the message's
offset in the queue's log, or -1 when it is not stored (transient message or queue).

Stored form: Kafka v2 record batches, one per burst of publishes to the queue (everything
published to it in one event-loop turn), one record per message, whose value is::

    u8 version (1)  u8 flags (bit 0 persistent)  i64 timestamp ms  i64 expires-at ms (-1 none)
    u8 priority  u8 len + exchange  u8 len + routing key  u32 len + properties  body...

The batch carries the CRC the log checks on recovery, so a torn tail is cut off, not read.
Delivery state is not in the record; the queue's settle journal (``store``) holds it.
"""

from __future__ import annotations

import struct

import crc32c

from firth.wire.recordbatch import CRC_OFFSET, HEADER_SIZE, LOG_OVERHEAD, MAGIC_V2, BatchHeader

_VALUE_HEAD = struct.Struct(">BBqqB")
_U32 = struct.Struct(">I")
_BATCH_HEADER = struct.Struct(">qiibIhiqqqhii")
VERSION = 1


class QueuedMessage:
    """One message in one queue (a message routed to three queues is three of these)."""

    __slots__ = (
        "body",
        "exchange",
        "expires_at",
        "offset",
        "persistent",
        "priority",
        "properties",
        "redelivered",
        "returns",
        "routing_key",
        "seq",
        "timestamp",
    )

    def __init__(
        self,
        exchange: str,
        routing_key: str,
        properties: bytes,
        body: bytes,
        persistent: bool = False,
        timestamp: int = 0,
        expires_at: int = -1,
        priority: int = 0,
    ) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.properties = properties
        self.body = body
        self.persistent = persistent
        self.timestamp = timestamp
        self.expires_at = expires_at
        self.priority = priority
        self.seq = 0
        self.offset = -1
        self.returns = 0
        """How often the message came back unsettled (x-delivery-count)."""
        self.redelivered = False

    def copy(self) -> QueuedMessage:
        """A fresh copy for another queue (delivery state not copied)."""
        return QueuedMessage(
            self.exchange,
            self.routing_key,
            self.properties,
            self.body,
            persistent=self.persistent,
            timestamp=self.timestamp,
            expires_at=self.expires_at,
            priority=self.priority,
        )

    @property
    def size(self) -> int:
        return len(self.body)

    def __repr__(self) -> str:
        return f"QueuedMessage(seq={self.seq}, rk={self.routing_key!r}, body={self.body[:20]!r})"


def _varint(value: int) -> bytes:
    """Zigzag varint, as Kafka records use (values under 8192: ``_SMALL_VARINTS``)."""
    value = (value << 1) ^ (value >> 63)
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    shift = 0
    result = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    return (result >> 1) ^ -(result & 1), pos


def encode_value(message: QueuedMessage) -> bytes:
    exchange = message.exchange.encode("utf-8", "surrogateescape")
    routing_key = message.routing_key.encode("utf-8", "surrogateescape")
    return b"".join(
        (
            _VALUE_HEAD.pack(
                VERSION,
                1 if message.persistent else 0,
                message.timestamp,
                message.expires_at,
                message.priority,
            ),
            bytes((len(exchange),)),
            exchange,
            bytes((len(routing_key),)),
            routing_key,
            _U32.pack(len(message.properties)),
            message.properties,
            message.body,
        )
    )


def decode_value(value: bytes | memoryview) -> QueuedMessage:
    _version, flags, timestamp, expires_at, priority = _VALUE_HEAD.unpack_from(value, 0)
    pos = _VALUE_HEAD.size
    length = value[pos]
    exchange = bytes(value[pos + 1 : pos + 1 + length]).decode("utf-8", "surrogateescape")
    pos += 1 + length
    length = value[pos]
    routing_key = bytes(value[pos + 1 : pos + 1 + length]).decode("utf-8", "surrogateescape")
    pos += 1 + length
    (length,) = _U32.unpack_from(value, pos)
    pos += 4
    properties = bytes(value[pos : pos + length])
    body = bytes(value[pos + length :])
    return QueuedMessage(
        exchange,
        routing_key,
        properties,
        body,
        persistent=bool(flags & 1),
        timestamp=timestamp,
        expires_at=expires_at,
        priority=priority,
    )


_SMALL_VARINTS = tuple(_varint(v) for v in range(8192))
"""Zigzag varints of 0..8191, looked up instead of built: the record prefix of every message."""
_NAMES_CACHE_LIMIT = 256


def _names(exchange: str, routing_key: str) -> bytes:
    """The value's ``u8 len + exchange  u8 len + routing key`` part."""
    ex = exchange.encode("utf-8", "surrogateescape")
    rk = routing_key.encode("utf-8", "surrogateescape")
    return b"".join((bytes((len(ex),)), ex, bytes((len(rk),)), rk))


def _record_parts(
    message: QueuedMessage, offset_delta: int, names: bytes, parts: list[bytes]
) -> None:
    """Append one record's pieces (the ``encode_value`` value wrapped as a record: attributes
    0, timestampDelta 0, offsetDelta, key null, value, no headers) to ``parts``."""
    properties = message.properties
    body = message.body
    size = _VALUE_HEAD.size + len(names) + 4 + len(properties) + len(body)
    small = _SMALL_VARINTS
    delta = small[offset_delta] if offset_delta < 8192 else _varint(offset_delta)
    length = small[size] if size < 8192 else _varint(size)
    body_len = 4 + len(delta) + len(length) + size  # 2 + delta + 1 (key) + length + value + 1
    prefix = small[body_len] if body_len < 8192 else _varint(body_len)
    parts.append(b"".join((prefix, b"\x00\x00", delta, b"\x01", length)))
    parts.append(
        _VALUE_HEAD.pack(
            VERSION,
            1 if message.persistent else 0,
            message.timestamp,
            message.expires_at,
            message.priority,
        )
    )
    parts.append(names)
    parts.append(_U32.pack(len(properties)))
    parts.append(properties)
    parts.append(body)
    parts.append(b"\x00")


def build_batch(messages: list[QueuedMessage]) -> tuple[bytearray, BatchHeader]:
    """One record batch holding ``messages`` in order (offsets patched by the log)."""
    parts: list[bytes] = []
    cache: dict[tuple[str, str], bytes] = {}
    max_timestamp = messages[0].timestamp
    for index, message in enumerate(messages):
        key = (message.exchange, message.routing_key)
        names = cache.get(key)
        if names is None:
            names = _names(*key)
            if len(cache) < _NAMES_CACHE_LIMIT:
                cache[key] = names
        _record_parts(message, index, names, parts)
        if message.timestamp > max_timestamp:
            max_timestamp = message.timestamp
    records = b"".join(parts)
    timestamp = messages[0].timestamp
    size = HEADER_SIZE + len(records)
    out = bytearray(size)
    fields = (
        0,
        size - LOG_OVERHEAD,
        -1,
        MAGIC_V2,
        0,
        0,
        len(messages) - 1,
        timestamp,
        max_timestamp,
        -1,
        -1,
        -1,
        len(messages),
    )
    _BATCH_HEADER.pack_into(out, 0, *fields)
    out[HEADER_SIZE:] = records
    crc = crc32c.crc32c(memoryview(out)[CRC_OFFSET + 4 :])
    _U32.pack_into(out, CRC_OFFSET, crc)
    header = BatchHeader(*fields[:4], crc, *fields[5:])
    return out, header


def decode_batch_values(batch: bytes | memoryview) -> list[tuple[int, bytes]]:
    """(offset delta, value) of every record in a batch written by ``build_batch``."""
    view = memoryview(batch)
    (count,) = _U32.unpack_from(view, HEADER_SIZE - 4)
    pos = HEADER_SIZE
    out = []
    for _ in range(count):
        length, pos = _read_varint(view, pos)
        end = pos + length
        pos += 1  # attributes
        _ts, pos = _read_varint(view, pos)
        delta, pos = _read_varint(view, pos)
        key_len, pos = _read_varint(view, pos)
        if key_len > 0:
            pos += key_len
        value_len, pos = _read_varint(view, pos)
        out.append((delta, bytes(view[pos : pos + value_len])))
        pos = end
    return out
