"""Checks a produce request's record data before the broker appends it.

Since Produce v3 every partition carries exactly one v2 record batch. `validate_produce_records`
applies Kafka's broker-side checks to it, in Kafka's order, and raises `KafkaError` with the code
Kafka answers for each breach:

| breach                                                    | error                          |
|-----------------------------------------------------------|--------------------------------|
| null or empty records, or a partial batch prefix          | INVALID_RECORD / CORRUPT_MESSAGE |
| magic byte other than 2                                   | UNSUPPORTED_FOR_MESSAGE_FORMAT |
| batchLength below the header, or past the end of the data | CORRUPT_MESSAGE                |
| bytes after the batch (a second batch or trailing junk)   | INVALID_RECORD                 |
| batch larger than max.message.bytes                       | MESSAGE_TOO_LARGE              |
| CRC-32C mismatch                                          | CORRUPT_MESSAGE                |
| baseOffset not 0, a control batch, recordsCount 0 or not lastOffsetDelta + 1 | INVALID_RECORD |

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
_LENGTH = struct.Struct(">i")


def validate_produce_records(
    records: bytes | bytearray | memoryview | None, max_message_bytes: int
) -> BatchHeader:
    """Check one partition's produce data; return its batch header or raise `KafkaError`."""
    if records is None or len(records) == 0:
        raise KafkaError(ErrorCode.INVALID_RECORD, "produce request carries no record batch")
    size = len(records)
    if size <= _MAGIC_OFFSET:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"record data of {size} bytes is truncated")
    magic = records[_MAGIC_OFFSET]
    if magic != MAGIC_V2:
        raise KafkaError(
            ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT,
            f"record batch magic {magic}; Produce v3+ requires magic 2",
        )
    (batch_length,) = _LENGTH.unpack_from(records, 8)
    batch_size = batch_length + LOG_OVERHEAD
    if batch_length < HEADER_SIZE - LOG_OVERHEAD or size < HEADER_SIZE:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"batchLength {batch_length} is too small")
    if batch_size > size:
        raise KafkaError(
            ErrorCode.CORRUPT_MESSAGE,
            f"batch of {batch_size} bytes but only {size} bytes of record data",
        )
    if batch_size < size:
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
    header = parse_header(records, 0)
    if compute_crc(records, 0, batch_size) != header.crc:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "record batch CRC-32C mismatch")
    if header.base_offset != 0:
        raise KafkaError(
            ErrorCode.INVALID_RECORD, f"client batch baseOffset {header.base_offset}, must be 0"
        )
    if header.is_control:
        raise KafkaError(ErrorCode.INVALID_RECORD, "clients may not write control batches")
    if header.records_count <= 0 or header.records_count != header.last_offset_delta + 1:
        raise KafkaError(
            ErrorCode.INVALID_RECORD,
            f"recordsCount {header.records_count} does not match "
            f"lastOffsetDelta {header.last_offset_delta} + 1",
        )
    return header
