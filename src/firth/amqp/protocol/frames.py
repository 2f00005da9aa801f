"""Frame codec: split a byte stream into frames, and build frames to send.

Layout (see constants.py): ``type:octet channel:short size:long payload frame-end:0xCE``.
``parse_frame`` looks at one position of a buffer and returns ``None`` when the frame is not
all there yet, so the caller can keep a growing buffer and feed it any way the network splits
it. It checks what the frame layer can: the type, the size against ``frame_max`` (before the
payload has arrived, so a hostile size never makes us buffer gigabytes) and the frame-end octet.

Outgoing content is one method frame, one header frame and as many body frames as the body
needs at ``frame_max - 8`` bytes each; ``encode_content`` writes them in one buffer.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from firth.amqp.protocol.constants import (
    CLASS_BASIC,
    FRAME_BODY,
    FRAME_END,
    FRAME_HEADER,
    FRAME_HEADER_SIZE,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    FRAME_OVERHEAD,
)
from firth.amqp.protocol.errors import frame_error
from firth.amqp.protocol.methods import Method
from firth.amqp.protocol.properties import BasicProperties, encode_properties

FRAME_HEADER_STRUCT = struct.Struct(">BHI")
_FRAME_HEADER = FRAME_HEADER_STRUCT
_CONTENT_HEADER_PREFIX = struct.Struct(">HHQ")
FRAME_TYPES = frozenset({FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT})

HEARTBEAT_FRAME = b"\x08\x00\x00\x00\x00\x00\x00\xce"
_END = bytes((FRAME_END,))


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame as read: its type, channel and payload bytes."""

    type: int
    channel: int
    payload: bytes


def parse_frame(buf: bytes | bytearray, pos: int, frame_max: int) -> tuple[Frame, int] | None:
    """The frame at ``buf[pos:]`` and the position after it, or ``None`` if incomplete.

    ``frame_max`` bounds the whole frame (header, payload and end octet), as in connection.tune.
    Raises FRAME_ERROR (501) for an unknown type, an oversized frame or a bad frame-end.
    """
    if len(buf) - pos < FRAME_HEADER_SIZE:
        return None
    frame_type, channel, size = _FRAME_HEADER.unpack_from(buf, pos)
    if frame_type not in FRAME_TYPES:
        raise frame_error(f"unknown frame type {frame_type}")
    if size + FRAME_OVERHEAD > frame_max:
        raise frame_error(f"frame size {size + FRAME_OVERHEAD} exceeds frame_max {frame_max}")
    end = pos + FRAME_HEADER_SIZE + size
    if len(buf) <= end:
        return None
    if buf[end] != FRAME_END:
        raise frame_error(f"frame-end octet {buf[end]:#04x}, expected 0xce")
    return Frame(frame_type, channel, bytes(buf[pos + FRAME_HEADER_SIZE : end])), end + 1


def encode_frame(frame_type: int, channel: int, payload: bytes) -> bytes:
    return _FRAME_HEADER.pack(frame_type, channel, len(payload)) + payload + _END


def encode_method_frame(channel: int, method: Method) -> bytes:
    return encode_frame(FRAME_METHOD, channel, method.encode())


def encode_content(
    channel: int,
    method_payload: bytes,
    properties: BasicProperties | bytes,
    body: bytes,
    frame_max: int,
    class_id: int = CLASS_BASIC,
) -> bytes:
    """Method + header + body frames for one message, bodies split to fit ``frame_max``.

    ``method_payload`` is an encoded method (``Method.encode()`` or ``encode_deliver``);
    ``properties`` may be the publisher's flags+properties bytes, passed through unchanged.
    """
    raw_props = properties if isinstance(properties, bytes) else encode_properties(properties)
    out = bytearray(_FRAME_HEADER.pack(FRAME_METHOD, channel, len(method_payload)))
    out += method_payload
    out.append(FRAME_END)
    out += _FRAME_HEADER.pack(FRAME_HEADER, channel, 12 + len(raw_props))
    out += _CONTENT_HEADER_PREFIX.pack(class_id, 0, len(body))
    out += raw_props
    out.append(FRAME_END)
    chunk = frame_max - FRAME_OVERHEAD
    view = memoryview(body)
    for start in range(0, len(body), chunk):
        part = view[start : start + chunk]
        out += _FRAME_HEADER.pack(FRAME_BODY, channel, len(part))
        out += part
        out.append(FRAME_END)
    return bytes(out)
