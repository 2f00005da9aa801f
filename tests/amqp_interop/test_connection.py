"""Connection negotiation: credentials (PLAIN with pika, AMQPLAIN with kombu), refused logins
and virtual hosts, frame_max and channel_max, and heartbeats in both directions."""

from __future__ import annotations

import time
from collections.abc import Callable

import kombu
import pika
import pika.exceptions
import pytest
from pamqp import commands, heartbeat

from tests.amqp_interop.helpers import PROTOCOL_HEADER, RawAmqp, client_works, wait_get

pytestmark = pytest.mark.timeout(60)

Name = Callable[[str], str]


def parameters(url: str, **overrides: object) -> pika.URLParameters:
    params = pika.URLParameters(url)
    for key, value in overrides.items():
        setattr(params, key, value)
    return params


def negotiate(
    url: str, *, channel_max: int | None = None, heartbeat_s: int = 0, vhost: str = "/"
) -> tuple[RawAmqp, commands.Connection.Start, commands.Connection.Tune]:
    """Handshake by hand up to connection.open (whose answer the caller reads). The client
    takes the server's channel_max unless told otherwise: RabbitMQ hangs up on a tune-ok
    asking for more than it offered (0 means unlimited)."""
    raw = RawAmqp(url)
    raw.send(PROTOCOL_HEADER)
    start = raw.expect(commands.Connection.Start)
    raw.send_frame(
        commands.Connection.StartOk(
            client_properties={"product": "firth-interop-raw"},
            mechanism="PLAIN",
            response="\0guest\0guest",
            locale="en_US",
        )
    )
    tune = raw.expect(commands.Connection.Tune)
    raw.send_frame(
        commands.Connection.TuneOk(
            channel_max=tune.channel_max if channel_max is None else channel_max,
            frame_max=tune.frame_max,
            heartbeat=heartbeat_s,
        )
    )
    raw.send_frame(commands.Connection.Open(virtual_host=vhost))
    return raw, start, tune


def test_server_offers_plain_and_amqplain_with_rabbitmq_identity(amqp_url: str) -> None:
    raw, start, tune = negotiate(amqp_url)
    raw.expect(commands.Connection.OpenOk)
    assert {"PLAIN", "AMQPLAIN"} <= set(start.mechanisms.split())
    assert "en_US" in start.locales.split()
    assert (start.version_major, start.version_minor) == (0, 9)
    assert start.server_properties["product"] == "RabbitMQ"
    assert tune.frame_max >= 4096 and tune.channel_max > 0


def test_amqplain_login_with_kombu(amqp_url: str, name: Name) -> None:
    with kombu.Connection(amqp_url, login_method="AMQPLAIN", connect_timeout=10) as connection:
        queue = kombu.Queue(name("q"), routing_key=name("q"), auto_delete=False)
        with connection.SimpleQueue(queue) as simple:
            simple.put("over AMQPLAIN")
            message = simple.get(block=True, timeout=10)
            assert message.payload == "over AMQPLAIN"
            message.ack()


def test_wrong_password_is_refused_with_403(amqp_url: str) -> None:
    params = parameters(amqp_url, credentials=pika.PlainCredentials("guest", "wrong"))
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as refused:
        pika.BlockingConnection(params)
    assert "403" in str(refused.value) or "ACCESS_REFUSED" in str(refused.value)
    assert client_works(amqp_url)


def test_unknown_virtual_host_is_refused(amqp_url: str) -> None:
    raw, _, _ = negotiate(amqp_url, vhost="/firth-no-such-vhost")
    assert raw.closed_or_close() in (530, None)  # RabbitMQ 3.10 just hangs up
    assert client_works(amqp_url)


def test_small_frame_max_splits_large_bodies(amqp_url: str, name: Name) -> None:
    connection = pika.BlockingConnection(parameters(amqp_url, frame_max=4096))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        queue = channel.queue_declare(name("q"), exclusive=True).method.queue
        body = bytes(range(256)) * 400  # 100 KiB: 26 body frames each way
        channel.basic_publish("", queue, body)
        assert wait_get(channel, queue)[2] == body
    finally:
        connection.close()


def test_channel_above_negotiated_channel_max(amqp_url: str, target: str) -> None:
    """RabbitMQ 3.10 only enforces its own limit (2047) and opens a channel above the
    negotiated channel_max; Firth holds the client to what it negotiated (504)."""
    raw, _, _ = negotiate(amqp_url, channel_max=2)
    raw.expect(commands.Connection.OpenOk)
    raw.open_channel(2)
    raw.send_frame(commands.Channel.Open(), 3)
    if target == "rabbitmq":
        raw.expect(commands.Channel.OpenOk)
    else:
        assert raw.expect_connection_close().reply_code == 504


def test_server_sends_heartbeats(amqp_url: str) -> None:
    raw, _, _ = negotiate(amqp_url, heartbeat_s=1)
    raw.expect(commands.Connection.OpenOk)
    raw.sock.settimeout(0.25)
    beats: list[float] = []
    started = time.monotonic()
    while len(beats) < 3:
        raw.send_frame(heartbeat.Heartbeat())  # ours, so the server keeps the connection
        try:
            got = raw.read_frame()
        except TimeoutError:
            got = (0, None)
        assert got is not None, "the server closed a connection that was sending heartbeats"
        if isinstance(got[1], heartbeat.Heartbeat):
            beats.append(time.monotonic() - started)
        assert time.monotonic() - started < 5, f"only {len(beats)} heartbeats in 5 s"


def test_silent_client_is_disconnected(amqp_url: str) -> None:
    """A client that negotiated 1 s heartbeats and then sends nothing is dropped after a few
    missed beats (the server may or may not say connection.close first)."""
    raw, _, _ = negotiate(amqp_url, heartbeat_s=1)
    raw.expect(commands.Connection.OpenOk)
    started = time.monotonic()
    while (got := raw.read_frame()) is not None:
        if isinstance(got[1], commands.Connection.Close):
            break
        assert time.monotonic() - started < 15, "still connected after 15 missed heartbeats"
    assert time.monotonic() - started < 15
    assert client_works(amqp_url)


def test_pika_connection_with_heartbeats_stays_open(amqp_url: str) -> None:
    connection = pika.BlockingConnection(parameters(amqp_url, heartbeat=1))
    try:
        deadline = time.monotonic() + 3.5  # three heartbeat intervals and a half of idling
        while time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.1)
        assert connection.is_open
        connection.channel().close()
    finally:
        connection.close()
