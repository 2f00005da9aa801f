"""Test helper: a client side made of pika's own frame codec, to drive ``AmqpConnection``.

Using pika's encoder for what the client sends and pika's decoder for what the server answers
means every connection test is also an interop test of our codec against pika's.
"""

from __future__ import annotations

from typing import Any

import pika.frame
import pika.spec

from firth.amqp.protocol import AmqpConnection, Event

PLAIN_GUEST = b"\x00guest\x00guest"


def method(channel: int, m: Any) -> bytes:
    return pika.frame.Method(channel, m).marshal()


def content(channel: int, m: Any, body: bytes, frame_max: int = 131072, **props: Any) -> bytes:
    """Method + header + body frames as pika's client would send them."""
    out = [
        method(channel, m),
        pika.frame.Header(channel, len(body), pika.spec.BasicProperties(**props)).marshal(),
    ]
    chunk = frame_max - 8
    for start in range(0, len(body), chunk):
        out.append(pika.frame.Body(channel, body[start : start + chunk]).marshal())
    return b"".join(out)


def decode_all(data: bytes) -> list[Any]:
    """pika's view of server output: a list of frames (the header frame for a wrong header)."""
    frames = []
    while data:
        consumed, frame = pika.frame.decode_frame(data)
        assert consumed, f"undecodable output {data[:40]!r}"
        frames.append(frame)
        data = data[consumed:]
    return frames


def methods_of(data: bytes) -> list[Any]:
    return [f.method for f in decode_all(data) if isinstance(f, pika.frame.Method)]


def handshake_bytes(frame_max: int = 131072, heartbeat: int = 60, vhost: str = "/") -> bytes:
    return b"".join(
        (
            pika.frame.ProtocolHeader().marshal(),
            method(0, pika.spec.Connection.StartOk({"product": "test"}, "PLAIN", PLAIN_GUEST)),
            method(0, pika.spec.Connection.TuneOk(0, frame_max, heartbeat)),
            method(0, pika.spec.Connection.Open(vhost)),
        )
    )


def feed(conn: AmqpConnection, data: bytes) -> list[Event]:
    conn.receive_data(data)
    return list(conn.events())


def feed_bytewise(conn: AmqpConnection, data: bytes) -> list[Event]:
    events: list[Event] = []
    for i in range(len(data)):
        conn.receive_data(data[i : i + 1])
        events.extend(conn.events())
    return events


def opened(channels: tuple[int, ...] = (1,), **kwargs: Any) -> AmqpConnection:
    """A connection past negotiation with ``channels`` open and its output drained."""
    conn = AmqpConnection(**kwargs)
    feed(conn, handshake_bytes())
    for channel in channels:
        feed(conn, method(channel, pika.spec.Channel.Open()))
    conn.data_to_send()
    return conn
