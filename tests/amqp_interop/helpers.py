"""Small tools the interop tests share: waiting on conditions, draining queues, a raw client.

``wait_for`` polls a condition with a deadline (the suite never sleeps and hopes).
``RawAmqp`` speaks AMQP 0-9-1 over a plain socket for the bad-input tests, which must send what
no well-behaved client would. Its frames are built with pamqp, an implementation independent of
both Firth and RabbitMQ, and its bytes can be bent at will.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from typing import Any, TypeAlias
from urllib.parse import urlparse

import pika
import pika.adapters.blocking_connection
import pika.spec
from pamqp import commands, frame, heartbeat
from pamqp.base import Frame

Channel: TypeAlias = pika.adapters.blocking_connection.BlockingChannel

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_END = b"\xce"


def wait_for(
    condition: Callable[[], Any], timeout: float = 10.0, what: str = "", interval: float = 0.01
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what or condition}")
        time.sleep(interval)


def pump_until(
    connection: pika.BlockingConnection,
    condition: Callable[[], Any],
    timeout: float = 10.0,
    what: str = "",
) -> Any:
    """Like ``wait_for``, but lets pika's blocking connection process I/O while it waits."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what or condition}")
        connection.process_data_events(time_limit=0.02)


Got: TypeAlias = tuple[pika.spec.Basic.GetOk, pika.spec.BasicProperties, bytes]


def get(channel: Channel, queue: str, auto_ack: bool = True) -> Got | None:
    """One basic.get; None when the queue is empty."""
    method, properties, body = channel.basic_get(queue, auto_ack=auto_ack)
    if method is None:
        return None
    return method, properties, body


def wait_get(channel: Channel, queue: str, timeout: float = 10.0, auto_ack: bool = True) -> Got:
    """basic.get until a message is there (publishing is asynchronous) or the deadline passes."""
    return wait_for(lambda: get(channel, queue, auto_ack), timeout, f"a message in {queue}")  # type: ignore[no-any-return]


def drain(channel: Channel, queue: str) -> list[bytes]:
    """Every body basic.get can take from ``queue`` now (auto-ack)."""
    bodies = []
    while (got := get(channel, queue)) is not None:
        bodies.append(got[2])
    return bodies


def message_count(channel: Channel, queue: str) -> int:
    return int(channel.queue_declare(queue, passive=True).method.message_count)


def wait_count(channel: Channel, queue: str, count: int, timeout: float = 10.0) -> None:
    """Wait until passive declare reports ``count`` ready messages in ``queue``."""
    wait_for(
        lambda: message_count(channel, queue) == count, timeout, f"{count} messages in {queue}"
    )


def persistent(**kwargs: Any) -> pika.BasicProperties:
    return pika.BasicProperties(delivery_mode=2, **kwargs)


# --- raw client -------------------------------------------------------------------------------


class RawAmqp:
    """A socket that has done the AMQP handshake as guest and otherwise obeys the caller.

    ``frame_max`` is what the client answers in tune-ok (the server's offer, or less).
    """

    def __init__(self, url: str, frame_max: int | None = None, timeout: float = 10.0) -> None:
        parsed = urlparse(url)
        self.address = (parsed.hostname or "127.0.0.1", parsed.port or 5672)
        self.sock = socket.create_connection(self.address, timeout=timeout)
        self.buffer = b""
        self.frame_max_wanted = frame_max
        self.frame_max = 0

    @classmethod
    def connected(cls, url: str, frame_max: int | None = None) -> RawAmqp:
        raw = cls(url, frame_max)
        raw.handshake()
        return raw

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, value: Frame | heartbeat.Heartbeat, channel: int = 0) -> None:
        self.send(frame.marshal(value, channel))

    def handshake(self) -> None:
        self.send(PROTOCOL_HEADER)
        start = self.expect(commands.Connection.Start)
        assert b"PLAIN" in start.mechanisms.encode()
        self.send_frame(
            commands.Connection.StartOk(
                client_properties={"product": "firth-interop-raw"},
                mechanism="PLAIN",
                response="\0guest\0guest",
                locale="en_US",
            )
        )
        tune = self.expect(commands.Connection.Tune)
        frame_max = tune.frame_max if self.frame_max_wanted is None else self.frame_max_wanted
        self.frame_max = frame_max
        self.send_frame(
            commands.Connection.TuneOk(
                channel_max=tune.channel_max, frame_max=frame_max, heartbeat=0
            )
        )
        self.send_frame(commands.Connection.Open(virtual_host="/"))
        self.expect(commands.Connection.OpenOk)

    def open_channel(self, channel: int) -> None:
        self.send_frame(commands.Channel.Open(), channel)
        self.expect(commands.Channel.OpenOk)

    def read_frame(self) -> tuple[int, Any] | None:
        """The next frame (channel, value); None once the server has closed the socket."""
        while True:
            if len(self.buffer) >= 7:
                (size,) = struct.unpack_from(">I", self.buffer, 3)
                if len(self.buffer) >= size + 8:
                    consumed, channel, value = frame.unmarshal(self.buffer[: size + 8])
                    self.buffer = self.buffer[consumed:]
                    return channel, value
            chunk = self.recv()
            if not chunk:
                return None
            self.buffer += chunk

    def recv(self) -> bytes:
        try:
            return self.sock.recv(65536)
        except ConnectionResetError:
            return b""

    def expect(self, kind: type) -> Any:
        """Read frames, skipping heartbeats, until one of ``kind``; fail on anything else."""
        while True:
            got = self.read_frame()
            if got is None:
                raise AssertionError(f"the server closed the socket while {kind.__name__} was due")
            _, value = got
            if isinstance(value, heartbeat.Heartbeat):
                continue
            if not isinstance(value, kind):
                raise AssertionError(f"expected {kind.__name__}, got {value!r}")
            return value

    def read_raw_until_closed(self) -> bytes:
        """Everything the server sends until it closes the socket (bounded by the timeout)."""
        data = self.buffer
        self.buffer = b""
        while chunk := self.recv():
            data += chunk
        return data

    def expect_connection_close(self) -> commands.Connection.Close:
        """The server's connection.close (answered with close-ok); the socket then closes."""
        close = self.expect(commands.Connection.Close)
        self.send_frame(commands.Connection.CloseOk())
        assert self.read_raw_until_closed() == b""
        return close  # type: ignore[no-any-return]

    def closed_or_close(self) -> int | None:
        """After input that breaks framing, a server may send connection.close or just hang up:
        returns the reply code if it sent one, None if the socket closed without one."""
        while True:
            try:
                got = self.read_frame()
            except Exception:  # unparseable reply: treat as a hang-up
                return None
            if got is None:
                return None
            _, value = got
            if isinstance(value, commands.Connection.Close):
                try:
                    self.send_frame(commands.Connection.CloseOk())
                except OSError:
                    pass
                return int(value.reply_code or 0)


def raw_frame(frame_type: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + FRAME_END


def client_works(url: str) -> bool:
    """A fresh client can declare, publish and get: the server still serves others."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.basic_publish("", queue, b"still-alive")
        got = wait_get(channel, queue)
        return got[2] == b"still-alive"
    finally:
        connection.close()
