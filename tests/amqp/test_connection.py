"""The sans-IO connection: negotiation, channels, content assembly, errors with reply codes."""

from __future__ import annotations

import struct

import pika.frame
import pika.spec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firth.amqp.protocol import (
    PROTOCOL_HEADER,
    AmqpChannelError,
    AmqpConnection,
    AmqpConnectionError,
    BasicProperties,
    ChannelClosed,
    ChannelOpened,
    ConnectionClosed,
    ConnectionOpened,
    Heartbeat,
    Message,
    MethodFrame,
    ProtocolHeaderError,
    ReplyCode,
    State,
)
from firth.amqp.protocol.methods import BasicAck, BasicGetOk, BasicPublish
from firth.amqp.protocol.negotiation import RABBITMQ_VERSION, Credentials
from firth.amqp.protocol.tables import encode_table
from tests.amqp.amqp_peer import (
    content,
    decode_all,
    feed,
    feed_bytewise,
    handshake_bytes,
    method,
    methods_of,
    opened,
)

# -- negotiation -------------------------------------------------------------------------------


def test_header_gets_connection_start_with_rabbitmq_properties() -> None:
    conn = AmqpConnection(capabilities={"publisher_confirms": True})
    assert feed(conn, PROTOCOL_HEADER) == []
    (start,) = methods_of(conn.data_to_send())
    assert isinstance(start, pika.spec.Connection.Start)
    assert (start.version_major, start.version_minor) == (0, 9)
    assert start.server_properties["product"] == "RabbitMQ"
    assert start.server_properties["version"] == RABBITMQ_VERSION
    assert start.server_properties["capabilities"] == {"publisher_confirms": True}
    assert set(start.mechanisms.split()) == {b"PLAIN", b"AMQPLAIN"}


@pytest.mark.parametrize("feeder", [feed, feed_bytewise], ids=["whole", "bytewise"])
def test_full_handshake(feeder) -> None:  # type: ignore[no-untyped-def]
    conn = AmqpConnection(frame_max=65536)
    events = feeder(conn, handshake_bytes(frame_max=32768, heartbeat=30))
    assert events == [ConnectionOpened("/", "guest", {"product": "test"}, 2047, 32768, 30)]
    start, tune, open_ok = methods_of(conn.data_to_send())
    assert isinstance(start, pika.spec.Connection.Start)
    assert (tune.channel_max, tune.frame_max, tune.heartbeat) == (2047, 65536, 60)
    assert isinstance(open_ok, pika.spec.Connection.OpenOk)
    assert conn.state is State.OPEN and conn.frame_max == 32768


def test_tune_ok_zero_means_server_values() -> None:
    conn = AmqpConnection()
    feed(conn, handshake_bytes(frame_max=0, heartbeat=0))
    assert conn.frame_max == conn.server_frame_max and conn.heartbeat == 0


def test_amqplain_credentials() -> None:
    seen: list[Credentials] = []

    def check(credentials: Credentials) -> bool:
        seen.append(credentials)
        return True

    conn = AmqpConnection(authenticate=check)
    response = encode_table({"LOGIN": "alice", "PASSWORD": "s3cret"})[4:]  # no size prefix
    feed(conn, PROTOCOL_HEADER)
    feed(conn, method(0, pika.spec.Connection.StartOk({}, "AMQPLAIN", response)))
    assert seen == [Credentials("AMQPLAIN", "alice", "s3cret")]
    assert conn.state is State.AWAIT_TUNE_OK


@pytest.mark.parametrize(
    ("mechanism", "response"),
    [
        ("PLAIN", b"\x00guest\x00wrong"),
        ("PLAIN", b"garbage"),
        ("EXTERNAL", b""),
        ("AMQPLAIN", b"\xff"),
    ],
)
def test_refused_login_is_access_refused(mechanism: str, response: bytes) -> None:
    conn = AmqpConnection()
    conn.receive_data(
        PROTOCOL_HEADER + method(0, pika.spec.Connection.StartOk({}, mechanism, response))
    )
    with pytest.raises(AmqpConnectionError) as caught:
        list(conn.events())
    assert caught.value.reply_code is ReplyCode.ACCESS_REFUSED


