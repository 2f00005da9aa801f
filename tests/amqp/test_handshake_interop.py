"""Real clients over real sockets: pika (blocking) and aio-pika negotiate with AmqpServer.

The server runs on its own event loop in a thread, bound to an ephemeral loopback port. What
is checked: the handshake, channel open/close, connection close, heartbeats both ways, refused
logins, that the capabilities advertised are the implemented ones, and that an unsupported
feature (basic.qos prefetch_size) is refused with 540 NOT_IMPLEMENTED rather than silently
accepted.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Iterator

import aio_pika
import pika
import pika.exceptions
import pika.spec
import pytest

from firth.amqp.protocol import PROTOCOL_HEADER
from firth.amqp.protocol.negotiation import Credentials
from firth.amqp.server import IMPLEMENTED_CAPABILITIES, AmqpProtocol, AmqpServer
from tests.amqp.amqp_peer import PLAIN_GUEST, decode_all, method

pytestmark = pytest.mark.timeout(60)


class ServerThread:
    def __init__(self, **kwargs: object) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = AmqpServer("127.0.0.1", 0, **kwargs)  # type: ignore[arg-type]
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:  # on the server's loop: asyncio objects are not thread-safe
            self.server.stop_accepting()
            await self.server.drain(2.0)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def port(self) -> int:
        return self.server.address[1]


@pytest.fixture
def server() -> Iterator[ServerThread]:
    with ServerThread() as running:
        yield running


def _params(port: int, **kwargs: object) -> pika.ConnectionParameters:
    return pika.ConnectionParameters(
        "127.0.0.1", port, connection_attempts=1, socket_timeout=5, **kwargs
    )


# -- pika (blocking) ---------------------------------------------------------------------------


def test_pika_blocking_connects_opens_channels_and_closes(server: ServerThread) -> None:
    connection = pika.BlockingConnection(_params(server.port))
    props = connection._impl.server_properties
    assert props["product"] == b"RabbitMQ" or props["product"] == "RabbitMQ"
    assert props["capabilities"] == IMPLEMENTED_CAPABILITIES
    channels = [connection.channel() for _ in range(3)]
    assert [c.channel_number for c in channels] == [1, 2, 3]
    channels[1].close()
    assert channels[1].is_closed and channels[0].is_open
    connection.close()
    assert connection.is_closed


def test_pika_negotiates_frame_max_and_heartbeat(server: ServerThread) -> None:
    connection = pika.BlockingConnection(_params(server.port, frame_max=8192, heartbeat=5))
    try:
        assert connection._impl.params.frame_max == 8192
        assert connection._impl.params.heartbeat == 5
    finally:
        connection.close()


def test_pika_wrong_password_is_refused(server: ServerThread) -> None:
    credentials = pika.PlainCredentials("guest", "wrong")
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(_params(server.port, credentials=credentials))


def test_pika_unknown_vhost_is_refused(server: ServerThread) -> None:
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(_params(server.port, virtual_host="nope"))


def test_pika_unimplemented_method_gets_540(server: ServerThread) -> None:
    connection = pika.BlockingConnection(_params(server.port))
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as caught:
        channel.basic_qos(prefetch_size=4096)
    assert caught.value.reply_code == 540
    assert connection.is_closed


def test_guest_is_refused_from_a_non_loopback_address(server: ServerThread) -> None:
    # Tests may only use loopback, so the peer address is set on the protocol object directly.
    async def check() -> tuple[bool, bool]:
        proto = AmqpProtocol(server.server)
        proto.peer = ("10.1.2.3", 5555)
        remote = proto._authenticate(Credentials("PLAIN", "guest", "guest"))
        proto.peer = ("::1", 5555)
        local = proto._authenticate(Credentials("PLAIN", "guest", "guest"))
        return remote, local

    remote, local = asyncio.run_coroutine_threadsafe(check(), server.loop).result(5)
    assert (remote, local) == (False, True)


# -- aio-pika ----------------------------------------------------------------------------------


def test_aio_pika_connects_opens_channel_and_closes(server: ServerThread) -> None:
    async def session() -> dict[str, object]:
        connection = await aio_pika.connect(f"amqp://guest:guest@127.0.0.1:{server.port}/")
        channel = await connection.channel(publisher_confirms=False)
        assert not channel.is_closed
        await channel.close()
        properties = dict(connection.transport.connection.server_properties)  # type: ignore[union-attr]
        await connection.close()
        return properties

    properties = asyncio.run(session())
    assert properties["product"] == "RabbitMQ"


def test_aio_pika_publishes_with_confirms(server: ServerThread) -> None:
    async def session() -> bytes:
        connection = await aio_pika.connect(f"amqp://guest:guest@127.0.0.1:{server.port}/")
        try:
            channel = await connection.channel(publisher_confirms=True)
            queue = await channel.declare_queue("confirmed")
            confirmation = await channel.default_exchange.publish(
                aio_pika.Message(b"hello"), routing_key="confirmed"
            )
            assert confirmation is not None
            message = await queue.get(timeout=5)
            assert message is not None
            await message.ack()
            return message.body
        finally:
            await connection.close()

    assert asyncio.run(session()) == b"hello"


# -- raw sockets: heartbeats, bad headers ------------------------------------------------------


def _recv_until(sock: socket.socket, predicate, limit: float = 10.0) -> bytes:  # type: ignore[no-untyped-def]
    sock.settimeout(limit)
    data = b""
    while not predicate(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _raw_handshake(port: int, heartbeat: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(PROTOCOL_HEADER)
    _recv_until(sock, lambda d: len(d) > 7 and len(d) >= struct.unpack(">I", d[3:7])[0] + 8)
    sock.sendall(method(0, pika.spec.Connection.StartOk({}, "PLAIN", PLAIN_GUEST)))
    sock.sendall(method(0, pika.spec.Connection.TuneOk(0, 131072, heartbeat)))
    sock.sendall(method(0, pika.spec.Connection.Open("/")))
    return sock


def test_server_sends_heartbeats_at_half_the_interval(server: ServerThread) -> None:
    sock = _raw_handshake(server.port, heartbeat=1)
    try:
        data = _recv_until(sock, lambda d: b"\x08\x00\x00\x00\x00\x00\x00\xce" in d, limit=5)
        assert b"\x08\x00\x00\x00\x00\x00\x00\xce" in data
    finally:
        sock.close()


def test_silent_client_is_dropped_after_two_missed_heartbeats(server: ServerThread) -> None:
    sock = _raw_handshake(server.port, heartbeat=1)
    dropped = False
    try:
        sock.settimeout(10)  # a timeout here (socket.timeout) fails the test
        while sock.recv(65536):  # heartbeats arrive; we never answer
            pass
        dropped = True
    except ConnectionResetError:
        dropped = True  # the server aborts, which may surface as a reset
    finally:
        sock.close()
    assert dropped


def test_wrong_protocol_header_gets_ours_and_a_closed_socket(server: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"AMQP\x01\x01\x00\x0a")
        data = _recv_until(sock, lambda d: False)
    assert data == PROTOCOL_HEADER


def test_garbage_after_handshake_closes_with_frame_error(server: ServerThread) -> None:
    sock = _raw_handshake(server.port, heartbeat=0)
    try:
        sock.sendall(b"\x09garbage-garbage")
        data = _recv_until(sock, lambda d: False)
    finally:
        sock.close()
    closes = [
        f.method
        for f in decode_all(data)
        if hasattr(f, "method") and f.method.NAME == "Connection.Close"
    ]
    assert closes and closes[0].reply_code == 501


def test_drain_closes_clients_with_connection_forced() -> None:
    with ServerThread() as running:
        connection = pika.BlockingConnection(_params(running.port))
        connection.channel()
        running.server.stop_accepting()
        drained = asyncio.run_coroutine_threadsafe(running.server.drain(5.0), running.loop)
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as caught:
            connection.process_data_events(time_limit=5)
        assert caught.value.reply_code == 320
        drained.result(5)
        assert not running.server.connections
