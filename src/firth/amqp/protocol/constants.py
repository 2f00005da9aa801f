"""Magic numbers of AMQP 0-9-1, each in one place with the reason for its value.

Frame layout (section 4.2.3 of the 0-9-1 specification)::

    offset  size  field
    0       1     type        1 method, 2 content header, 3 content body, 8 heartbeat
    1       2     channel     0 for the connection itself and for heartbeats
    3       4     size        payload bytes
    7       size  payload
    7+size  1     frame-end   always 0xCE

A peer opens with the 8-byte protocol header ``AMQP 0 0 9 1``; a server that does not speak the
version a client asked for writes its own header and closes the socket.
"""

from __future__ import annotations

from enum import IntEnum

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
"""What a 0-9-1 client sends first, and what we answer a wrong header with before closing."""

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8
"""RabbitMQ and every client use 8 (the 0-9-1 text says 4; the errata settled on 8)."""

FRAME_END = 0xCE
FRAME_HEADER_SIZE = 7
"""type (1) + channel (2) + size (4)."""
FRAME_OVERHEAD = 8
"""Header plus the frame-end octet: what a frame costs beyond its payload."""

FRAME_MIN_SIZE = 4096
"""The spec's floor for frame_max; also the limit before tune-ok settles the real one."""
DEFAULT_FRAME_MAX = 131072
"""RabbitMQ's default frame_max (128 KiB)."""
DEFAULT_CHANNEL_MAX = 2047
"""RabbitMQ's default channel_max since 3.7."""
DEFAULT_HEARTBEAT = 60
"""Seconds; RabbitMQ's default heartbeat proposal."""
DEFAULT_MAX_MESSAGE_SIZE = 128 * 1024 * 1024
"""RabbitMQ's default max_message_size (128 MiB); larger content is refused (406)."""

MAX_TABLE_DEPTH = 64
"""Nesting limit for field tables/arrays; deeper input is a syntax error, never RecursionError.
No client nests anywhere near this (x-death is two levels)."""

CLASS_CONNECTION = 10
CLASS_CHANNEL = 20
CLASS_EXCHANGE = 40
CLASS_QUEUE = 50
CLASS_BASIC = 60
CLASS_CONFIRM = 85
CLASS_TX = 90


class ReplyCode(IntEnum):
    """Reply codes of connection.close/channel.close, as RabbitMQ uses them."""

    REPLY_SUCCESS = 200
    CONTENT_TOO_LARGE = 311
    NO_ROUTE = 312
    NO_CONSUMERS = 313
    CONNECTION_FORCED = 320
    INVALID_PATH = 402
    ACCESS_REFUSED = 403
    NOT_FOUND = 404
    RESOURCE_LOCKED = 405
    PRECONDITION_FAILED = 406
    FRAME_ERROR = 501
    SYNTAX_ERROR = 502
    COMMAND_INVALID = 503
    CHANNEL_ERROR = 504
    UNEXPECTED_FRAME = 505
    RESOURCE_ERROR = 506
    NOT_ALLOWED = 530
    NOT_IMPLEMENTED = 540
    INTERNAL_ERROR = 541
