"""Byte layout of the offsets store's records (sans-IO: bytes in, records out).

Both files of the store (the append-only log and the snapshot) are a magic header followed by
framed records:

    file    = MAGIC (8 bytes) record*
    record  = body_length u32 | crc u32 (CRC-32C of body) | body
    body    = type u8 | payload

Payloads (big-endian; str = u32 byte length + UTF-8):

    COMMIT         group str | commit_timestamp_ms i64 | count u32 |
                   count × (topic str | partition i32 | offset i64 | leader_epoch i32 | metadata str)
    DELETE_GROUP   group str
    DELETE_OFFSETS group str | count u32 | count × (topic str | partition i32)
    SNAPSHOT_END   record_count u64  (last record of a snapshot; a snapshot without it is invalid)

A record is all or nothing: `decode` stops at the first record that is incomplete, fails its CRC
or does not parse, and reports how many bytes were good, so the loader keeps exactly the valid
prefix of a torn file. Replaying records is idempotent (each sets or deletes keys), which is what
lets a snapshot and the log it summarises overlap after a crash during compaction.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

import crc32c

from firth.broker.groups.results import TopicPartition

MAGIC = b"FIRTHGO1"
"""Eight bytes opening every offsets-store file: 'Firth group offsets', format 1."""

LOG_SUFFIX = ".log"
"""Append-only record log, named offsets-<20-digit sequence>.log."""

SNAPSHOT_SUFFIX = ".snapshot"
"""Full state as of the start of log <sequence>, named offsets-<20-digit sequence>.snapshot."""

TMP_SUFFIX = ".tmp"
"""A snapshot being written; never read, removed at load."""

FILE_PREFIX = "offsets-"

COMMIT = 1
DELETE_GROUP = 2
DELETE_OFFSETS = 3
SNAPSHOT_END = 4

_FRAME = struct.Struct(">II")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_ENTRY_FIXED = struct.Struct(">iqi")  # partition, offset, leader_epoch
_EMPTY_STR = _U32.pack(0)
_I64_U32 = struct.Struct(">qI")  # commit_timestamp_ms, entry count
_COMMIT_TYPE = bytes((COMMIT,))


def file_name(sequence: int, suffix: str) -> str:
    return f"{FILE_PREFIX}{sequence:020d}{suffix}"


def parse_file_name(name: str) -> tuple[int, str] | None:
    """(sequence, suffix) of a store file name, or None for any other name."""
    if not name.startswith(FILE_PREFIX):
        return None
    for suffix in (LOG_SUFFIX, SNAPSHOT_SUFFIX):
        if name.endswith(suffix):
            digits = name[len(FILE_PREFIX) : -len(suffix)]
            if len(digits) == 20 and digits.isdigit():
                return int(digits), suffix
    return None


class OffsetEntry(NamedTuple):
    """One partition's offset in a COMMIT record (a named tuple: built per partition committed)."""

    topic: str
    partition: int
    offset: int
    leader_epoch: int
    metadata: str

    @property
    def key(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


@dataclass(frozen=True, slots=True)
class CommitRecord:
    group_id: str
    commit_timestamp_ms: int
    entries: tuple[OffsetEntry, ...]


@dataclass(frozen=True, slots=True)
class DeleteGroupRecord:
    group_id: str


@dataclass(frozen=True, slots=True)
class DeleteOffsetsRecord:
    group_id: str
    partitions: tuple[TopicPartition, ...]


@dataclass(frozen=True, slots=True)
class SnapshotEndRecord:
    record_count: int


Record = CommitRecord | DeleteGroupRecord | DeleteOffsetsRecord | SnapshotEndRecord


class RecordFormatError(Exception):
    """A body whose CRC matched but which does not parse (written by a different format)."""


def _str(value: str) -> bytes:
    data = value.encode()
    return _U32.pack(len(data)) + data


_NAMES: dict[str, bytes] = {}
_NAMES_LIMIT = 4096


def _name(value: str) -> bytes:
    """`_str` of a group id or topic name, cached: the same few names are written per commit."""
    encoded = _NAMES.get(value)
    if encoded is None:
        if len(_NAMES) >= _NAMES_LIMIT:
            _NAMES.clear()
        encoded = _NAMES[value] = _str(value)
    return encoded


def _frame(body: bytes) -> bytes:
    return _FRAME.pack(len(body), crc32c.crc32c(body)) + body


def encode(record: Record) -> bytes:
    """The framed bytes of one record."""
    parts: list[bytes]
    if isinstance(record, CommitRecord):
        parts = [
            _COMMIT_TYPE,
            _name(record.group_id),
            _I64_U32.pack(record.commit_timestamp_ms, len(record.entries)),
        ]
        append = parts.append
        for topic, partition, offset, leader_epoch, metadata in record.entries:
            append(_name(topic))
            append(_ENTRY_FIXED.pack(partition, offset, leader_epoch))
            append(_str(metadata) if metadata else _EMPTY_STR)
    elif isinstance(record, DeleteGroupRecord):
        parts = [bytes((DELETE_GROUP,)), _str(record.group_id)]
    elif isinstance(record, DeleteOffsetsRecord):
        parts = [bytes((DELETE_OFFSETS,)), _str(record.group_id), _U32.pack(len(record.partitions))]
        for topic, partition in record.partitions:
            parts.append(_str(topic))
            parts.append(_I32.pack(partition))
    else:
        parts = [bytes((SNAPSHOT_END,)), _U64.pack(record.record_count)]
    return _frame(b"".join(parts))


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, size: int) -> memoryview:
        end = self.pos + size
        if end > len(self.buf):
            raise RecordFormatError("payload shorter than its fields")
        view = self.buf[self.pos : end]
        self.pos = end
        return view

    def str(self) -> str:
        (size,) = _U32.unpack(self.take(4))
        try:
            return bytes(self.take(size)).decode()
        except UnicodeDecodeError as exc:
            raise RecordFormatError("string is not UTF-8") from exc

    def unpack(self, layout: struct.Struct) -> tuple[int, ...]:
        return layout.unpack(self.take(layout.size))

    def done(self) -> None:
        if self.pos != len(self.buf):
            raise RecordFormatError("trailing bytes after payload")


