"""Bad input over raw sockets: what no well-behaved client sends, answered with RabbitMQ's reply
codes, and the broker keeps serving everyone else.

Frames are built with pamqp or by hand (``raw_frame``). After each offence the test checks the
answer (the header, a connection.close with its code, or a hang-up where framing is lost) and
then that a fresh client can still declare, publish and get.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Callable
from urllib.parse import urlparse

import pytest
from pamqp import body, commands, header

from tests.amqp_interop.helpers import PROTOCOL_HEADER, RawAmqp, client_works, raw_frame

pytestmark = pytest.mark.timeout(60)

Name = Callable[[str], str]
METHOD, HEADER, BODY = 1, 2, 3


def answer_to_header(url: str, header: bytes) -> bytes:
    """Send ``header`` as the first bytes of a connection; return all the server sends back
    until it closes the socket (a reset counts as closed)."""
    parsed = urlparse(url)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as sock:
        sock.sendall(header)
        received = b""
        while True:
            try:
                chunk = sock.recv(4096)
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk


@pytest.mark.parametrize(
    "header",
    [
        b"AMQP\x00\x00\x09\x02",  # a later 0-9 revision
        b"AMQP\x00\x01\x00\x00",  # AMQP 1.0
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x01\x02\x03\x04\x05\x06\x07\x08",
    ],
    ids=["0-9-2", "amqp-1.0", "http", "garbage"],
)
def test_wrong_protocol_header_gets_ours_then_close(amqp_url: str, header: bytes) -> None:
    assert answer_to_header(amqp_url, header) == PROTOCOL_HEADER
    assert client_works(amqp_url)


def test_garbage_after_the_handshake_closes_the_connection(amqp_url: str) -> None:
    raw = RawAmqp.connected(amqp_url)
    raw.send(b"\xff" * 64 + os.urandom(256))
    assert raw.closed_or_close() in (501, None)
    assert client_works(amqp_url)


def test_frame_over_frame_max_is_501(amqp_url: str) -> None:
    raw = RawAmqp.connected(amqp_url, frame_max=4096)
    raw.open_channel(1)
    publish = commands.Basic.Publish(exchange="", routing_key="nowhere")
    raw.send_frame(publish, 1)
    raw.send(_content_header(9000))
    raw.send(raw_frame(BODY, 1, b"x" * 9000))  # one body frame of 9000 > 4096
    assert raw.closed_or_close() == 501
    assert client_works(amqp_url)


def test_bad_frame_end_and_unknown_frame_type_are_501(amqp_url: str) -> None:
    raw = RawAmqp.connected(amqp_url)
    raw.open_channel(1)
    raw.send(raw_frame(METHOD, 1, b"\x00\x3c\x00\x28")[:-1] + b"\x00")
    assert raw.closed_or_close() == 501
    raw = RawAmqp.connected(amqp_url)
    raw.open_channel(1)
    raw.send(raw_frame(9, 1, b""))
    assert raw.closed_or_close() == 501
    assert client_works(amqp_url)


def test_method_on_an_unopened_channel_is_504(amqp_url: str, name: Name) -> None:
    raw = RawAmqp.connected(amqp_url)
    raw.send_frame(commands.Queue.Declare(queue=name("q")), 5)
    assert raw.expect_connection_close().reply_code == 504
    assert client_works(amqp_url)


def test_opening_a_channel_twice_is_504(amqp_url: str) -> None:
    raw = RawAmqp.connected(amqp_url)
    raw.open_channel(1)
    raw.send_frame(commands.Channel.Open(), 1)
    assert raw.expect_connection_close().reply_code == 504


def test_content_without_a_method_is_505(amqp_url: str) -> None:
    raw = RawAmqp.connected(amqp_url)
    raw.open_channel(1)
    raw.send(raw_frame(BODY, 1, b"orphan body"))
    assert raw.expect_connection_close().reply_code == 505
    raw = RawAmqp.connected(amqp_url)
    raw.open_channel(1)
    raw.send(_content_header(4))
    assert raw.expect_connection_close().reply_code == 505
    assert client_works(amqp_url)


def test_method_where_content_is_due_is_505(amqp_url: str, name: Name) -> None:
    raw = RawAmqp.connected(amqp_url)
    raw.open_channel(1)
    raw.send_frame(commands.Basic.Publish(exchange="", routing_key="nowhere"), 1)
    raw.send_frame(commands.Queue.Declare(queue=name("q")), 1)
    assert raw.expect_connection_close().reply_code == 505


def test_unknown_exchange_type_is_503(amqp_url: str, name: Name) -> None:
    raw = RawAmqp.connected(amqp_url)
    raw.open_channel(1)
    raw.send_frame(commands.Exchange.Declare(exchange=name("x"), exchange_type="no-such-type"), 1)
    assert raw.expect_connection_close().reply_code == 503
    assert client_works(amqp_url)


def test_unknown_method_closes_the_connection(amqp_url: str) -> None:
    raw = RawAmqp.connected(amqp_url)
    raw.open_channel(1)
    raw.send(raw_frame(METHOD, 1, struct.pack(">HH", 60, 999)))
    assert raw.closed_or_close() in (503, 540, None)
    assert client_works(amqp_url)


def test_duplicate_consumer_tag_is_530(amqp_url: str, name: Name) -> None:
    raw = RawAmqp.connected(amqp_url)
    raw.open_channel(1)
    queue = name("q")
    raw.send_frame(commands.Queue.Declare(queue=queue, auto_delete=True), 1)
    raw.expect(commands.Queue.DeclareOk)
    for _ in range(2):
        raw.send_frame(commands.Basic.Consume(queue=queue, consumer_tag="same"), 1)
    raw.expect(commands.Basic.ConsumeOk)
    assert raw.expect_connection_close().reply_code == 530


def test_publish_with_immediate_is_540(amqp_url: str) -> None:
    """RabbitMQ dropped support for the immediate flag in 3.0 and closes the connection."""
    raw = RawAmqp.connected(amqp_url)
    raw.open_channel(1)
    raw.send_frame(commands.Basic.Publish(exchange="", routing_key="nowhere", immediate=True), 1)
    raw.send(_content_header(1))
    raw.send(raw_frame(BODY, 1, b"x"))
    assert raw.expect_connection_close().reply_code == 540
    assert client_works(amqp_url)


def test_qos_prefetch_size_is_540(amqp_url: str) -> None:
    raw = RawAmqp.connected(amqp_url)
    raw.open_channel(1)
    raw.send_frame(commands.Basic.Qos(prefetch_size=1000, prefetch_count=1), 1)
    assert raw.expect_connection_close().reply_code == 540


def test_table_nested_10000_deep(amqp_url: str, name: Name, target: str) -> None:
    """A deliberate difference: RabbitMQ decodes any depth (Erlang recursion is cheap) and
    accepts the declaration; Firth bounds nesting (64 levels) and closes the connection with
    502 SYNTAX_ERROR rather than recurse 10,000 frames deep. Either way, others are served."""
    body = b""
    for _ in range(10_000):
        body = b"\x01kF" + struct.pack(">I", len(body)) + body
    table = struct.pack(">I", len(body)) + body
    queue = name("deep").encode()
    arguments = struct.pack(">HHH", 50, 10, 0) + bytes([len(queue)]) + queue + b"\x00" + table
    raw = RawAmqp.connected(amqp_url)
    raw.open_channel(1)
    raw.send(raw_frame(METHOD, 1, arguments))
    if target == "rabbitmq":
        raw.expect(commands.Queue.DeclareOk)
        raw.send_frame(commands.Queue.Delete(queue=queue.decode()), 1)
        raw.expect(commands.Queue.DeleteOk)
    else:
        assert raw.closed_or_close() in (502, None)
    assert client_works(amqp_url)


def test_many_bad_connections_do_not_stop_a_good_client(amqp_url: str) -> None:
    for index in range(20):
        raw = RawAmqp(amqp_url)
        raw.send(os.urandom(64) if index % 2 else PROTOCOL_HEADER + os.urandom(64))
        raw.close()
    assert client_works(amqp_url)


def _content_header(body_size: int, channel: int = 1) -> bytes:
    """A whole content-header frame: class 60, weight 0, the body size and no properties."""
    return raw_frame(HEADER, channel, struct.pack(">HHQH", 60, 0, body_size, 0))


def test_cancel_of_an_unknown_consumer_tag_is_answered(amqp_url: str) -> None:
    """aio-pika waits for cancel-ok forever, so an unknown tag must still get one."""
    raw = RawAmqp.connected(amqp_url)
    raw.open_channel(1)
    raw.send_frame(commands.Basic.Cancel(consumer_tag="never-consumed"), 1)
    assert raw.expect(commands.Basic.CancelOk).consumer_tag == "never-consumed"


def test_nowait_declarations_and_bindings(amqp_url: str, name: Name) -> None:
    """kombu and others send declare, bind and consume with nowait; nothing is answered, and
    the declared objects work at once on the same channel."""
    raw = RawAmqp.connected(amqp_url)
    raw.open_channel(1)
    exchange, queue = name("x"), name("q")
    raw.send_frame(
        commands.Exchange.Declare(exchange=exchange, exchange_type="fanout", nowait=True), 1
    )
    raw.send_frame(commands.Queue.Declare(queue=queue, auto_delete=True, nowait=True), 1)
    raw.send_frame(commands.Queue.Bind(queue=queue, exchange=exchange, nowait=True), 1)
    raw.send_frame(commands.Basic.Publish(exchange=exchange, routing_key=""), 1)
    raw.send(_content_header(5))
    raw.send(raw_frame(BODY, 1, b"hello"))
    raw.send_frame(
        commands.Basic.Consume(queue=queue, consumer_tag="c1", no_ack=True, nowait=True), 1
    )
    deliver = raw.expect(commands.Basic.Deliver)  # the first frame back: no *-ok came before it
    assert (deliver.consumer_tag, deliver.exchange) == ("c1", exchange)
    assert raw.expect(header.ContentHeader).body_size == 5
    assert raw.expect(body.ContentBody).value == b"hello"
    raw.send_frame(commands.Basic.Cancel(consumer_tag="c1"), 1)
    raw.expect(commands.Basic.CancelOk)
    raw.send_frame(commands.Exchange.Delete(exchange=exchange, nowait=True), 1)
    raw.send_frame(commands.Queue.Delete(queue=queue), 1)
    assert raw.expect(commands.Queue.DeleteOk).message_count == 0
