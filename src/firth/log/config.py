"""`LogConfig`: the per-log settings, with Kafka's broker defaults.

The names follow Kafka's topic configs (`segment.bytes` -> `segment_bytes`, ...), so a topic's
Kafka-style config maps onto a `LogConfig` field for field. The defaults are Kafka's, so a topic
created without overrides behaves like one on a stock Kafka broker.
"""

from __future__ import annotations

from dataclasses import dataclass

from firth.log.files import OFFSET_INDEX_ENTRY_SIZE, TIME_INDEX_ENTRY_SIZE
from firth.wire.recordbatch import HEADER_SIZE

_INT32_MAX = 2**31 - 1
_DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Settings of one log. Frozen: change them with `Log.update_config(new)`.

    `segment_bytes` is capped at 2 GiB - 1 because index positions are int32. A value of -1 for
    `retention_ms` or `retention_bytes` means no limit of that kind.
    """

    segment_bytes: int = 1024 * 1024 * 1024
    """Roll to a new segment before an append would make the active one larger than this."""

    segment_ms: int = 7 * _DAY_MS
    """Roll when the active segment's first batch is older than this (by record timestamps)."""

    retention_ms: int = 7 * _DAY_MS
    """Delete whole segments whose newest timestamp is older than this; -1 keeps them forever."""

    retention_bytes: int = -1
    """Delete the oldest whole segments while the log is larger than this; -1 = unlimited."""

    max_message_bytes: int = 1024 * 1024 + 12
    """Largest batch accepted by `append` (Kafka's 1048588: 1 MiB plus the log overhead)."""

    index_interval_bytes: int = 4096
    """Add an offset index entry after at least this many bytes of batches since the last."""

    segment_index_bytes: int = 10 * 1024 * 1024
    """Largest index file; a segment whose index is full rolls even below `segment_bytes`."""

    file_delete_delay_ms: int = 60_000
    """How long a segment retired by retention stays open (renamed `.deleted`) so that fetches
    holding its file descriptor can finish; Kafka's `file.delete.delay.ms`."""

    def __post_init__(self) -> None:
        if not HEADER_SIZE <= self.segment_bytes <= _INT32_MAX:
            raise ValueError(f"segment_bytes must be in [{HEADER_SIZE}, {_INT32_MAX}]")
        if self.segment_ms <= 0:
            raise ValueError("segment_ms must be positive")
        if self.retention_ms < -1 or self.retention_bytes < -1:
            raise ValueError("retention_ms and retention_bytes must be >= -1")
        if self.max_message_bytes < HEADER_SIZE:
            raise ValueError(f"max_message_bytes must be at least {HEADER_SIZE}")
        if self.index_interval_bytes < 0:
            raise ValueError("index_interval_bytes must be >= 0")
        if self.segment_index_bytes < max(OFFSET_INDEX_ENTRY_SIZE, TIME_INDEX_ENTRY_SIZE):
            raise ValueError("segment_index_bytes must hold at least one entry")
        if self.file_delete_delay_ms < 0:
            raise ValueError("file_delete_delay_ms must be >= 0")

    @property
    def max_offset_index_entries(self) -> int:
        return self.segment_index_bytes // OFFSET_INDEX_ENTRY_SIZE

    @property
    def max_time_index_entries(self) -> int:
        return self.segment_index_bytes // TIME_INDEX_ENTRY_SIZE