@pytest.mark.parametrize(
    "header",
    [b"AMQP\x00\x00\x09\x00", b"AMQP\x01\x01\x00\x0a", b"GET / HTTP/1.1\r\n", b"\x16\x03\x01"],
)
def test_wrong_protocol_header_is_answered_with_ours_then_closed(header: bytes) -> None:
    conn = AmqpConnection()
    conn.receive_data(header)
    with pytest.raises(ProtocolHeaderError):
        list(conn.events())
    assert conn.data_to_send() == PROTOCOL_HEADER
    assert conn.closed
    conn.receive_data(b"more")
    assert list(conn.events()) == []


def test_partial_header_waits() -> None:
    conn = AmqpConnection()
    assert feed(conn, b"AMQP\x00") == [] and not conn.closed and conn.data_to_send() == b""


def test_unknown_vhost_is_not_allowed() -> None:
    conn = AmqpConnection()
    conn.receive_data(handshake_bytes(vhost="/other"))
    with pytest.raises(AmqpConnectionError) as caught:
        list(conn.events())
    assert caught.value.reply_code is ReplyCode.NOT_ALLOWED


def test_tune_ok_above_server_frame_max_is_not_allowed() -> None:
    conn = AmqpConnection(frame_max=8192)
    conn.receive_data(handshake_bytes(frame_max=16384))
    with pytest.raises(AmqpConnectionError) as caught:
        list(conn.events())
    assert caught.value.reply_code is ReplyCode.NOT_ALLOWED


def test_open_before_tune_ok_is_command_invalid() -> None:
    conn = AmqpConnection()
    conn.receive_data(
        PROTOCOL_HEADER
        + method(0, pika.spec.Connection.StartOk({}, "PLAIN", b"\x00guest\x00guest"))
        + method(0, pika.spec.Connection.Open("/"))
    )
    with pytest.raises(AmqpConnectionError) as caught:
        list(conn.events())
    assert caught.value.reply_code is ReplyCode.COMMAND_INVALID


def test_frames_before_negotiation_limit_to_4096_bytes() -> None:
    conn = AmqpConnection()
    big = method(
        0, pika.spec.Connection.StartOk({"pad": "x" * 5000}, "PLAIN", b"\x00guest\x00guest")
    )
    conn.receive_data(PROTOCOL_HEADER + big)
    with pytest.raises(AmqpConnectionError) as caught:
        list(conn.events())
    assert caught.value.reply_code is ReplyCode.FRAME_ERROR


# -- channels and methods ----------------------------------------------------------------------


def test_channel_open_and_methods_become_events() -> None:
    conn = opened(channels=())
    events = feed(conn, method(1, pika.spec.Channel.Open()) + method(1, pika.spec.Basic.Qos(0, 10)))
    assert events[0] == ChannelOpened(1)
    assert isinstance(events[1], MethodFrame) and events[1].channel == 1
    assert events[1].method.prefetch_count == 10
    (open_ok,) = methods_of(conn.data_to_send())
    assert isinstance(open_ok, pika.spec.Channel.OpenOk)


def test_peer_closes_channel() -> None:
    conn = opened()
    events = feed(conn, method(1, pika.spec.Channel.Close(200, "bye", 0, 0)))
    assert events == [ChannelClosed(1, 200, "bye", by_peer=True)]
    (close_ok,) = methods_of(conn.data_to_send())
    assert isinstance(close_ok, pika.spec.Channel.CloseOk)
    assert 1 not in conn.channels


