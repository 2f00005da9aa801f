"""Frame codec: golden frames, whole / byte-at-a-time / trailing data, limits, body splitting."""

from __future__ import annotations

import pika.frame
import pika.spec
import pytest

from firth.amqp.protocol import AmqpConnectionError, BasicProperties, ReplyCode
from firth.amqp.protocol.frames import (
    HEARTBEAT_FRAME,
    Frame,
    encode_content,
    encode_frame,
    encode_method_frame,
    parse_frame,
)
from firth.amqp.protocol.methods import BasicAck, BasicPublish

GOLDEN_ACK_FRAME = (
    b"\x01"  # frame type 1: method
    b"\x00\x05"  # channel 5
    b"\x00\x00\x00\x0d"  # payload size 13
    b"\x00\x3c\x00\x50"  # basic.ack (60, 80)
    b"\x00\x00\x00\x00\x00\x00\x00\x2a"  # delivery tag 42
    b"\x01"  # multiple
    b"\xce"  # frame-end
)


def test_golden_method_frame() -> None:
    assert encode_method_frame(5, BasicAck(42, True)) == GOLDEN_ACK_FRAME
    parsed = parse_frame(GOLDEN_ACK_FRAME, 0, 4096)
    assert parsed == (Frame(1, 5, GOLDEN_ACK_FRAME[7:-1]), len(GOLDEN_ACK_FRAME))


def test_heartbeat_frame_bytes() -> None:
    assert encode_frame(8, 0, b"") == HEARTBEAT_FRAME
    assert parse_frame(HEARTBEAT_FRAME, 0, 4096) == (Frame(8, 0, b""), 8)


def test_incomplete_frames_need_more_data_at_every_cut() -> None:
    for cut in range(len(GOLDEN_ACK_FRAME)):
        assert parse_frame(GOLDEN_ACK_FRAME[:cut], 0, 4096) is None


def test_trailing_data_is_left_for_the_next_frame() -> None:
    stream = GOLDEN_ACK_FRAME + HEARTBEAT_FRAME + b"\x01\x00"
    first = parse_frame(stream, 0, 4096)
    assert first is not None
    second = parse_frame(stream, first[1], 4096)
    assert second is not None and second[0].type == 8
    assert parse_frame(stream, second[1], 4096) is None


def test_bad_frame_end_is_a_frame_error() -> None:
    with pytest.raises(AmqpConnectionError) as caught:
        parse_frame(GOLDEN_ACK_FRAME[:-1] + b"\x00", 0, 4096)
    assert caught.value.reply_code is ReplyCode.FRAME_ERROR


def test_unknown_frame_type_is_a_frame_error() -> None:
    with pytest.raises(AmqpConnectionError) as caught:
        parse_frame(b"\x04" + GOLDEN_ACK_FRAME[1:], 0, 4096)
    assert caught.value.reply_code is ReplyCode.FRAME_ERROR


def test_oversized_frame_is_refused_from_its_header_alone() -> None:
    header_only = b"\x03\x00\x01\x7f\xff\xff\xff"  # body frame claiming 2 GiB
    with pytest.raises(AmqpConnectionError) as caught:
        parse_frame(header_only, 0, 131072)
    assert caught.value.reply_code is ReplyCode.FRAME_ERROR
    exactly = encode_frame(3, 1, b"x" * (4096 - 8))
    assert parse_frame(exactly, 0, 4096) is not None
    with pytest.raises(AmqpConnectionError):
        parse_frame(encode_frame(3, 1, b"x" * (4096 - 7)), 0, 4096)


@pytest.mark.parametrize("size", [0, 1, 4088, 4089, 10_000, 3 * 4088])
def test_content_bodies_split_to_frame_max_and_read_back_by_pika(size: int) -> None:
    body = bytes(range(256)) * (size // 256) + bytes(size % 256)
    props = BasicProperties(content_type="application/octet-stream", delivery_mode=1)
    data = encode_content(3, BasicPublish("ex", "rk").encode(), props, body, 4096)
    frames = []
    offset = 0
    while offset < len(data):
        consumed, frame = pika.frame.decode_frame(data[offset:])
        assert 0 < consumed <= 4096
        frames.append(frame)
        offset += consumed
    assert isinstance(frames[0].method, pika.spec.Basic.Publish)
    assert frames[1].body_size == size
    assert frames[1].properties.content_type == "application/octet-stream"
    assert b"".join(f.fragment for f in frames[2:]) == body
    assert len(frames) == 2 + -(-size // 4088)
