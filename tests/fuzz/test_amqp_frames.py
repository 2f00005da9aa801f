"""Fuzz the AMQP decoder: random and mutated bytes give events or our protocol errors, nothing else.

The invariant (h11's fuzzer has the same one): whatever arrives, ``AmqpConnection`` either
produces events or raises an ``AmqpError`` carrying a reply code; never IndexError, struct.error,
RecursionError or a hang. After an error the connection is closed the way the server would close
it and the rest of the input is fed too, so the closing states are fuzzed as well.
"""

from __future__ import annotations

import pika.frame
import pika.spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firth.amqp.protocol import (
    AmqpChannelError,
    AmqpConnection,
    AmqpError,
    ProtocolHeaderError,
    ReplyCode,
)
from firth.amqp.protocol.tables import decode_table
from tests.amqp.amqp_peer import content, handshake_bytes, method

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid_session() -> bytes:
    return b"".join(
        (
            handshake_bytes(frame_max=4096),
            method(1, pika.spec.Channel.Open()),
            method(1, pika.spec.Basic.Qos(0, 10)),
            method(1, pika.spec.Queue.Declare(queue="q", arguments={"x-max-length": 5})),
            content(
                1,
                pika.spec.Basic.Publish(exchange="", routing_key="q"),
                b"payload" * 1000,
                frame_max=4096,
                headers={"nested": {"list": [1, "a", {"deep": True}]}},
                delivery_mode=2,
            ),
            method(1, pika.spec.Basic.Ack(delivery_tag=1, multiple=True)),
            pika.frame.Heartbeat().marshal(),
            method(1, pika.spec.Channel.Close(200, "bye", 0, 0)),
            method(0, pika.spec.Connection.Close(200, "bye", 0, 0)),
        )
    )


VALID = _valid_session()
HEADER_LEN = 8


def drive(data: bytes, chunks: list[int]) -> None:
    """Feed ``data`` in chunks of the given sizes; answer errors like the server would."""
    conn = AmqpConnection(max_message_size=1 << 20)
    position = 0
    sizes = iter(chunks)
    while position < len(data) and not conn.closed:
        size = next(sizes, len(data))
        conn.receive_data(data[position : position + max(size, 1)])
        position += max(size, 1)
        _drain(conn)
    conn.data_to_send()


def _drain(conn: AmqpConnection) -> None:
    for _ in range(10_000):
        try:
            if conn.next_event() is None:
                return
        except ProtocolHeaderError:
            assert conn.closed
            return
        except AmqpChannelError as error:
            assert isinstance(error.reply_code, ReplyCode)
            conn.close_channel(error)
        except AmqpError as error:
            assert isinstance(error.reply_code, ReplyCode)
            conn.close(error)
    raise AssertionError("decoder did not converge")


@SETTINGS
@given(st.binary(max_size=2000), st.lists(st.integers(1, 64), max_size=50))
def test_random_bytes_after_a_valid_handshake(noise: bytes, chunks: list[int]) -> None:
    drive(handshake_bytes() + noise, chunks)


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_from_the_first_byte(noise: bytes) -> None:
    drive(noise, [])


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(VALID)
    for _ in range(draw(st.integers(1, 8))):
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate"]))
        at = draw(st.integers(HEADER_LEN, len(data) - 1))
        if action == "flip":
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif action == "truncate":
            del data[at:]
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        if len(data) <= HEADER_LEN + 1:
            break
    return bytes(data)


@SETTINGS
@given(mutated(), st.lists(st.integers(1, 512), max_size=40))
def test_mutated_valid_sessions(data: bytes, chunks: list[int]) -> None:
    drive(data, chunks)


def test_the_unmutated_session_is_clean() -> None:
    conn = AmqpConnection()
    conn.receive_data(VALID)
    events = list(conn.events())
    assert conn.closed
    assert [type(e).__name__ for e in events] == [
        "ConnectionOpened",
        "ChannelOpened",
        "MethodFrame",
        "MethodFrame",
        "Message",
        "MethodFrame",
        "Heartbeat",
        "ChannelClosed",
        "ConnectionClosed",
    ]


@SETTINGS
@given(st.binary(max_size=500))
def test_field_tables_from_random_bytes(raw: bytes) -> None:
    try:
        decode_table(raw)
        decode_table(raw, typed=True)
    except AmqpError as error:
        assert error.reply_code is ReplyCode.SYNTAX_ERROR
