"""FrameReader: whole, split at every byte, trailing data, large frames, bad sizes."""

from __future__ import annotations

import struct

import pytest

from firth.kafka.protocol.errors import FrameError, ProtocolError
from firth.kafka.protocol.framing import LARGE_FRAME, FrameReader, frame


def drain(reader: FrameReader) -> list[bytes]:
    frames = []
    while (got := reader.next_frame()) is not None:
        frames.append(bytes(got))
    return frames


PAYLOADS = [b"", b"a", b"hello world", bytes(range(256)) * 3]
STREAM = b"".join(frame(p) for p in PAYLOADS)


def test_whole_stream_in_one_feed_yields_every_frame_in_order() -> None:
    reader = FrameReader()
    reader.feed(STREAM)
    assert drain(reader) == PAYLOADS
    assert reader.buffered_bytes == 0


def test_stream_fed_one_byte_at_a_time_yields_the_same_frames() -> None:
    reader = FrameReader()
    frames = []
    for i in range(len(STREAM)):
        reader.feed(STREAM[i : i + 1])
        frames.extend(drain(reader))
    assert frames == PAYLOADS


@pytest.mark.parametrize("split", range(1, len(STREAM)))
def test_stream_split_at_any_point_yields_the_same_frames(split: int) -> None:
    reader = FrameReader()
    reader.feed(STREAM[:split])
    frames = drain(reader)
    reader.feed(STREAM[split:])
    frames.extend(drain(reader))
    assert frames == PAYLOADS


def test_trailing_partial_frame_stays_buffered_until_complete() -> None:
    reader = FrameReader()
    tail = frame(b"next-frame")
    reader.feed(frame(b"first") + tail[:7])
    assert drain(reader) == [b"first"]
    assert reader.buffered_bytes == 7
    reader.feed(tail[7:])
    assert drain(reader) == [b"next-frame"]


def test_large_frame_fed_in_chunks_is_assembled_exactly() -> None:
    body = bytes(range(256)) * ((LARGE_FRAME * 3) // 256)
    data = frame(body) + frame(b"after")
    reader = FrameReader()
    frames = []
    for start in range(0, len(data), 65536):
        reader.feed(data[start : start + 65536])
        frames.extend(drain(reader))
    assert frames == [body, b"after"]
    assert reader.buffered_bytes == 0


def test_large_frame_body_is_not_copied_per_feed() -> None:
    body = b"x" * (LARGE_FRAME * 2)
    reader = FrameReader()
    reader.feed(frame(body)[:100])
    assert reader.next_frame() is None
    # Once the prefix is seen, later feeds go straight into a buffer of the frame's size.
    assert reader._large is not None and len(reader._large) == len(body)
    reader.feed(body[96:])
    got = reader.next_frame()
    assert got is not None and got.nbytes == len(body) and bytes(got) == body


def test_many_small_frames_in_one_feed() -> None:
    payloads = [struct.pack(">i", i) * (i % 7) for i in range(5000)]
    reader = FrameReader()
    reader.feed(b"".join(frame(p) for p in payloads))
    assert drain(reader) == payloads


def test_negative_size_raises_frame_error() -> None:
    reader = FrameReader()
    reader.feed(struct.pack(">i", -1) + b"junk")
    with pytest.raises(FrameError):
        reader.next_frame()


def test_oversized_frame_is_rejected_from_its_prefix_alone() -> None:
    reader = FrameReader(max_frame_bytes=1024)
    reader.feed(struct.pack(">i", 1025))
    with pytest.raises(FrameError) as raised:
        reader.next_frame()
    assert isinstance(raised.value, ProtocolError)
    assert reader.buffered_bytes == 0


def test_frame_of_exactly_the_limit_is_accepted() -> None:
    reader = FrameReader(max_frame_bytes=16)
    reader.feed(frame(b"y" * 16))
    assert drain(reader) == [b"y" * 16]


def test_default_limit_is_kafkas_socket_request_max_bytes() -> None:
    reader = FrameReader()
    reader.feed(struct.pack(">i", 104857600 + 1))
    with pytest.raises(FrameError):
        reader.next_frame()


def test_error_is_sticky_because_the_stream_is_misaligned() -> None:
    reader = FrameReader()
    reader.feed(struct.pack(">i", -5))
    with pytest.raises(FrameError):
        reader.next_frame()
    reader.feed(frame(b"valid"))
    with pytest.raises(FrameError):
        reader.next_frame()
