"""validate_produce_records: each of Kafka's produce checks answers its own error code."""

from __future__ import annotations

import struct

import pytest

from firth.kafka.protocol.errors import ErrorCode, KafkaError
from firth.kafka.protocol.records import Record, build_batch
from firth.kafka.protocol.validation import validate_produce_records
from firth.wire.recordbatch import compute_crc

MAX = 1_048_588
GOOD = build_batch(
    [Record(0, 0, b"k", b"v", ()), Record(1, 1, None, b"w", ())], base_timestamp=1_700_000_000_000
)


def restamp(data: bytearray) -> bytes:
    struct.pack_into(">I", data, 17, compute_crc(data, 0, len(data)))
    return bytes(data)


def code_of(records: bytes | memoryview | None, max_bytes: int = MAX) -> ErrorCode:
    with pytest.raises(KafkaError) as raised:
        validate_produce_records(records, max_bytes)
    return raised.value.code


def test_a_valid_batch_returns_its_header() -> None:
    header = validate_produce_records(memoryview(GOOD), MAX)
    assert header.records_count == 2 and header.base_offset == 0


@pytest.mark.parametrize("records", [None, b"", b"\x00" * 11])
def test_missing_records_are_invalid(records: bytes | None) -> None:
    assert code_of(records) is ErrorCode.INVALID_RECORD


def test_a_second_complete_batch_is_invalid_record() -> None:
    assert code_of(GOOD + GOOD) is ErrorCode.INVALID_RECORD


def test_trailing_bytes_are_refused() -> None:
    # Kafka trims these silently; we refuse so the log never stores unchecked bytes.
    assert code_of(GOOD + b"\x00") is ErrorCode.INVALID_RECORD
    assert code_of(GOOD + GOOD[:30]) is ErrorCode.INVALID_RECORD
    # Trailing bytes that read as an impossible batch header are corrupt, as Kafka's reader says.
    impossible = bytearray(GOOD[:20])
    struct.pack_into(">i", impossible, 8, 3)
    assert code_of(GOOD + bytes(impossible)) is ErrorCode.CORRUPT_MESSAGE


def test_incomplete_batch_is_invalid_record() -> None:
    # Kafka's stream reader finds no complete batch: "must have at least one record batch".
    for end in (12, 16, 30, 61, len(GOOD) - 1):
        assert code_of(GOOD[:end]) is ErrorCode.INVALID_RECORD, end


def test_batch_length_below_any_record_is_corrupt() -> None:
    data = bytearray(GOOD)
    struct.pack_into(">i", data, 8, 13)
    assert code_of(bytes(data)) is ErrorCode.CORRUPT_MESSAGE


def test_v2_batch_length_below_its_header_is_corrupt() -> None:
    data = bytearray(GOOD[:40])
    struct.pack_into(">i", data, 8, 28)
    assert code_of(bytes(data)) is ErrorCode.CORRUPT_MESSAGE


def test_bad_crc_is_corrupt_message() -> None:
    data = bytearray(GOOD)
    data[-1] ^= 1
    assert code_of(bytes(data)) is ErrorCode.CORRUPT_MESSAGE


def test_batch_over_max_message_bytes_is_too_large() -> None:
    assert code_of(GOOD, max_bytes=len(GOOD) - 1) is ErrorCode.MESSAGE_TOO_LARGE
    validate_produce_records(GOOD, len(GOOD))


@pytest.mark.parametrize(
    ("magic", "code"),
    [
        (0, ErrorCode.INVALID_RECORD),
        (1, ErrorCode.INVALID_RECORD),
        (3, ErrorCode.CORRUPT_MESSAGE),
        (7, ErrorCode.CORRUPT_MESSAGE),
        (0xFF, ErrorCode.CORRUPT_MESSAGE),
    ],
)
def test_magic_other_than_2(magic: int, code: ErrorCode) -> None:
    data = bytearray(GOOD)
    data[16] = magic
    assert code_of(bytes(data)) is code


def test_zstd_needs_produce_v7() -> None:
    zstd = build_batch([Record(0, 0, None, b"z" * 100, ())], compression=4, base_timestamp=1)
    with pytest.raises(KafkaError) as raised:
        validate_produce_records(zstd, MAX, api_version=6)
    assert raised.value.code is ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
    validate_produce_records(zstd, MAX, api_version=7)
    validate_produce_records(zstd, MAX)


def test_producer_id_without_a_sequence_is_invalid_record() -> None:
    batch = build_batch(
        [Record(0, 0, None, b"v", ())], base_timestamp=1, producer_id=5, producer_epoch=0
    )
    assert code_of(batch) is ErrorCode.INVALID_RECORD


def test_non_zero_base_offset_is_invalid_record() -> None:
    data = bytearray(GOOD)
    struct.pack_into(">q", data, 0, 5)  # not covered by the CRC
    assert code_of(bytes(data)) is ErrorCode.INVALID_RECORD


def test_control_batch_from_a_client_is_invalid_record() -> None:
    data = bytearray(GOOD)
    struct.pack_into(">h", data, 21, 0x20)
    assert code_of(restamp(data)) is ErrorCode.INVALID_RECORD


@pytest.mark.parametrize(("count", "last_delta"), [(0, -1), (3, 1), (1, 1)])
def test_count_must_match_last_offset_delta(count: int, last_delta: int) -> None:
    data = bytearray(GOOD)
    struct.pack_into(">i", data, 57, count)
    struct.pack_into(">i", data, 23, last_delta)
    assert code_of(restamp(data)) is ErrorCode.INVALID_RECORD
