"""Checks a produce request's record data before the broker appends it.

Since Produce v3 every partition carries exactly one v2 record batch. `validate_produce_records`
applies the checks Kafka's broker makes, in Kafka's order, and raises `KafkaError` with the code
Kafka answers for each breach. Kafka reads the data as a stream of batches first
(`ByteBufferLogInputStream`), then checks the request's shape (`ProduceRequest.validateRecords`),
then each batch as the log appends it (`UnifiedLog.analyzeAndValidateRecords`, `LogValidator`):

| breach                                                        | error                          |
|---------------------------------------------------------------|--------------------------------|
| fewer than 12 bytes, or no complete batch                     | INVALID_RECORD                 |
| batchLength below 14 (the smallest legacy record)             | CORRUPT_MESSAGE                |
| magic byte outside 0..2                                       | CORRUPT_MESSAGE                |
| magic 0 or 1 (Produce v3+ needs 2)                            | INVALID_RECORD                 |
| zstd before Produce v7                                        | UNSUPPORTED_COMPRESSION_TYPE   |
| a second complete batch; or trailing bytes (see below)        | INVALID_RECORD                 |
| batch larger than max.message.bytes                           | MESSAGE_TOO_LARGE              |
| batchLength below the 61-byte v2 header, CRC-32C mismatch     | CORRUPT_MESSAGE                |
| baseOffset not 0, a control batch, recordsCount 0 or not lastOffsetDelta + 1, a producer id with a negative base sequence | INVALID_RECORD |

One deliberate difference: Kafka silently trims trailing bytes too short to be a second batch;
we refuse them with INVALID_RECORD (CORRUPT_MESSAGE when they read as an impossible batch header,
as Kafka's stream reader says), so the log never holds a byte this function did not check.

Only the 61-byte header is read; the records inside stay opaque (and compressed).
"""

from __future__ import annotations

import struct

from firth.kafka.protocol.errors import ErrorCode, KafkaError
from firth.wire.recordbatch import (
    HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC_V2,
    BatchHeader,
    compute_crc,
    parse_header,
)

_MAGIC_OFFSET = 16
_UP_TO_MAGIC = _MAGIC_OFFSET + 1
_MIN_RECORD_SIZE = 14
"""Kafka's LegacyRecord.RECORD_OVERHEAD_V0: a smaller batchLength is corrupt in any format."""
_ZSTD = 4
_FIRST_ZSTD_PRODUCE_VERSION = 7
_LENGTH = struct.Struct(">i")

Buffer = bytes | bytearray | memoryview


def _batch_size_at(records: Buffer, pos: int) -> int | None:
    """Kafka's nextBatchSize: the size of the batch at `pos`, None if too few bytes to tell."""
    remaining = len(records) - pos
    if remaining < LOG_OVERHEAD:
        return None
    (record_size,) = _LENGTH.unpack_from(records, pos + 8)
    if record_size < _MIN_RECORD_SIZE:
        raise KafkaError(
            ErrorCode.CORRUPT_MESSAGE, f"batchLength {record_size} below the minimum record size"
        )
    if remaining < _UP_TO_MAGIC:
        return None
    magic = records[pos + _MAGIC_OFFSET]
    if magic > MAGIC_V2:  # as a signed byte, anything above 127 is negative: also invalid
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"invalid record batch magic {magic}")
    return int(record_size) + LOG_OVERHEAD


def validate_produce_records(
    records: Buffer | None, max_message_bytes: int, *, api_version: int | None = None
) -> BatchHeader:
    """Check one partition's produce data; return its batch header or raise `KafkaError`.

    `api_version` is the Produce request's version, for the zstd check (None skips it).
    """
    if records is None:
        raise KafkaError(ErrorCode.INVALID_RECORD, "produce request carries no record batch")
    size = len(records)
    batch_size = _batch_size_at(records, 0)
    if batch_size is None or batch_size > size:
        raise KafkaError(
            ErrorCode.INVALID_RECORD, "Produce v3+ needs one complete record batch per partition"
        )
    magic = records[_MAGIC_OFFSET]
    if magic != MAGIC_V2:
        raise KafkaError(
            ErrorCode.INVALID_RECORD, f"record batch magic {magic}; Produce v3+ requires magic 2"
        )
    if (
        api_version is not None
        and api_version < _FIRST_ZSTD_PRODUCE_VERSION
        and size > 22
        and records[22] & 0x07 == _ZSTD
    ):
        raise KafkaError(
            ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"zstd needs Produce v7, got v{api_version}"
        )
    if batch_size < size:
        _batch_size_at(records, batch_size)  # impossible header after the batch: corrupt
        raise KafkaError(
            ErrorCode.INVALID_RECORD,
            "Produce v3+ allows exactly one record batch per partition "
            f"({size - batch_size} bytes follow the first batch)",
        )
    if batch_size > max_message_bytes:
        raise KafkaError(
            ErrorCode.MESSAGE_TOO_LARGE,
            f"batch of {batch_size} bytes exceeds max.message.bytes {max_message_bytes}",
        )
    if batch_size < HEADER_SIZE:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"batch of {batch_size} bytes is too small")
    header = parse_header(records, 0)
    if compute_crc(records, 0, batch_size) != header.crc:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "record batch CRC-32C mismatch")
    if header.base_offset != 0:
        raise KafkaError(
            ErrorCode.INVALID_RECORD, f"client batch baseOffset {header.base_offset}, must be 0"
        )
    if header.records_count <= 0 or header.records_count != header.last_offset_delta + 1:
        raise KafkaError(
            ErrorCode.INVALID_RECORD,
            f"recordsCount {header.records_count} does not match "
            f"lastOffsetDelta {header.last_offset_delta} + 1",
        )
    if header.is_control:
        raise KafkaError(ErrorCode.INVALID_RECORD, "clients may not write control batches")
    if header.producer_id >= 0 and header.base_sequence < 0:
        raise KafkaError(
            ErrorCode.INVALID_RECORD,
            f"producer id {header.producer_id} with invalid base sequence {header.base_sequence}",
        )
    return header
