"""Record-level codec for record batch v2: build a batch from records, and decode one.

For tools, tests and benchmarks — the broker's hot path never looks inside a batch (it stores
what the producer sent). The fixed 61-byte header belongs to `firth.wire.recordbatch`; this
module adds the records section and compression.

A record inside a batch (varints are zigzag-encoded, as in protobuf):

```
length varint | attributes int8 (unused, 0) | timestampDelta varlong | offsetDelta varint
keyLength varint (-1 = null) | key | valueLength varint (-1 = null) | value
headerCount varint | per header: keyLength varint, key (UTF-8), valueLength varint, value
```

Compression (attributes bits 0-2) covers the whole records section, never the header:
1 gzip, 2 snappy, 3 lz4 (LZ4 frame format), 4 zstd. Snappy comes in two dialects: the Java client
writes xerial's framing (a 16-byte header, then int32-length-prefixed raw snappy blocks);
librdkafka can write a bare raw snappy block. `build_batch` writes the xerial dialect, which
every client reads; `decode_batch` accepts both.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import cramjam

from firth.wire.recordbatch import (
    COMPRESSION_MASK,
    CONTROL_BIT,
    CRC_COVERS_FROM,
    CRC_OFFSET,
    HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC_V2,
    TRANSACTIONAL_BIT,
    BatchError,
    BatchHeader,
    compute_crc,
    parse_header,
)

COMPRESSION_NONE = 0
COMPRESSION_GZIP = 1
COMPRESSION_SNAPPY = 2
COMPRESSION_LZ4 = 3
COMPRESSION_ZSTD = 4
COMPRESSION_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}

XERIAL_MAGIC = b"\x82SNAPPY\x00"
"""Start of the xerial snappy stream header: magic, then int32 version 1, int32 compatible 1."""
_XERIAL_HEADER = XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK = 32 * 1024
_INT32 = struct.Struct(">i")
_HEADER = struct.Struct(">qiibIhiqqqhii")


@dataclass(frozen=True, slots=True)
class Record:
    """One record of a v2 batch; offsets and timestamps are deltas from the batch's bases."""

    offset_delta: int
    timestamp_delta: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = field(default=())


class RecordDecodeError(BatchError):
    """A records section (or its compression) that does not decode."""

    def __init__(self, message: str) -> None:
        super().__init__("records", message)


# --- varints ---------------------------------------------------------------------------------


def _write_varint(out: bytearray, value: int) -> None:
    zigzag = (value << 1) ^ (value >> 63)
    while zigzag >= 0x80:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)