def _decode_body(body: memoryview) -> Record:
    if not body:
        raise RecordFormatError("empty body")
    kind = body[0]
    reader = _Reader(body[1:])
    record: Record
    if kind == COMMIT:
        group_id = reader.str()
        (timestamp,) = reader.unpack(_I64)
        (count,) = reader.unpack(_U32)
        entries = []
        for _ in range(count):
            topic = reader.str()
            partition, offset, leader_epoch = reader.unpack(_ENTRY_FIXED)
            entries.append(OffsetEntry(topic, partition, offset, leader_epoch, reader.str()))
        record = CommitRecord(group_id, timestamp, tuple(entries))
    elif kind == DELETE_GROUP:
        record = DeleteGroupRecord(reader.str())
    elif kind == DELETE_OFFSETS:
        group_id = reader.str()
        (count,) = reader.unpack(_U32)
        partitions = []
        for _ in range(count):
            topic = reader.str()
            (partition,) = reader.unpack(_I32)
            partitions.append(TopicPartition(topic, partition))
        record = DeleteOffsetsRecord(group_id, tuple(partitions))
    elif kind == SNAPSHOT_END:
        (count,) = reader.unpack(_U64)
        record = SnapshotEndRecord(count)
    else:
        raise RecordFormatError(f"unknown record type {kind}")
    reader.done()
    return record


def decode(buf: bytes | bytearray | memoryview, start: int = 0) -> tuple[list[Record], int]:
    """Records framed in `buf` from `start`, and the end of the last good one.

    Stops (without raising) at the first record that is cut short, fails its CRC or does not
    parse; everything from the returned position on is a torn or corrupt tail.
    """
    view = memoryview(buf)
    records: list[Record] = []
    pos = start
    while pos + _FRAME.size <= len(view):
        size, crc = _FRAME.unpack_from(view, pos)
        end = pos + _FRAME.size + size
        if end > len(view):
            break
        body = view[pos + _FRAME.size : end]
        if crc32c.crc32c(body) != crc:
            break
        try:
            records.append(_decode_body(body))
        except RecordFormatError:
            break
        pos = end
    return records, pos