def test_server_closes_channel_and_discards_until_close_ok() -> None:
    conn = opened(channels=(1, 2))
    conn.close_channel(AmqpChannelError(ReplyCode.NOT_FOUND, "no queue 'q'", 50, 10, channel=1))
    (close,) = methods_of(conn.data_to_send())
    assert (close.reply_code, close.reply_text) == (404, "NOT_FOUND - no queue 'q'")
    assert (close.class_id, close.method_id) == (50, 10)
    ignored = feed(
        conn, content(1, pika.spec.Basic.Publish(exchange="", routing_key="q"), b"dropped")
    )
    assert ignored == []
    other = feed(conn, method(2, pika.spec.Basic.Qos(0, 1)))
    assert len(other) == 1 and other[0].channel == 2  # other channels carry on
    assert feed(conn, method(1, pika.spec.Channel.CloseOk())) == [ChannelClosed(1, 0, "", False)]
    assert feed(conn, method(1, pika.spec.Channel.Open())) == [ChannelOpened(1)]


def test_method_on_unopened_channel_is_channel_error() -> None:
    conn = opened(channels=())
    conn.receive_data(method(3, pika.spec.Basic.Qos(0, 1)))
    with pytest.raises(AmqpConnectionError) as caught:
        list(conn.events())
    assert caught.value.reply_code is ReplyCode.CHANNEL_ERROR


def test_second_channel_open_is_channel_error() -> None:
    conn = opened()
    conn.receive_data(method(1, pika.spec.Channel.Open()))
    with pytest.raises(AmqpConnectionError) as caught:
        list(conn.events())
    assert caught.value.reply_code is ReplyCode.CHANNEL_ERROR


def test_channel_above_channel_max_is_refused() -> None:
    conn = opened(channels=(), channel_max=10)
    conn.receive_data(method(11, pika.spec.Channel.Open()))
    with pytest.raises(AmqpConnectionError) as caught:
        list(conn.events())
    assert caught.value.reply_code is ReplyCode.CHANNEL_ERROR


def test_connection_method_on_a_channel_is_command_invalid() -> None:
    conn = opened()
    conn.receive_data(method(1, pika.spec.Connection.Open("/")))
    with pytest.raises(AmqpConnectionError) as caught:
        list(conn.events())
    assert caught.value.reply_code is ReplyCode.COMMAND_INVALID


def test_heartbeats() -> None:
    conn = opened()
    assert feed(conn, pika.frame.Heartbeat().marshal()) == [Heartbeat()]
    conn.send_heartbeat()
    assert isinstance(decode_all(conn.data_to_send())[0], pika.frame.Heartbeat)
    conn.receive_data(b"\x08\x00\x01\x00\x00\x00\x00\xce")
    with pytest.raises(AmqpConnectionError) as caught:
        list(conn.events())
    assert caught.value.reply_code is ReplyCode.FRAME_ERROR


# -- content -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("feeder", "size"),
    [
        (feed, 0),
        (feed, 5),
        (feed, 131064),
        (feed, 300_000),
        (feed_bytewise, 0),
        (feed_bytewise, 700),
    ],
    ids=[
        "whole-empty",
        "whole-small",
        "whole-one-frame",
        "whole-three-frames",
        "bytewise-empty",
        "bytewise-small",
    ],
)
def test_content_assembled_into_one_message(feeder, size: int) -> None:  # type: ignore[no-untyped-def]
    conn = opened()
    body = bytes(i % 251 for i in range(size))
    publish = pika.spec.Basic.Publish(exchange="ex", routing_key="rk")
    data = content(1, publish, body, frame_max=4096, headers={"h": 1}, delivery_mode=2)
    (message,) = feeder(conn, data)
    assert isinstance(message, Message)
    assert message.method == BasicPublish("ex", "rk")
    assert message.body == body
    assert message.properties.headers == {"h": 1} and message.properties.persistent


def test_content_interleaved_across_channels() -> None:
    conn = opened(channels=(1, 2))
    a = content(
        1, pika.spec.Basic.Publish(exchange="", routing_key="a"), b"A" * 10000, frame_max=4096
    )
    b = content(
        2, pika.spec.Basic.Publish(exchange="", routing_key="b"), b"B" * 10000, frame_max=4096
    )
    frames_a = _split_frames(a)
    frames_b = _split_frames(b)
    mixed = b"".join(x + y for x, y in zip(frames_a, frames_b, strict=True))
    messages = feed(conn, mixed)
    assert sorted((m.channel, m.body) for m in messages) == [(1, b"A" * 10000), (2, b"B" * 10000)]


