"""Content headers: golden bytes, flags, round trips, raw pass-through and pika interop."""

from __future__ import annotations

import pika.frame
import pika.spec
import pytest

from firth.amqp.protocol import AmqpConnectionError, BasicProperties, ContentHeader, ReplyCode
from firth.amqp.protocol.properties import (
    PROPERTY_SPEC,
    decode_properties,
    encode_content_header,
    encode_properties,
)
from firth.amqp.protocol.tables import Typed, encode_table

GOLDEN_HEADER = (
    b"\x00\x3c"  # class 60 (basic)
    b"\x00\x00"  # weight, always 0
    b"\x00\x00\x00\x00\x00\x00\x00\x05"  # body size 5
    b"\x90\x00"  # flags: bit 15 content_type, bit 12 delivery_mode
    b"\x0atext/plain"  # content_type shortstr
    b"\x02"  # delivery_mode octet: 2 = persistent
)


def test_golden_content_header() -> None:
    props = BasicProperties(content_type="text/plain", delivery_mode=2)
    assert encode_content_header(5, props) == GOLDEN_HEADER
    header = ContentHeader.parse(GOLDEN_HEADER)
    assert (header.class_id, header.body_size) == (60, 5)
    assert header.properties == props and header.properties.persistent
    assert header.properties_bytes == GOLDEN_HEADER[12:]


def _all_properties() -> BasicProperties:
    return BasicProperties(
        content_type="application/json",
        content_encoding="utf-8",
        headers={"x-retries": 3, "trace": {"id": "abc"}, "list": [1, "two"]},
        delivery_mode=2,
        priority=9,
        correlation_id="corr-1",
        reply_to="amq.rabbitmq.reply-to",
        expiration="60000",
        message_id="m-1",
        timestamp=1_764_158_400,
        type="event",
        user_id="guest",
        app_id="firth-tests",
        cluster_id="c",
    )


def test_every_property_round_trips() -> None:
    props = _all_properties()
    encoded = encode_properties(props)
    assert encoded[:2] == b"\xff\xfc"  # all 14 flags, bits 15..2
    assert decode_properties(encoded, 0, len(encoded)) == props
    assert len(PROPERTY_SPEC) == 14


@pytest.mark.parametrize("index", range(14))
def test_each_single_property_sets_its_own_flag(index: int) -> None:
    name, _ = PROPERTY_SPEC[index]
    value = getattr(_all_properties(), name)
    encoded = encode_properties(BasicProperties(**{name: value}))
    assert int.from_bytes(encoded[:2], "big") == 1 << (15 - index)
    assert getattr(decode_properties(encoded, 0, len(encoded)), name) == value


def test_headers_pass_through_unchanged_in_the_raw_payload() -> None:
    raw_headers = encode_table({"n": Typed("s", 1), "f": Typed("f", 0.5)})
    payload = b"\x00\x3c\x00\x00" + (0).to_bytes(8, "big") + b"\x20\x00" + raw_headers
    header = ContentHeader.parse(payload)
    assert header.properties.headers == {"n": 1, "f": 0.5}
    assert header.properties_bytes == b"\x20\x00" + raw_headers
    typed = decode_properties(payload, 12, len(payload), typed_headers=True)
    assert typed.headers == {"n": Typed("s", 1), "f": Typed("f", 0.5)}


@pytest.mark.parametrize(
    "raw",
    [
        b"\x80",  # flags cut short
        b"\x80\x00\x05abc",  # shortstr overruns
        b"\x10\x00",  # delivery_mode flagged but absent
        b"\x00\x40" + b"\x00" * 7,  # timestamp truncated
        b"\x00\x01",  # continuation flag: the basic class has only one flags word
        b"\x00\x00trailing",  # bytes after the last property
    ],
)
def test_malformed_properties_are_syntax_errors(raw: bytes) -> None:
    with pytest.raises(AmqpConnectionError) as caught:
        decode_properties(raw, 0, len(raw))
    assert caught.value.reply_code is ReplyCode.SYNTAX_ERROR


def test_content_header_shorter_than_fixed_part_is_a_syntax_error() -> None:
    with pytest.raises(AmqpConnectionError):
        ContentHeader.parse(b"\x00\x3c\x00\x00")


def test_pika_header_frame_decodes_here() -> None:
    theirs = pika.spec.BasicProperties(
        content_type="text/plain",
        headers={"a": 1, "b": "x"},
        delivery_mode=2,
        priority=3,
        correlation_id="c",
        reply_to="r",
        expiration="100",
        message_id="m",
        timestamp=12345,
        type="t",
        user_id="u",
        app_id="a",
    )
    frame = pika.frame.Header(1, 42, theirs).marshal()
    header = ContentHeader.parse(frame[7:-1])
    assert header.body_size == 42
    props = header.properties
    assert props.headers == {"a": 1, "b": "x"} and props.timestamp == 12345
    for name in ("content_type", "delivery_mode", "priority", "correlation_id", "reply_to"):
        assert getattr(props, name) == getattr(theirs, name)


def test_our_header_decodes_in_pika() -> None:
    props = _all_properties()
    payload = encode_content_header(7, props)
    theirs = pika.spec.BasicProperties()
    theirs.decode(payload, 12)
    for name, _ in PROPERTY_SPEC:
        assert getattr(theirs, name) == getattr(props, name), name
