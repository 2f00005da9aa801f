"""firth.log: the storage engine, a per-partition segmented log in Kafka's on-disk layout.

Synchronous, single writer per log (plus `flush` from any thread). The public surface:

- `Log` (open, append, read, batches, offset_for_timestamp, flush, enforce_retention,
  truncate_to, close, delete) and its `LogConfig`;
- value types `OffsetPosition`, `TimestampOffset`, `FileSlice`, `FetchSlices`;
- the error tree rooted at `LogError`;
- `LoadReport`, what opening a log found and repaired.

Module map: files (names), config, errors, positions, records_file (batch framing reads),
index_codec, offset_index, time_index, segment, checkpoints, loader (recovery), retention, log.
The byte layouts and crash semantics are in docs/storage.md.
"""

from firth.log.config import LogConfig
from firth.log.errors import (
    CorruptBatch,
    LogClosed,
    LogError,
    OffsetOutOfRange,
    RecordTooLarge,
    StorageError,
)
from firth.log.loader import LoadReport
from firth.log.log import Clock, Log, wall_clock_ms
from firth.log.positions import FetchSlices, FileSlice, OffsetPosition, TimestampOffset

__all__ = [
    "Clock",
    "CorruptBatch",
    "FetchSlices",
    "FileSlice",
    "LoadReport",
    "Log",
    "LogClosed",
    "LogConfig",
    "LogError",
    "OffsetOutOfRange",
    "OffsetPosition",
    "RecordTooLarge",
    "StorageError",
    "TimestampOffset",
    "wall_clock_ms",
]
