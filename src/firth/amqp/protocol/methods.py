"""AMQP 0-9-1 methods: one dataclass per method, their codecs, and the methods table.

A method frame's payload is ``short class-id, short method-id, arguments``. Each method class
names its arguments in ``WIRE``, a spec string in the order the specification lists them
(``name:type``, ``_`` for a reserved field, written as zero/empty and ignored when read)::

    octet short long longlong timestamp   fixed-size unsigned integers
    shortstr  (octet length + UTF-8)      longstr (uint32 length + bytes)
    bit       (packed 8 to an octet, consecutive bits share octets)
    table     (field table, see tables.py)

``_compile`` turns a spec into a decoder and an encoder once, at import: runs of fixed-size
fields become one ``struct.Struct``, runs of bits one octet. That serves the cold methods
(negotiation, declarations) at a few microseconds each. The hot ones (basic.publish,
basic.deliver, basic.ack/nack/reject) have hand-written ``struct`` codecs instead; the
property-based tests check both paths agree with pika's encoder and decoder.

``METHODS`` maps ``(class_id, method_id)`` to a ``MethodSpec`` (name, class, decoder, encoder,
whether it is a synchronous request and the name of its reply, whether content follows).
Decoders raise SYNTAX_ERROR on truncated or overlong payloads; an unknown id is the caller's
(connection.py) business. pamqp is deliberately not used: it re-types table values on re-encode
and costs ~16 µs per basic.publish.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from firth.amqp.protocol.constants import ReplyCode
from firth.amqp.protocol.errors import AmqpConnectionError, AmqpError, syntax_error
from firth.amqp.protocol.tables import Buffer, decode_table, encode_table

_IDS = struct.Struct(">HH")
_NUMERIC = {"octet": "B", "short": "H", "long": "I", "longlong": "Q", "timestamp": "Q"}
_U32 = struct.Struct(">I")


class Method:
    """Base of all method dataclasses."""

    __slots__ = ()
    CLASS_ID: ClassVar[int]
    METHOD_ID: ClassVar[int]
    NAME: ClassVar[str]
    WIRE: ClassVar[str] = ""
    SYNCHRONOUS: ClassVar[bool] = False
    """A request the peer must answer (with ``REPLY``), unless its ``nowait`` bit is set."""
    REPLY: ClassVar[str | None] = None
    HAS_CONTENT: ClassVar[bool] = False
    _decoder: ClassVar[Callable[..., dict[str, Any]]]
    _encoder: ClassVar[Callable[..., None]]

    @classmethod
    def decode(cls, buf: Buffer, pos: int, end: int) -> Method:
        """Decode arguments in ``buf[pos:end]`` (after class and method ids)."""
        return cls(**cls._decoder(buf, pos, end))

    def encode(self) -> bytes:
        """The whole method frame payload: class id, method id, arguments."""
        out = bytearray(_IDS.pack(self.CLASS_ID, self.METHOD_ID))
        self._encoder(self, out)
        return bytes(out)

    @property
    def nowait(self) -> bool:
        return False


# -- spec compiler ---------------------------------------------------------------------------------


def _parse_wire(wire: str) -> list[tuple[str, str]]:
    return [tuple(part.split(":")) for part in wire.split()]  # type: ignore[misc]


def _compile(
    cls_name: str, wire: str
) -> tuple[Callable[[Buffer, int, int], dict[str, Any]], Callable[[Any, bytearray], None]]:
    spec = _parse_wire(wire)
    ops: list[tuple[str, Any]] = []
    index = 0
    while index < len(spec):
        name, kind = spec[index]
        if kind in _NUMERIC:
            names = []
            fmt = ">"
            while index < len(spec) and spec[index][1] in _NUMERIC:
                names.append(spec[index][0])
                fmt += _NUMERIC[spec[index][1]]
                index += 1
            ops.append(("struct", (struct.Struct(fmt), names)))
        elif kind == "bit":
            names = []
            while index < len(spec) and spec[index][1] == "bit" and len(names) < 8:
                names.append(spec[index][0])
                index += 1
            ops.append(("bits", names))
        elif kind in ("shortstr", "longstr", "table"):
            ops.append((kind, name))
            index += 1
        else:
            raise ValueError(f"{cls_name}: unknown field type {kind!r}")

    def decode(buf: Buffer, pos: int, end: int) -> dict[str, Any]:
        values: dict[str, Any] = {}
        try:
            for op, arg in ops:
                if op == "struct":
                    packer, names = arg
                    if pos + packer.size > end:
                        raise syntax_error(f"{cls_name}: truncated arguments")
                    values.update(zip(names, packer.unpack_from(buf, pos), strict=True))
                    pos += packer.size
                elif op == "shortstr":
                    length = buf[pos]
                    pos += 1
                    if pos + length > end:
                        raise syntax_error(f"{cls_name}: {arg} overruns the frame")
                    values[arg] = bytes(buf[pos : pos + length]).decode("utf-8", "surrogateescape")
                    pos += length
                elif op == "longstr":
                    if pos + 4 > end:
                        raise syntax_error(f"{cls_name}: truncated {arg}")
                    (length,) = _U32.unpack_from(buf, pos)
                    pos += 4
                    if pos + length > end:
                        raise syntax_error(f"{cls_name}: {arg} overruns the frame")
                    values[arg] = bytes(buf[pos : pos + length])
                    pos += length
                elif op == "table":
                    values[arg], pos = decode_table(memoryview(buf)[:end], pos)
                else:
                    if pos >= end:
                        raise syntax_error(f"{cls_name}: truncated bits")
                    octet = buf[pos]
                    pos += 1
                    for bit, name in enumerate(arg):
                        values[name] = bool(octet & (1 << bit))
        except IndexError:
            raise syntax_error(f"{cls_name}: truncated arguments") from None
        if pos != end:
            raise syntax_error(f"{cls_name}: {end - pos} trailing bytes after arguments")
        for name in [n for n in values if n.startswith("_")]:
            del values[name]
        return values

    def encode(method: Any, out: bytearray) -> None:
        for op, arg in ops:
            if op == "struct":
                packer, names = arg
                out += packer.pack(*[0 if n.startswith("_") else getattr(method, n) for n in names])
            elif op == "shortstr":
                raw = (
                    b""
                    if arg.startswith("_")
                    else getattr(method, arg).encode("utf-8", "surrogateescape")
                )
                if len(raw) > 255:
                    raise ValueError(f"{cls_name}.{arg} longer than 255 bytes")
                out.append(len(raw))
                out += raw
            elif op == "longstr":
                raw = b"" if arg.startswith("_") else getattr(method, arg)
                if isinstance(raw, str):
                    raw = raw.encode("utf-8")
                out += _U32.pack(len(raw))
                out += raw
            elif op == "table":
                out += encode_table(None if arg.startswith("_") else getattr(method, arg))
            else:
                octet = 0
                for bit, name in enumerate(arg):
                    if not name.startswith("_") and getattr(method, name):
                        octet |= 1 << bit
                out.append(octet)

    return decode, encode


# -- connection (class 10) -------------------------------------------------------------------------


def _table() -> dict[str, Any]:
    return {}


@dataclass(slots=True)
class ConnectionStart(Method):
    CLASS_ID, METHOD_ID, NAME = 10, 10, "connection.start"
    WIRE = "version_major:octet version_minor:octet server_properties:table mechanisms:longstr locales:longstr"
    SYNCHRONOUS, REPLY = True, "connection.start-ok"
    version_major: int = 0
    version_minor: int = 9
    server_properties: dict[str, Any] = field(default_factory=_table)
    mechanisms: bytes = b"PLAIN AMQPLAIN"
    locales: bytes = b"en_US"


@dataclass(slots=True)
class ConnectionStartOk(Method):
    CLASS_ID, METHOD_ID, NAME = 10, 11, "connection.start-ok"
    WIRE = "client_properties:table mechanism:shortstr response:longstr locale:shortstr"
    client_properties: dict[str, Any] = field(default_factory=_table)
    mechanism: str = "PLAIN"
    response: bytes = b""
    locale: str = "en_US"


@dataclass(slots=True)
class ConnectionSecure(Method):
    CLASS_ID, METHOD_ID, NAME = 10, 20, "connection.secure"
    WIRE = "challenge:longstr"
    SYNCHRONOUS, REPLY = True, "connection.secure-ok"
    challenge: bytes = b""


@dataclass(slots=True)
class ConnectionSecureOk(Method):
    CLASS_ID, METHOD_ID, NAME = 10, 21, "connection.secure-ok"
    WIRE = "response:longstr"
    response: bytes = b""


@dataclass(slots=True)
class ConnectionTune(Method):
    CLASS_ID, METHOD_ID, NAME = 10, 30, "connection.tune"
    WIRE = "channel_max:short frame_max:long heartbeat:short"
    SYNCHRONOUS, REPLY = True, "connection.tune-ok"
    channel_max: int = 0
    frame_max: int = 0
    heartbeat: int = 0


@dataclass(slots=True)
class ConnectionTuneOk(Method):
    CLASS_ID, METHOD_ID, NAME = 10, 31, "connection.tune-ok"
    WIRE = "channel_max:short frame_max:long heartbeat:short"
    channel_max: int = 0
    frame_max: int = 0
    heartbeat: int = 0


@dataclass(slots=True)
class ConnectionOpen(Method):
    CLASS_ID, METHOD_ID, NAME = 10, 40, "connection.open"
    WIRE = "virtual_host:shortstr _capabilities:shortstr _insist:bit"
    SYNCHRONOUS, REPLY = True, "connection.open-ok"
    virtual_host: str = "/"


@dataclass(slots=True)
class ConnectionOpenOk(Method):
    CLASS_ID, METHOD_ID, NAME = 10, 41, "connection.open-ok"
    WIRE = "_known_hosts:shortstr"


@dataclass(slots=True)
class ConnectionClose(Method):
    CLASS_ID, METHOD_ID, NAME = 10, 50, "connection.close"
    WIRE = "reply_code:short reply_text:shortstr class_id:short method_id:short"
    SYNCHRONOUS, REPLY = True, "connection.close-ok"
    reply_code: int = 200
    reply_text: str = ""
    class_id: int = 0
    method_id: int = 0


@dataclass(slots=True)
class ConnectionCloseOk(Method):
    CLASS_ID, METHOD_ID, NAME = 10, 51, "connection.close-ok"


@dataclass(slots=True)
class ConnectionBlocked(Method):
    CLASS_ID, METHOD_ID, NAME = 10, 60, "connection.blocked"
    WIRE = "reason:shortstr"
    reason: str = ""


@dataclass(slots=True)
class ConnectionUnblocked(Method):
    CLASS_ID, METHOD_ID, NAME = 10, 61, "connection.unblocked"


@dataclass(slots=True)
class ConnectionUpdateSecret(Method):
    CLASS_ID, METHOD_ID, NAME = 10, 70, "connection.update-secret"
    WIRE = "new_secret:longstr reason:shortstr"
    SYNCHRONOUS, REPLY = True, "connection.update-secret-ok"
    new_secret: bytes = b""
    reason: str = ""


@dataclass(slots=True)
class ConnectionUpdateSecretOk(Method):
    CLASS_ID, METHOD_ID, NAME = 10, 71, "connection.update-secret-ok"


# -- channel (class 20) ----------------------------------------------------------------------------


@dataclass(slots=True)
class ChannelOpen(Method):
    CLASS_ID, METHOD_ID, NAME = 20, 10, "channel.open"
    WIRE = "_out_of_band:shortstr"
    SYNCHRONOUS, REPLY = True, "channel.open-ok"


@dataclass(slots=True)
class ChannelOpenOk(Method):
    CLASS_ID, METHOD_ID, NAME = 20, 11, "channel.open-ok"
    WIRE = "_channel_id:longstr"


@dataclass(slots=True)
class ChannelFlow(Method):
    CLASS_ID, METHOD_ID, NAME = 20, 20, "channel.flow"
    WIRE = "active:bit"
    SYNCHRONOUS, REPLY = True, "channel.flow-ok"
    active: bool = True


@dataclass(slots=True)
class ChannelFlowOk(Method):
    CLASS_ID, METHOD_ID, NAME = 20, 21, "channel.flow-ok"
    WIRE = "active:bit"
    active: bool = True


@dataclass(slots=True)
class ChannelClose(Method):
    CLASS_ID, METHOD_ID, NAME = 20, 40, "channel.close"
    WIRE = "reply_code:short reply_text:shortstr class_id:short method_id:short"
    SYNCHRONOUS, REPLY = True, "channel.close-ok"
    reply_code: int = 200
    reply_text: str = ""
    class_id: int = 0
    method_id: int = 0


@dataclass(slots=True)
class ChannelCloseOk(Method):
    CLASS_ID, METHOD_ID, NAME = 20, 41, "channel.close-ok"


# -- exchange (class 40) ---------------------------------------------------------------------------


@dataclass(slots=True)
class ExchangeDeclare(Method):
    CLASS_ID, METHOD_ID, NAME = 40, 10, "exchange.declare"
    WIRE = (
        "_ticket:short exchange:shortstr type:shortstr passive:bit durable:bit auto_delete:bit"
        " internal:bit nowait:bit arguments:table"
    )
    SYNCHRONOUS, REPLY = True, "exchange.declare-ok"
    exchange: str = ""
    type: str = "direct"
    passive: bool = False
    durable: bool = False
    auto_delete: bool = False
    internal: bool = False
    nowait: bool = False  # type: ignore[assignment]
    arguments: dict[str, Any] = field(default_factory=_table)


@dataclass(slots=True)
class ExchangeDeclareOk(Method):
    CLASS_ID, METHOD_ID, NAME = 40, 11, "exchange.declare-ok"


@dataclass(slots=True)
class ExchangeDelete(Method):
    CLASS_ID, METHOD_ID, NAME = 40, 20, "exchange.delete"
    WIRE = "_ticket:short exchange:shortstr if_unused:bit nowait:bit"
    SYNCHRONOUS, REPLY = True, "exchange.delete-ok"
    exchange: str = ""
    if_unused: bool = False
    nowait: bool = False  # type: ignore[assignment]


@dataclass(slots=True)
class ExchangeDeleteOk(Method):
    CLASS_ID, METHOD_ID, NAME = 40, 21, "exchange.delete-ok"


@dataclass(slots=True)
class ExchangeBind(Method):
    CLASS_ID, METHOD_ID, NAME = 40, 30, "exchange.bind"
    WIRE = (
        "_ticket:short destination:shortstr source:shortstr routing_key:shortstr nowait:bit"
        " arguments:table"
    )
    SYNCHRONOUS, REPLY = True, "exchange.bind-ok"
    destination: str = ""
    source: str = ""
    routing_key: str = ""
    nowait: bool = False  # type: ignore[assignment]
    arguments: dict[str, Any] = field(default_factory=_table)


@dataclass(slots=True)
class ExchangeBindOk(Method):
    CLASS_ID, METHOD_ID, NAME = 40, 31, "exchange.bind-ok"


@dataclass(slots=True)
class ExchangeUnbind(Method):
    CLASS_ID, METHOD_ID, NAME = 40, 40, "exchange.unbind"
    WIRE = (
        "_ticket:short destination:shortstr source:shortstr routing_key:shortstr nowait:bit"
        " arguments:table"
    )
    SYNCHRONOUS, REPLY = True, "exchange.unbind-ok"
    destination: str = ""
    source: str = ""
    routing_key: str = ""
    nowait: bool = False  # type: ignore[assignment]
    arguments: dict[str, Any] = field(default_factory=_table)


@dataclass(slots=True)
class ExchangeUnbindOk(Method):
    # RabbitMQ's extension numbers unbind-ok 51, not 41.
    CLASS_ID, METHOD_ID, NAME = 40, 51, "exchange.unbind-ok"


# -- queue (class 50) ------------------------------------------------------------------------------


@dataclass(slots=True)
class QueueDeclare(Method):
    CLASS_ID, METHOD_ID, NAME = 50, 10, "queue.declare"
    WIRE = (
        "_ticket:short queue:shortstr passive:bit durable:bit exclusive:bit auto_delete:bit"
        " nowait:bit arguments:table"
    )
    SYNCHRONOUS, REPLY = True, "queue.declare-ok"
    queue: str = ""
    passive: bool = False
    durable: bool = False
    exclusive: bool = False
    auto_delete: bool = False
    nowait: bool = False  # type: ignore[assignment]
    arguments: dict[str, Any] = field(default_factory=_table)


@dataclass(slots=True)
class QueueDeclareOk(Method):
    CLASS_ID, METHOD_ID, NAME = 50, 11, "queue.declare-ok"
    WIRE = "queue:shortstr message_count:long consumer_count:long"
    queue: str = ""
    message_count: int = 0
    consumer_count: int = 0


@dataclass(slots=True)
class QueueBind(Method):
    CLASS_ID, METHOD_ID, NAME = 50, 20, "queue.bind"
    WIRE = (
        "_ticket:short queue:shortstr exchange:shortstr routing_key:shortstr nowait:bit"
        " arguments:table"
    )
    SYNCHRONOUS, REPLY = True, "queue.bind-ok"
    queue: str = ""
    exchange: str = ""
    routing_key: str = ""
    nowait: bool = False  # type: ignore[assignment]
    arguments: dict[str, Any] = field(default_factory=_table)


@dataclass(slots=True)
class QueueBindOk(Method):
    CLASS_ID, METHOD_ID, NAME = 50, 21, "queue.bind-ok"


@dataclass(slots=True)
class QueuePurge(Method):
    CLASS_ID, METHOD_ID, NAME = 50, 30, "queue.purge"
    WIRE = "_ticket:short queue:shortstr nowait:bit"
    SYNCHRONOUS, REPLY = True, "queue.purge-ok"
    queue: str = ""
    nowait: bool = False  # type: ignore[assignment]


@dataclass(slots=True)
class QueuePurgeOk(Method):
    CLASS_ID, METHOD_ID, NAME = 50, 31, "queue.purge-ok"
    WIRE = "message_count:long"
    message_count: int = 0


@dataclass(slots=True)
class QueueDelete(Method):
    CLASS_ID, METHOD_ID, NAME = 50, 40, "queue.delete"
    WIRE = "_ticket:short queue:shortstr if_unused:bit if_empty:bit nowait:bit"
    SYNCHRONOUS, REPLY = True, "queue.delete-ok"
    queue: str = ""
    if_unused: bool = False
    if_empty: bool = False
    nowait: bool = False  # type: ignore[assignment]


@dataclass(slots=True)
class QueueDeleteOk(Method):
    CLASS_ID, METHOD_ID, NAME = 50, 41, "queue.delete-ok"
    WIRE = "message_count:long"
    message_count: int = 0


@dataclass(slots=True)
class QueueUnbind(Method):
    CLASS_ID, METHOD_ID, NAME = 50, 50, "queue.unbind"
    WIRE = "_ticket:short queue:shortstr exchange:shortstr routing_key:shortstr arguments:table"
    SYNCHRONOUS, REPLY = True, "queue.unbind-ok"
    queue: str = ""
    exchange: str = ""
    routing_key: str = ""
    arguments: dict[str, Any] = field(default_factory=_table)


@dataclass(slots=True)
class QueueUnbindOk(Method):
    CLASS_ID, METHOD_ID, NAME = 50, 51, "queue.unbind-ok"


# -- basic (class 60) ------------------------------------------------------------------------------


@dataclass(slots=True)
class BasicQos(Method):
    CLASS_ID, METHOD_ID, NAME = 60, 10, "basic.qos"
    WIRE = "prefetch_size:long prefetch_count:short global_:bit"
    SYNCHRONOUS, REPLY = True, "basic.qos-ok"
    prefetch_size: int = 0
    prefetch_count: int = 0
    global_: bool = False


@dataclass(slots=True)
class BasicQosOk(Method):
    CLASS_ID, METHOD_ID, NAME = 60, 11, "basic.qos-ok"


@dataclass(slots=True)
class BasicConsume(Method):
    CLASS_ID, METHOD_ID, NAME = 60, 20, "basic.consume"
    WIRE = (
        "_ticket:short queue:shortstr consumer_tag:shortstr no_local:bit no_ack:bit"
        " exclusive:bit nowait:bit arguments:table"
    )
    SYNCHRONOUS, REPLY = True, "basic.consume-ok"
    queue: str = ""
    consumer_tag: str = ""
    no_local: bool = False
    no_ack: bool = False
    exclusive: bool = False
    nowait: bool = False  # type: ignore[assignment]
    arguments: dict[str, Any] = field(default_factory=_table)


@dataclass(slots=True)
class BasicConsumeOk(Method):
    CLASS_ID, METHOD_ID, NAME = 60, 21, "basic.consume-ok"
    WIRE = "consumer_tag:shortstr"
    consumer_tag: str = ""


@dataclass(slots=True)
class BasicCancel(Method):
    CLASS_ID, METHOD_ID, NAME = 60, 30, "basic.cancel"
    WIRE = "consumer_tag:shortstr nowait:bit"
    SYNCHRONOUS, REPLY = True, "basic.cancel-ok"
    consumer_tag: str = ""
    nowait: bool = False  # type: ignore[assignment]


@dataclass(slots=True)
class BasicCancelOk(Method):
    CLASS_ID, METHOD_ID, NAME = 60, 31, "basic.cancel-ok"
    WIRE = "consumer_tag:shortstr"
    consumer_tag: str = ""


_PUBLISH_HEAD = struct.Struct(">HHH")
"""class id, method id, reserved ticket."""
_DELIVER_TAIL = struct.Struct(">QB")
_TAG_BIT = struct.Struct(">QB")


def _shortstr_at(buf: Buffer, pos: int, end: int, what: str) -> tuple[str, int]:
    if pos >= end:
        raise syntax_error(f"truncated {what}")
    length = buf[pos]
    pos += 1
    if pos + length > end:
        raise syntax_error(f"{what} overruns the frame")
    return bytes(buf[pos : pos + length]).decode("utf-8", "surrogateescape"), pos + length


_SHORTSTR_CACHE: dict[str, bytes] = {}
_SHORTSTR_CACHE_SIZE = 4096


def _shortstr_bytes(value: str) -> bytes:
    """A short string's wire form; the hot names (exchanges, routing keys, consumer tags)
    repeat, so recent ones are cached."""
    cached = _SHORTSTR_CACHE.get(value)
    if cached is not None:
        return cached
    raw = value.encode("utf-8", "surrogateescape")
    if len(raw) > 255:
        raise ValueError("short string longer than 255 bytes")
    encoded = bytes((len(raw),)) + raw
    if len(_SHORTSTR_CACHE) >= _SHORTSTR_CACHE_SIZE:
        _SHORTSTR_CACHE.clear()
    _SHORTSTR_CACHE[value] = encoded
    return encoded


@dataclass(slots=True)
class BasicPublish(Method):
    """Hot path: hand-written codec (``_ticket:short exchange routing_key mandatory immediate``)."""

    CLASS_ID, METHOD_ID, NAME = 60, 40, "basic.publish"
    WIRE = "_ticket:short exchange:shortstr routing_key:shortstr mandatory:bit immediate:bit"
    HAS_CONTENT = True
    exchange: str = ""
    routing_key: str = ""
    mandatory: bool = False
    immediate: bool = False

    @classmethod
    def decode(cls, buf: Buffer, pos: int, end: int) -> BasicPublish:
        # ticket (2), exchange shortstr, routing-key shortstr, bits: bounds checked once.
        ex_len = buf[pos + 2]
        ex_end = pos + 3 + ex_len
        rk_len = buf[ex_end]
        rk_end = ex_end + 1 + rk_len
        if rk_end + 1 != end:
            raise syntax_error("basic.publish: bad argument length")
        bits = buf[rk_end]
        return cls(
            bytes(buf[pos + 3 : ex_end]).decode("utf-8", "surrogateescape") if ex_len else "",
            bytes(buf[ex_end + 1 : rk_end]).decode("utf-8", "surrogateescape"),
            bool(bits & 1),
            bool(bits & 2),
        )

    def encode(self) -> bytes:
        return b"".join(
            (
                _PUBLISH_HEAD.pack(60, 40, 0),
                _shortstr_bytes(self.exchange),
                _shortstr_bytes(self.routing_key),
                bytes(((1 if self.mandatory else 0) | (2 if self.immediate else 0),)),
            )
        )


@dataclass(slots=True)
class BasicReturn(Method):
    CLASS_ID, METHOD_ID, NAME = 60, 50, "basic.return"
    WIRE = "reply_code:short reply_text:shortstr exchange:shortstr routing_key:shortstr"
    HAS_CONTENT = True
    reply_code: int = 0
    reply_text: str = ""
    exchange: str = ""
    routing_key: str = ""


@dataclass(slots=True)
class BasicDeliver(Method):
    """Hot path: hand-written codec."""

    CLASS_ID, METHOD_ID, NAME = 60, 60, "basic.deliver"
    WIRE = (
        "consumer_tag:shortstr delivery_tag:longlong redelivered:bit exchange:shortstr"
        " routing_key:shortstr"
    )
    HAS_CONTENT = True
    consumer_tag: str = ""
    delivery_tag: int = 0
    redelivered: bool = False
    exchange: str = ""
    routing_key: str = ""

    @classmethod
    def decode(cls, buf: Buffer, pos: int, end: int) -> BasicDeliver:
        consumer_tag, pos = _shortstr_at(buf, pos, end, "basic.deliver consumer tag")
        if pos + 9 > end:
            raise syntax_error("basic.deliver: truncated delivery tag")
        delivery_tag, bits = _DELIVER_TAIL.unpack_from(buf, pos)
        exchange, pos = _shortstr_at(buf, pos + 9, end, "basic.deliver exchange")
        routing_key, pos = _shortstr_at(buf, pos, end, "basic.deliver routing key")
        if pos != end:
            raise syntax_error("basic.deliver: trailing bytes")
        return cls(consumer_tag, delivery_tag, bool(bits & 1), exchange, routing_key)

    def encode(self) -> bytes:
        return encode_deliver(
            self.consumer_tag, self.delivery_tag, self.redelivered, self.exchange, self.routing_key
        )


def encode_deliver(
    consumer_tag: str, delivery_tag: int, redelivered: bool, exchange: str, routing_key: str
) -> bytes:
    """basic.deliver payload without building a dataclass (the delivery loop calls this)."""
    return b"".join(
        (
            b"\x00\x3c\x00\x3c",
            _shortstr_bytes(consumer_tag),
            _DELIVER_TAIL.pack(delivery_tag, 1 if redelivered else 0),
            _shortstr_bytes(exchange),
            _shortstr_bytes(routing_key),
        )
    )


@dataclass(slots=True)
class BasicGet(Method):
    CLASS_ID, METHOD_ID, NAME = 60, 70, "basic.get"
    WIRE = "_ticket:short queue:shortstr no_ack:bit"
    SYNCHRONOUS, REPLY = True, "basic.get-ok"
    queue: str = ""
    no_ack: bool = False


@dataclass(slots=True)
class BasicGetOk(Method):
    CLASS_ID, METHOD_ID, NAME = 60, 71, "basic.get-ok"
    WIRE = (
        "delivery_tag:longlong redelivered:bit exchange:shortstr routing_key:shortstr"
        " message_count:long"
    )
    HAS_CONTENT = True
    delivery_tag: int = 0
    redelivered: bool = False
    exchange: str = ""
    routing_key: str = ""
    message_count: int = 0


@dataclass(slots=True)
class BasicGetEmpty(Method):
    CLASS_ID, METHOD_ID, NAME = 60, 72, "basic.get-empty"
    WIRE = "_cluster_id:shortstr"


class _TagMethod(Method):
    """Shared hand-written codec of ack/reject/nack: ``longlong delivery_tag`` + one bit octet."""

    __slots__ = ()
    delivery_tag: int

    @classmethod
    def _bits(cls, bits: int) -> dict[str, bool]:
        raise NotImplementedError

    def _octet(self) -> int:
        raise NotImplementedError

    @classmethod
    def decode(cls, buf: Buffer, pos: int, end: int) -> Method:
        if pos + 9 != end:
            raise syntax_error(f"{cls.NAME}: bad argument length")
        delivery_tag, bits = _TAG_BIT.unpack_from(buf, pos)
        return cls(delivery_tag, **cls._bits(bits))  # type: ignore[call-arg]

    def encode(self) -> bytes:
        return _IDS.pack(self.CLASS_ID, self.METHOD_ID) + _TAG_BIT.pack(
            self.delivery_tag, self._octet()
        )


@dataclass(slots=True)
class BasicAck(_TagMethod):
    CLASS_ID, METHOD_ID, NAME = 60, 80, "basic.ack"
    WIRE = "delivery_tag:longlong multiple:bit"
    delivery_tag: int = 0
    multiple: bool = False

    @classmethod
    def _bits(cls, bits: int) -> dict[str, bool]:
        return {"multiple": bool(bits & 1)}

    def _octet(self) -> int:
        return 1 if self.multiple else 0


@dataclass(slots=True)
class BasicReject(_TagMethod):
    CLASS_ID, METHOD_ID, NAME = 60, 90, "basic.reject"
    WIRE = "delivery_tag:longlong requeue:bit"
    delivery_tag: int = 0
    requeue: bool = True

    @classmethod
    def _bits(cls, bits: int) -> dict[str, bool]:
        return {"requeue": bool(bits & 1)}

    def _octet(self) -> int:
        return 1 if self.requeue else 0


@dataclass(slots=True)
class BasicRecoverAsync(Method):
    CLASS_ID, METHOD_ID, NAME = 60, 100, "basic.recover-async"
    WIRE = "requeue:bit"
    requeue: bool = False


@dataclass(slots=True)
class BasicRecover(Method):
    CLASS_ID, METHOD_ID, NAME = 60, 110, "basic.recover"
    WIRE = "requeue:bit"
    SYNCHRONOUS, REPLY = True, "basic.recover-ok"
    requeue: bool = False


@dataclass(slots=True)
class BasicRecoverOk(Method):
    CLASS_ID, METHOD_ID, NAME = 60, 111, "basic.recover-ok"


@dataclass(slots=True)
class BasicNack(_TagMethod):
    CLASS_ID, METHOD_ID, NAME = 60, 120, "basic.nack"
    WIRE = "delivery_tag:longlong multiple:bit requeue:bit"
    delivery_tag: int = 0
    multiple: bool = False
    requeue: bool = True

    @classmethod
    def _bits(cls, bits: int) -> dict[str, bool]:
        return {"multiple": bool(bits & 1), "requeue": bool(bits & 2)}

    def _octet(self) -> int:
        return (1 if self.multiple else 0) | (2 if self.requeue else 0)


# -- confirm (class 85) and tx (class 90) ----------------------------------------------------------


@dataclass(slots=True)
class ConfirmSelect(Method):
    CLASS_ID, METHOD_ID, NAME = 85, 10, "confirm.select"
    WIRE = "nowait:bit"
    SYNCHRONOUS, REPLY = True, "confirm.select-ok"
    nowait: bool = False  # type: ignore[assignment]


@dataclass(slots=True)
class ConfirmSelectOk(Method):
    CLASS_ID, METHOD_ID, NAME = 85, 11, "confirm.select-ok"


@dataclass(slots=True)
class TxSelect(Method):
    CLASS_ID, METHOD_ID, NAME = 90, 10, "tx.select"
    SYNCHRONOUS, REPLY = True, "tx.select-ok"


@dataclass(slots=True)
class TxSelectOk(Method):
    CLASS_ID, METHOD_ID, NAME = 90, 11, "tx.select-ok"


@dataclass(slots=True)
class TxCommit(Method):
    CLASS_ID, METHOD_ID, NAME = 90, 20, "tx.commit"
    SYNCHRONOUS, REPLY = True, "tx.commit-ok"


@dataclass(slots=True)
class TxCommitOk(Method):
    CLASS_ID, METHOD_ID, NAME = 90, 21, "tx.commit-ok"


@dataclass(slots=True)
class TxRollback(Method):
    CLASS_ID, METHOD_ID, NAME = 90, 30, "tx.rollback"
    SYNCHRONOUS, REPLY = True, "tx.rollback-ok"


@dataclass(slots=True)
class TxRollbackOk(Method):
    CLASS_ID, METHOD_ID, NAME = 90, 31, "tx.rollback-ok"


# -- the methods table -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """One row of the methods table."""

    name: str
    cls: type[Method]
    decode: Callable[[Buffer, int, int], Method]
    encode: Callable[[Method], bytes]
    synchronous: bool
    reply: str | None
    has_content: bool


ALL_METHODS: tuple[type[Method], ...] = (
    ConnectionStart, ConnectionStartOk, ConnectionSecure, ConnectionSecureOk, ConnectionTune,
    ConnectionTuneOk, ConnectionOpen, ConnectionOpenOk, ConnectionClose, ConnectionCloseOk,
    ConnectionBlocked, ConnectionUnblocked, ConnectionUpdateSecret, ConnectionUpdateSecretOk,
    ChannelOpen, ChannelOpenOk, ChannelFlow, ChannelFlowOk, ChannelClose, ChannelCloseOk,
    ExchangeDeclare, ExchangeDeclareOk, ExchangeDelete, ExchangeDeleteOk, ExchangeBind,
    ExchangeBindOk, ExchangeUnbind, ExchangeUnbindOk,
    QueueDeclare, QueueDeclareOk, QueueBind, QueueBindOk, QueuePurge, QueuePurgeOk, QueueDelete,
    QueueDeleteOk, QueueUnbind, QueueUnbindOk,
    BasicQos, BasicQosOk, BasicConsume, BasicConsumeOk, BasicCancel, BasicCancelOk, BasicPublish,
    BasicReturn, BasicDeliver, BasicGet, BasicGetOk, BasicGetEmpty, BasicAck, BasicReject,
    BasicRecoverAsync, BasicRecover, BasicRecoverOk, BasicNack,
    ConfirmSelect, ConfirmSelectOk, TxSelect, TxSelectOk, TxCommit, TxCommitOk, TxRollback,
    TxRollbackOk,
)  # fmt: skip

METHODS: dict[tuple[int, int], MethodSpec] = {}
METHODS_BY_NAME: dict[str, MethodSpec] = {}

for _cls in ALL_METHODS:
    _decoder, _encoder = _compile(_cls.NAME, _cls.WIRE)
    _cls._decoder = staticmethod(_decoder)  # type: ignore[assignment]
    _cls._encoder = staticmethod(_encoder)  # type: ignore[assignment]
    _spec = MethodSpec(
        name=_cls.NAME,
        cls=_cls,
        decode=_cls.decode,
        encode=_cls.encode,
        synchronous=_cls.SYNCHRONOUS,
        reply=_cls.REPLY,
        has_content=_cls.HAS_CONTENT,
    )
    METHODS[(_cls.CLASS_ID, _cls.METHOD_ID)] = _spec
    METHODS_BY_NAME[_cls.NAME] = _spec
del _cls, _spec, _decoder, _encoder


def decode_method(payload: Buffer) -> Method:
    """Decode a whole method frame payload; unknown ids raise COMMAND_INVALID (503)."""
    if len(payload) < 4:
        raise syntax_error("method frame shorter than its class and method ids")
    class_id, method_id = _IDS.unpack_from(payload, 0)
    spec = METHODS.get((class_id, method_id))
    if spec is None:
        raise AmqpConnectionError(
            ReplyCode.COMMAND_INVALID, f"unknown method {class_id}/{method_id}", class_id, method_id
        )
    try:
        return spec.decode(payload, 4, len(payload))
    except AmqpError as exc:
        exc.class_id, exc.method_id = class_id, method_id
        raise
    except (IndexError, struct.error, ValueError, TypeError) as exc:
        raise syntax_error(f"{spec.name}: {exc}", class_id, method_id) from None
