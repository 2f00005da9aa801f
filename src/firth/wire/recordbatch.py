"""Kafka record batch v2 headers: the unit of storage and of the Kafka wire.

A record batch is stored exactly as the producer sent it; the broker reads only its fixed
61-byte header and never the records inside. This module owns that header:

```
offset  size  field
0       8     baseOffset            patched by the broker on append (not covered by the CRC)
8       4     batchLength           bytes after this field (total size = batchLength + 12)
12      4     partitionLeaderEpoch  may be patched by the broker (not covered by the CRC)
16      1     magic                 must be 2
17      4     crc                   CRC-32C of bytes 21..end
21      2     attributes            bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control
23      4     lastOffsetDelta
27      8     baseTimestamp
35      8     maxTimestamp
43      8     producerId
51      2     producerEpoch
53      4     baseSequence
57      4     recordsCount
61      ...   records (possibly compressed)
```

It is shared by the storage engine (recovery validates stored batches) and the Kafka front end
(produce validates client batches), so it knows neither. Errors are `BatchError` with a reason
the caller maps to its own error codes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import crc32c

HEADER_SIZE = 61
"""Bytes in a v2 batch header, up to and including recordsCount."""

LOG_OVERHEAD = 12
"""baseOffset + batchLength: the bytes not counted by batchLength."""

MAGIC_V2 = 2

CRC_OFFSET = 17
CRC_COVERS_FROM = 21
LENGTH_OFFSET = 8

COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_BIT = 0x08
TRANSACTIONAL_BIT = 0x10
CONTROL_BIT = 0x20

NO_PRODUCER_ID = -1
NO_SEQUENCE = -1

_HEADER = struct.Struct(">qiibIhiqqqhii")
_BASE_OFFSET = struct.Struct(">q")
_LENGTH_PREFIX = struct.Struct(">qi")


class BatchError(ValueError):
    """A batch that cannot be accepted or trusted. `reason` is one of the REASON_* names."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


REASON_TRUNCATED = "truncated"
REASON_MAGIC = "magic"
REASON_CRC = "crc"
REASON_LENGTH = "length"
REASON_COUNT = "count"


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """The decoded fixed header of one record batch."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        """Total bytes of the batch on the wire and on disk."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_BIT)

    @property
    def last_sequence(self) -> int:
        if self.base_sequence == NO_SEQUENCE:
            return NO_SEQUENCE
        return (self.base_sequence + self.last_offset_delta) & 0x7FFFFFFF


def batch_size_at(buf: bytes | bytearray | memoryview, pos: int = 0) -> int | None:
    """Total size of the batch starting at `pos`, or None when fewer than 12 bytes remain."""
    if len(buf) - pos < LOG_OVERHEAD:
        return None
    _, length = _LENGTH_PREFIX.unpack_from(buf, pos)
    return int(length) + LOG_OVERHEAD


def parse_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Decode the header at `pos`. Checks only that 61 bytes are there and magic is 2."""
    if len(buf) - pos < HEADER_SIZE:
        raise BatchError(REASON_TRUNCATED, "record batch shorter than its 61-byte header")
    header = BatchHeader(*_HEADER.unpack_from(buf, pos))
    if header.magic != MAGIC_V2:
        raise BatchError(REASON_MAGIC, f"unsupported record batch magic {header.magic}")
    return header


def compute_crc(buf: bytes | bytearray | memoryview, pos: int, size: int) -> int:
    """CRC-32C over bytes [pos+21, pos+size) — the part of the batch the CRC covers."""
    view = memoryview(buf)[pos + CRC_COVERS_FROM : pos + size]
    return crc32c.crc32c(view)


def validate(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Decode and fully check the batch at `pos`: length, magic, CRC, offset delta vs count.

    The batch must lie entirely within `buf`.
    """
    header = parse_header(buf, pos)
    if header.batch_length < HEADER_SIZE - LOG_OVERHEAD:
        raise BatchError(REASON_LENGTH, f"batchLength {header.batch_length} below header size")
    if pos + header.size > len(buf):
        raise BatchError(REASON_TRUNCATED, "record batch extends past the end of its buffer")
    if compute_crc(buf, pos, header.size) != header.crc:
        raise BatchError(REASON_CRC, "record batch CRC-32C mismatch")
    if header.records_count < 0 or header.last_offset_delta < 0:
        raise BatchError(REASON_COUNT, "negative record count or offset delta")
    return header


def patch_base_offset(buf: bytearray | memoryview, base_offset: int, pos: int = 0) -> None:
    """Overwrite baseOffset in place; the CRC does not cover it, so it stays valid."""
    _BASE_OFFSET.pack_into(buf, pos, base_offset)