def _split_frames(data: bytes) -> list[bytes]:
    frames = []
    while data:
        size = struct.unpack_from(">I", data, 3)[0] + 8
        frames.append(data[:size])
        data = data[size:]
    return frames


def test_trailing_partial_frame_is_kept_for_later() -> None:
    conn = opened()
    data = method(1, pika.spec.Basic.Qos(0, 1)) + method(1, pika.spec.Basic.Qos(0, 2))
    assert len(feed(conn, data[:-3])) == 1
    assert len(feed(conn, data[-3:])) == 1


def test_content_header_without_method_is_unexpected_frame() -> None:
    conn = opened()
    conn.receive_data(pika.frame.Header(1, 3, pika.spec.BasicProperties()).marshal())
    with pytest.raises(AmqpConnectionError) as caught:
        list(conn.events())
    assert caught.value.reply_code is ReplyCode.UNEXPECTED_FRAME


def test_body_without_header_is_unexpected_frame() -> None:
    conn = opened()
    conn.receive_data(
        method(1, pika.spec.Basic.Publish(exchange="", routing_key="q"))
        + pika.frame.Body(1, b"x").marshal()
    )
    with pytest.raises(AmqpConnectionError) as caught:
        list(conn.events())
    assert caught.value.reply_code is ReplyCode.UNEXPECTED_FRAME


def test_method_while_content_expected_is_unexpected_frame() -> None:
    conn = opened()
    conn.receive_data(
        method(1, pika.spec.Basic.Publish(exchange="", routing_key="q"))
        + method(1, pika.spec.Basic.Qos(0, 1))
    )
    with pytest.raises(AmqpConnectionError) as caught:
        list(conn.events())
    assert caught.value.reply_code is ReplyCode.UNEXPECTED_FRAME


def test_body_longer_than_declared_is_frame_error() -> None:
    conn = opened()
    conn.receive_data(
        method(1, pika.spec.Basic.Publish(exchange="", routing_key="q"))
        + pika.frame.Header(1, 2, pika.spec.BasicProperties()).marshal()
        + pika.frame.Body(1, b"xyz").marshal()
    )
    with pytest.raises(AmqpConnectionError) as caught:
        list(conn.events())
    assert caught.value.reply_code is ReplyCode.FRAME_ERROR


def test_message_over_max_size_is_a_channel_error_and_its_body_is_dropped() -> None:
    conn = opened(max_message_size=100)
    conn.receive_data(content(1, pika.spec.Basic.Publish(exchange="", routing_key="q"), b"x" * 101))
    with pytest.raises(AmqpChannelError) as caught:
        list(conn.events())
    assert caught.value.reply_code is ReplyCode.PRECONDITION_FAILED and caught.value.channel == 1
    conn.close_channel(caught.value)
    assert list(conn.events()) == []  # the body frame was discarded
    (close,) = methods_of(conn.data_to_send())
    assert close.reply_code == 406


def test_frame_over_negotiated_frame_max_is_frame_error() -> None:
    conn = opened()
    assert conn.frame_max == 131072
    conn.receive_data(pika.frame.Body(1, b"x" * 131072).marshal())
    with pytest.raises(AmqpConnectionError) as caught:
        list(conn.events())
    assert caught.value.reply_code is ReplyCode.FRAME_ERROR


def test_events_before_an_error_are_delivered_first() -> None:
    conn = opened()
    conn.receive_data(method(1, pika.spec.Basic.Qos(0, 1)) + b"\x09garbage")
    events = conn.events()
    assert isinstance(next(events), MethodFrame)
    with pytest.raises(AmqpConnectionError):
        next(events)


# -- sending -----------------------------------------------------------------------------------


