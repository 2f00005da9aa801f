"""AMQP 0-9-1 wire codec, sans-IO: frames, field tables, properties, methods, connection.

Nothing here imports asyncio, the broker or storage. The asyncio front end
(``firth.amqp.server``) feeds ``AmqpConnection`` bytes and writes what it produces.

Modules: ``constants`` (magic numbers, reply codes), ``errors`` (the error tree), ``tables``
(field tables), ``properties`` (content headers), ``methods`` (method classes and the methods
table), ``frames`` (frame parsing/encoding), ``negotiation`` (server properties, SASL),
``connection`` (the connection state machine).
"""

from firth.amqp.protocol.connection import (
    AmqpConnection,
    ChannelClosed,
    ChannelOpened,
    ConnectionClosed,
    ConnectionOpened,
    Event,
    Heartbeat,
    Message,
    MethodFrame,
    State,
)
from firth.amqp.protocol.constants import PROTOCOL_HEADER, ReplyCode
from firth.amqp.protocol.errors import (
    AmqpChannelError,
    AmqpConnectionError,
    AmqpError,
    ProtocolHeaderError,
)
from firth.amqp.protocol.methods import METHODS, Method, MethodSpec, decode_method
from firth.amqp.protocol.properties import BasicProperties, ContentHeader
from firth.amqp.protocol.tables import Typed, decode_table, encode_table

__all__ = [
    "METHODS",
    "PROTOCOL_HEADER",
    "AmqpChannelError",
    "AmqpConnection",
    "AmqpConnectionError",
    "AmqpError",
    "BasicProperties",
    "ChannelClosed",
    "ChannelOpened",
    "ConnectionClosed",
    "ConnectionOpened",
    "ContentHeader",
    "Event",
    "Heartbeat",
    "Message",
    "Method",
    "MethodFrame",
    "MethodSpec",
    "ProtocolHeaderError",
    "ReplyCode",
    "State",
    "Typed",
    "decode_method",
    "decode_table",
    "encode_table",
]