def _read_varint(buf: memoryview | bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise RecordDecodeError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift >= 70:
            raise RecordDecodeError("varint too long")


def _write_bytes(out: bytearray, value: bytes | None) -> None:
    if value is None:
        _write_varint(out, -1)
    else:
        _write_varint(out, len(value))
        out += value


def _read_bytes(buf: memoryview | bytes, pos: int, end: int) -> tuple[bytes | None, int]:
    size, pos = _read_varint(buf, pos)
    if size < 0:
        return None, pos
    if pos + size > end:
        raise RecordDecodeError("field extends past its record")
    return bytes(buf[pos : pos + size]), pos + size


def encode_record(record: Record) -> bytes:
    body = bytearray(b"\x00")  # attributes
    _write_varint(body, record.timestamp_delta)
    _write_varint(body, record.offset_delta)
    _write_bytes(body, record.key)
    _write_bytes(body, record.value)
    _write_varint(body, len(record.headers))
    for name, value in record.headers:
        _write_bytes(body, name.encode())
        _write_bytes(body, value)
    out = bytearray()
    _write_varint(out, len(body))
    out += body
    return bytes(out)


def decode_records(data: bytes | memoryview, count: int) -> list[Record]:
    """Decode `count` records from an uncompressed records section."""
    buf = memoryview(data)
    pos = 0
    records = []
    for _ in range(count):
        size, pos = _read_varint(buf, pos)
        end = pos + size
        if size < 1 or end > len(buf):
            raise RecordDecodeError("record length outside the records section")
        pos += 1  # attributes
        timestamp_delta, pos = _read_varint(buf, pos)
        offset_delta, pos = _read_varint(buf, pos)
        key, pos = _read_bytes(buf, pos, end)
        value, pos = _read_bytes(buf, pos, end)
        header_count, pos = _read_varint(buf, pos)
        if header_count < 0 or header_count > end - pos:
            raise RecordDecodeError("bad header count")
        headers = []
        for _ in range(header_count):
            name, pos = _read_bytes(buf, pos, end)
            header_value, pos = _read_bytes(buf, pos, end)
            if name is None:
                raise RecordDecodeError("null header key")
            try:
                headers.append((name.decode(), header_value))
            except UnicodeDecodeError:
                raise RecordDecodeError("header key is not UTF-8") from None
        if pos != end:
            raise RecordDecodeError("record length does not match its fields")
        records.append(Record(offset_delta, timestamp_delta, key, value, tuple(headers)))
    if pos != len(buf):
        raise RecordDecodeError("bytes left after the last record")
    return records


# --- compression -----------------------------------------------------------------------------


def compress(codec: int, data: bytes) -> bytes:
    if codec == COMPRESSION_NONE:
        return data
    if codec == COMPRESSION_GZIP:
        return bytes(cramjam.gzip.compress(data))
    if codec == COMPRESSION_SNAPPY:
        out = bytearray(_XERIAL_HEADER)
        view = memoryview(data)
        for start in range(0, len(data), _XERIAL_BLOCK):
            block = bytes(cramjam.snappy.compress_raw(view[start : start + _XERIAL_BLOCK]))
            out += _INT32.pack(len(block))
            out += block
        return bytes(out)
    if codec == COMPRESSION_LZ4:
        return bytes(cramjam.lz4.compress(data))
    if codec == COMPRESSION_ZSTD:
        return bytes(cramjam.zstd.compress(data))
    raise ValueError(f"unknown compression codec {codec}")


def decompress(codec: int, data: bytes | memoryview) -> bytes:
    """Decompress a records section; raises `RecordDecodeError` on corrupt input."""
    try:
        if codec == COMPRESSION_NONE:
            return bytes(data)
        if codec == COMPRESSION_GZIP:
            return bytes(cramjam.gzip.decompress(bytes(data)))
        if codec == COMPRESSION_SNAPPY:
            return _snappy_decompress(bytes(data))
        if codec == COMPRESSION_LZ4:
            return bytes(cramjam.lz4.decompress(bytes(data)))
        if codec == COMPRESSION_ZSTD:
            return bytes(cramjam.zstd.decompress(bytes(data)))
    except RecordDecodeError:
        raise
    except Exception as exc:  # cramjam raises DecompressionError and friends
        raise RecordDecodeError(f"{COMPRESSION_NAMES[codec]} data does not decompress") from exc
    raise RecordDecodeError(f"unknown compression codec {codec}")


def _snappy_decompress(data: bytes) -> bytes:
    if not data.startswith(XERIAL_MAGIC):
        return bytes(cramjam.snappy.decompress_raw(data))
    pos = len(_XERIAL_HEADER)
    out = bytearray()
    while pos < len(data):
        if pos + 4 > len(data):
            raise RecordDecodeError("truncated xerial snappy block length")
        (size,) = _INT32.unpack_from(data, pos)
        pos += 4
        if size < 0 or pos + size > len(data):
            raise RecordDecodeError("xerial snappy block extends past the data")
        out += cramjam.snappy.decompress_raw(data[pos : pos + size])
        pos += size
    return bytes(out)


# --- batches ---------------------------------------------------------------------------------


def build_batch(
    records: Sequence[Record],
    *,
    compression: int = COMPRESSION_NONE,
    base_timestamp: int,
    base_offset: int = 0,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    transactional: bool = False,
    control: bool = False,
    partition_leader_epoch: int = -1,
) -> bytes:
    """A complete, CRC-stamped v2 record batch holding `records`."""
    if not records:
        raise ValueError("a record batch holds at least one record")
    section = b"".join(encode_record(record) for record in records)
    payload = compress(compression, section)
    attributes = compression & COMPRESSION_MASK
    if transactional:
        attributes |= TRANSACTIONAL_BIT
    if control:
        attributes |= CONTROL_BIT
    last_offset_delta = max(record.offset_delta for record in records)
    max_timestamp = base_timestamp + max(record.timestamp_delta for record in records)
    size = HEADER_SIZE + len(payload)
    out = bytearray(size)
    _HEADER.pack_into(
        out,
        0,
        base_offset,
        size - LOG_OVERHEAD,
        partition_leader_epoch,
        MAGIC_V2,
        0,  # crc, stamped below
        attributes,
        last_offset_delta,
        base_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        len(records),
    )
    out[HEADER_SIZE:] = payload
    struct.pack_into(">I", out, CRC_OFFSET, compute_crc(out, 0, size))
    return bytes(out)


def decode_batch(
    data: bytes | bytearray | memoryview, pos: int = 0
) -> tuple[BatchHeader, list[Record]]:
    """Decode the batch at `pos`: its header and its (decompressed) records.

    Checks the CRC; raises `BatchError` (or its subclass `RecordDecodeError`) on bad input.
    """
    header = parse_header(data, pos)
    end = pos + header.size
    if header.batch_length < HEADER_SIZE - LOG_OVERHEAD or end > len(data):
        raise BatchError("truncated", "record batch extends past the end of its buffer")
    if compute_crc(data, pos, header.size) != header.crc:
        raise BatchError("crc", "record batch CRC-32C mismatch")
    section = memoryview(data)[pos + HEADER_SIZE : end]
    plain = decompress(header.compression, section)
    return header, decode_records(plain, header.records_count)


__all__ = [
    "COMPRESSION_GZIP",
    "COMPRESSION_LZ4",
    "COMPRESSION_NONE",
    "COMPRESSION_SNAPPY",
    "COMPRESSION_ZSTD",
    "CRC_COVERS_FROM",
    "Record",
    "RecordDecodeError",
    "build_batch",
    "decode_batch",
    "decode_records",
    "encode_record",
]