def test_send_deliver_splits_body_and_passes_raw_properties_through() -> None:
    conn = opened()
    publish = content(
        1, pika.spec.Basic.Publish(exchange="", routing_key="q"), b"p", headers={"x": 1}, priority=4
    )
    (message,) = feed(conn, publish)
    body = b"z" * 300_000
    conn.send_deliver(1, "ctag", 7, True, "", "q", message.header.properties_bytes, body)
    frames = decode_all(conn.data_to_send())
    deliver = frames[0].method
    assert (deliver.consumer_tag, deliver.delivery_tag, deliver.redelivered) == ("ctag", 7, True)
    assert frames[1].properties.headers == {"x": 1} and frames[1].properties.priority == 4
    assert b"".join(f.fragment for f in frames[2:]) == body
    assert all(len(f.fragment) <= conn.frame_max - 8 for f in frames[2:])


def test_send_content_with_properties_object() -> None:
    conn = opened()
    conn.send_content(1, BasicGetOk(1, False, "", "q", 0), BasicProperties(type="t"), b"body")
    frames = decode_all(conn.data_to_send())
    assert isinstance(frames[0].method, pika.spec.Basic.GetOk)
    assert frames[1].properties.type == "t" and frames[2].fragment == b"body"


def test_sending_on_a_channel_that_is_not_open_is_a_programming_error() -> None:
    conn = opened()
    with pytest.raises(ValueError):
        conn.send_method(9, BasicAck(1))


# -- closing -----------------------------------------------------------------------------------


def test_peer_closes_connection() -> None:
    conn = opened()
    events = feed(conn, method(0, pika.spec.Connection.Close(200, "bye", 0, 0)))
    assert events == [ConnectionClosed(200, "bye", by_peer=True)]
    (close_ok,) = methods_of(conn.data_to_send())
    assert isinstance(close_ok, pika.spec.Connection.CloseOk)
    assert conn.closed


def test_server_close_waits_for_close_ok_ignoring_other_frames() -> None:
    conn = opened()
    conn.close(AmqpConnectionError(ReplyCode.FRAME_ERROR, "bad frame"))
    (close,) = methods_of(conn.data_to_send())
    assert (close.reply_code, close.reply_text) == (501, "FRAME_ERROR - bad frame")
    assert (
        feed(conn, content(1, pika.spec.Basic.Publish(exchange="", routing_key="q"), b"late")) == []
    )
    assert feed(conn, method(0, pika.spec.Connection.CloseOk())) == [
        ConnectionClosed(0, "", by_peer=False)
    ]
    assert conn.closed


def test_close_crossing_peer_close_is_answered() -> None:
    conn = opened()
    conn.close()
    conn.data_to_send()
    events = feed(conn, method(0, pika.spec.Connection.Close(320, "forced", 0, 0)))
    assert events == [ConnectionClosed(320, "forced", by_peer=True)]
    assert isinstance(methods_of(conn.data_to_send())[0], pika.spec.Connection.CloseOk)


def test_a_whole_session_byte_by_byte_gives_the_same_events_as_whole() -> None:
    session = b"".join(
        (
            handshake_bytes(frame_max=4096),
            method(1, pika.spec.Channel.Open()),
            method(2, pika.spec.Channel.Open()),
            content(1, pika.spec.Basic.Publish(exchange="x", routing_key="k"), b"a" * 9000, 4096),
            method(2, pika.spec.Basic.Ack(delivery_tag=3)),
            pika.frame.Heartbeat().marshal(),
            method(1, pika.spec.Channel.Close(200, "bye", 0, 0)),
            method(0, pika.spec.Connection.Close(200, "bye", 0, 0)),
        )
    )
    whole_conn, bytewise_conn = AmqpConnection(), AmqpConnection()
    whole = feed(whole_conn, session)
    assert feed_bytewise(bytewise_conn, session) == whole
    assert whole_conn.data_to_send() == bytewise_conn.data_to_send()
    assert len(whole) == 8 and whole_conn.closed


# -- basic.publish: whole or split, with and without a publish sink -----------------------------


@given(
    bodies=st.lists(
        st.tuples(st.sampled_from([1, 2]), st.integers(0, 9000)), min_size=1, max_size=12
    ),
    cuts=st.lists(st.integers(1, 40000), max_size=10),
)
@settings(max_examples=60, deadline=None)
def test_publishes_fed_in_chunks_match_frame_by_frame(
    bodies: list[tuple[int, int]], cuts: list[int]
) -> None:
    """Publishes fed in arbitrary chunks (whole messages buffered together, or split between
    reads) or byte by byte: the same messages come out in the same order."""
    data = b"".join(
        content(
            channel,
            pika.spec.Basic.Publish(exchange="x", routing_key=f"k{index}"),
            bytes([index]) * size,
            frame_max=4096,
            message_id=str(index),
        )
        for index, (channel, size) in enumerate(bodies)
    )
    whole = opened(channels=(1, 2))
    expected = [
        (m.channel, m.method, m.header.payload, m.body)
        for m in feed_bytewise(opened(channels=(1, 2)), data)
    ]
    got = []
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        got += feed(whole, data[start:cut])
        start = max(start, cut)
    assert [(m.channel, m.method, m.header.payload, m.body) for m in got] == expected
    assert len(expected) == len(bodies)


@given(
    bodies=st.lists(
        st.tuples(st.sampled_from([1, 2]), st.integers(0, 9000), st.sampled_from([0, 1, 2])),
        min_size=1,
        max_size=12,
    ),
    cuts=st.lists(st.integers(1, 40000), max_size=10),
)
@settings(max_examples=60, deadline=None)
def test_publish_sink_gets_what_message_events_carry(
    bodies: list[tuple[int, int, int]], cuts: list[int]
) -> None:
    """With a publish sink on channel 1, its single-frame publishes go to the sink with the
    method's arguments, the raw properties and the body; everything else (channel 2, bodies
    over one frame, messages split across reads) still comes out as ``Message`` events. In
    order, and together the same messages as without a sink."""
    data = b"".join(
        content(
            channel,
            pika.spec.Basic.Publish(
                exchange="x" * (index % 2), routing_key=f"k{index}", mandatory=bool(bits & 1)
            ),
            bytes([index]) * size,
            frame_max=4096,
            message_id=str(index),
        )
        for index, (channel, size, bits) in enumerate(bodies)
    )
    expected = [
        (m.channel, m.method, m.header.properties_bytes, m.body)
        for m in feed_bytewise(opened(channels=(1, 2)), data)
    ]
    got: list[tuple[int, BasicPublish, bytes, bytes]] = []
    conn = opened(channels=(1, 2))

    def sink(exchange: str, routing_key: str, bits: int, props: bytes, body: bytes) -> None:
        assert isinstance(props, bytes) and isinstance(body, bytes)
        got.append((1, BasicPublish(exchange, routing_key, bool(bits & 1), False), props, body))

    conn.set_publish_sink(1, sink)
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        conn.receive_data(data[start:cut])
        while (event := conn.next_event()) is not None:
            assert isinstance(event, Message)
            got.append((event.channel, event.method, event.header.properties_bytes, event.body))
        start = max(start, cut)
    assert got == expected


def test_publish_sink_keeps_order_with_other_methods() -> None:
    conn = opened()
    seen: list[object] = []
    conn.set_publish_sink(1, lambda ex, rk, bits, props, body: seen.append(body))
    publish = pika.spec.Basic.Publish(exchange="", routing_key="q")
    data = (
        content(1, publish, b"one")
        + method(1, pika.spec.Basic.Ack(delivery_tag=7))
        + content(1, publish, b"two")
    )
    conn.receive_data(data)
    first = conn.next_event()
    assert seen == [b"one"]
    assert isinstance(first, MethodFrame) and first.method == BasicAck(7, False)
    assert conn.next_event() is None
    assert seen == [b"one", b"two"]


def test_publish_sink_error_comes_out_of_next_event_after_the_message() -> None:
    """What the sink raises is raised by ``next_event``; the message is consumed, and the
    next one is handled on the following call."""
    conn = opened()
    calls: list[bytes] = []

    def sink(exchange: str, routing_key: str, bits: int, props: bytes, body: bytes) -> None:
        calls.append(body)
        if body == b"bad":
            raise AmqpChannelError(ReplyCode.PRECONDITION_FAILED, "no", 60, 40, channel=1)

    conn.set_publish_sink(1, sink)
    publish = pika.spec.Basic.Publish(exchange="", routing_key="q")
    conn.receive_data(content(1, publish, b"bad") + content(1, publish, b"good"))
    with pytest.raises(AmqpChannelError):
        conn.next_event()
    assert conn.next_event() is None
    assert calls == [b"bad", b"good"]


def test_publish_with_bad_argument_length_is_a_syntax_error_with_a_sink_too() -> None:
    conn = opened()
    conn.set_publish_sink(1, lambda *args: pytest.fail("sink called"))
    payload = b"\x00\x3c\x00\x28\x00\x00\x00\x01q\x00\x00"  # one byte too many
    frame = struct.pack(">BHI", 1, 1, len(payload)) + payload + b"\xce"
    header = b"\x00\x3c\x00\x00" + struct.pack(">Q", 1) + b"\x00\x00"
    frame += struct.pack(">BHI", 2, 1, len(header)) + header + b"\xce"
    frame += struct.pack(">BHI", 3, 1, 1) + b"x\xce"
    conn.receive_data(frame)
    with pytest.raises(AmqpConnectionError) as caught:
        conn.next_event()
    assert caught.value.reply_code == ReplyCode.SYNTAX_ERROR


def test_publish_buffered_whole_keeps_the_content_header_as_sent() -> None:
    """A publish buffered whole (no sink on its channel) gives the content header payload as
    sent, weight included, the same as when fed byte by byte."""
    payload = b"\x00\x3c\x00\x28\x00\x00\x00\x01q\x00"
    data = struct.pack(">BHI", 1, 1, len(payload)) + payload + b"\xce"
    header = b"\x00\x3c\x00\x07" + struct.pack(">Q", 1) + b"\x00\x00"
    data += struct.pack(">BHI", 2, 1, len(header)) + header + b"\xce"
    data += struct.pack(">BHI", 3, 1, 1) + b"x\xce"
    conn = opened()
    conn.receive_data(data)
    whole = conn.next_event()
    assert isinstance(whole, Message)
    (bytewise,) = feed_bytewise(opened(), data)
    assert whole.header.payload == header == bytewise.header.payload
    assert (whole.method, whole.body) == (bytewise.method, bytewise.body)


def test_receive_data_accepts_bytearray_and_memoryview() -> None:
    conn = opened()
    data = content(1, pika.spec.Basic.Publish(exchange="", routing_key="q"), b"body")
    conn.receive_data(bytearray(data[:10]))
    conn.receive_data(memoryview(data)[10:])
    (message,) = list(conn.events())
    assert isinstance(message, Message) and message.body == b"body"


@pytest.mark.parametrize("size", [0, 10, 4088, 4089, 10000])
@pytest.mark.parametrize("props", [b"\x00\x00", b"\x10\x00\x02"])
def test_send_deliver_fast_path_writes_the_same_bytes(size: int, props: bytes) -> None:
    """A one-frame delivery is written straight into the output buffer; the bytes must be
    those of the general content encoder."""
    from firth.amqp.protocol.frames import encode_content
    from firth.amqp.protocol.methods import encode_deliver

    conn = opened()
    conn.frame_max = 4096
    body = bytes(i % 251 for i in range(size))
    conn.send_deliver(1, "ctag", 7, True, "ex", "rk", props, body)
    expected = encode_content(1, encode_deliver("ctag", 7, True, "ex", "rk"), props, body, 4096)
    assert conn.data_to_send() == expected
