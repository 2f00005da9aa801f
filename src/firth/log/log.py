"""`Log`: one partition's segmented, append-only log of record batches.

A log is a directory of segments (see `firth.log.files` for the names), ordered by base offset,
each covering [base_offset, next segment's base offset). The last one is active: appends go
there, and it rolls (a new segment starting at the log end offset) before an append would make
it larger than `segment_bytes`, when its first batch is older than `segment_ms`, or when its
indexes are full. Retention deletes whole segments from the front, never the active one.

Offsets: `log_start_offset` is the first segment's base offset; `log_end_offset` is the offset
the next appended record gets; `flushed_offset` <= `log_end_offset` marks what is on disk.

Durability: `append` only writes (page cache). `flush` fsyncs every segment with unsynced
bytes, saves the indexes of segments that stopped being active, and advances the recovery-point
checkpoint when the durable end moves into a new segment. It is the group-commit primitive: a
caller that needs offset N on disk calls `flush()` (typically on a worker thread) and waits
until the returned offset exceeds N; one fsync covers every append made before it began.

Concurrency: one owner thread calls everything except `flush`, which any thread may call at
any time, concurrently with appends. Two locks keep that safe and cheap:
- `_lock` (tiny critical sections) guards the segment list and the "directory needs fsync"
  flag; `flush` snapshots (log end offset, segments) under it, then fsyncs outside it. Appends
  take it only to roll.
- `_flush_lock` serialises flushes with each other and with the rare owner operations that
  remove or rewrite segments (retention, truncation, close, delete), so a flush never fsyncs or
  saves indexes of a segment being taken apart. Those owner operations may therefore wait for
  one fsync.
Reads snapshot sizes and return only bytes already written, so they are safe beside appends.
File descriptors of segments removed by retention stay open for `file_delete_delay_ms`, so a
`FileSlice` being sent from a worker thread stays valid.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator

from firth.fsutil import fsync_dir
from firth.log.checkpoints import write_clean_marker, write_recovery_point
from firth.log.config import LogConfig
from firth.log.errors import (
    CorruptBatch,
    LogClosed,
    LogError,
    OffsetOutOfRange,
    RecordTooLarge,
    StorageError,
)
from firth.log.loader import LoadReport, load_segments
from firth.log.positions import FetchSlices, TimestampOffset
from firth.log.records_file import iter_batches
from firth.log.retention import deletable_prefix
from firth.log.segment import Segment
from firth.wire.recordbatch import LOG_OVERHEAD, BatchHeader, parse_header, patch_base_offset

Clock = Callable[[], int]
"""Milliseconds since the epoch; injected so tests can age segments."""

_MAX_RELATIVE_OFFSET = 2**31 - 1


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Log:
    """A partition's log. Create with `Log.open(directory, config)`; see the module docstring
    for the offsets, durability and threading contract."""

    def __init__(
        self,
        directory: str,
        config: LogConfig,
        segments: list[Segment],
        clock: Clock,
        report: LoadReport,
    ) -> None:
        self._directory = directory
        self._config = config
        self._clock = clock
        self._segments = segments
        self._bases = [segment.base_offset for segment in segments]
        self._active = segments[-1]
        self._next_offset = self._active.next_offset
        self._flushed_offset = self._next_offset
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._directory_dirty = False
        self._checkpoint_base: int | None = None
        self._retired: list[tuple[int, Segment]] = []
        self._closed = False
        self._failure: str | None = None
        """Set when an fsync of log data failed. After a failed fsync the kernel may have
        dropped the dirty pages and a retry can succeed without writing them, so the log can
        no longer promise durability: it refuses appends and flushes until reopened (which
        recovers from what is really on disk)."""
        self.load_report = report

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        config: LogConfig | None = None,
        *,
        clock: Clock = wall_clock_ms,
    ) -> Log:
        """Load (and if needed recover) the log in `directory`, creating it if missing."""
        path = os.fspath(directory)
        config = config or LogConfig()
        try:
            segments, report = load_segments(path, config, clock())
            log = cls(path, config, segments, clock, report)
            if report.recovered_from is not None:
                try:
                    log._checkpoint_after_recovery()
                except BaseException:
                    log._release()
                    raise
        except OSError as error:
            raise StorageError(f"cannot open log {path}: {error}") from error
        return log

    def _checkpoint_after_recovery(self) -> None:
        """Recovery fsynced the data; save its rebuilt indexes and move the recovery point to
        the end so the next crash starts from here."""
        for segment in self._segments:
            if not segment.indexes_saved:
                segment.save_indexes()
        fsync_dir(self._directory)
        write_recovery_point(self._directory, self._next_offset)
        self._checkpoint_base = self._active.base_offset

    # -- properties ------------------------------------------------------------------------

    @property
    def directory(self) -> str:
        return self._directory

    @property
    def config(self) -> LogConfig:
        return self._config

    @property
    def log_start_offset(self) -> int:
        return self._segments[0].base_offset

    @property
    def log_end_offset(self) -> int:
        return self._next_offset

    @property
    def flushed_offset(self) -> int:
        return self._flushed_offset

    @property
    def size_bytes(self) -> int:
        return sum(segment.size for segment in self._segments)

    @property
    def segment_base_offsets(self) -> list[int]:
        return list(self._bases)

    @property
    def closed(self) -> bool:
        return self._closed

    def update_config(self, config: LogConfig) -> None:
        """New limits apply from the next append (roll) and the next retention pass."""
        self._config = config
        for segment in self._segments:
            segment.update_config(config)

    # -- append ----------------------------------------------------------------------------

    def append(self, batch: bytearray | memoryview, header: BatchHeader) -> int:
        """Assign the next offsets to `batch`, patch its baseOffset in place, write it.

        `header` is the batch's parsed header (its own baseOffset is ignored). The caller has
        validated the batch; this checks only that the sizes agree and the size limit. Returns
        the assigned base offset. Not durable until a `flush` that began after it returns.
        """
        size = len(batch)
        if size != header.batch_length + LOG_OVERHEAD:
            raise CorruptBatch(f"batch of {size} bytes but batchLength {header.batch_length}")
        config = self._config
        if size > config.max_message_bytes:
            raise RecordTooLarge(f"batch of {size} bytes exceeds {config.max_message_bytes}")
        if self._closed or self._failure is not None:
            raise self._unusable()
        base_offset = self._next_offset
        next_offset = base_offset + header.last_offset_delta + 1
        max_timestamp = header.max_timestamp
        segment = self._active
        try:
            # Roll before writing when the segment would outgrow segment_bytes, its indexes are
            # full, relative offsets would overflow int32, or it is older than segment_ms: like
            # Kafka, age is this batch's maxTimestamp minus the first batch's when both have
            # one, else wall-clock time since the segment was created (or loaded). One
            # expression, cheapest tests first: this runs for every produced batch.
            if segment.size and (
                segment.size + size > config.segment_bytes
                or segment.indexes_full
                or next_offset - segment.base_offset > _MAX_RELATIVE_OFFSET
                or (
                    max_timestamp - segment.rolling_base_timestamp > config.segment_ms
                    if max_timestamp >= 0 and segment.rolling_base_timestamp >= 0
                    else self._clock() - segment.created_ms > config.segment_ms
                )
            ):
                segment = self._roll(base_offset)
            patch_base_offset(batch, base_offset)
            segment.append(batch, base_offset, next_offset, max_timestamp)
        except OSError as error:
            raise StorageError(f"append to {self._directory} failed: {error}") from error
        self._next_offset = next_offset
        return base_offset

    def _roll(self, base_offset: int) -> Segment:
        old = self._active
        old.seal()
        new = Segment.create(self._directory, base_offset, self._config, self._clock())
        with self._lock:
            self._segments.append(new)
            self._bases.append(base_offset)
            self._directory_dirty = True
        self._active = new
        return new

    def roll(self) -> None:
        """Start a new segment now (no-op while the active one is empty)."""
        if self._active.size:
            try:
                self._roll(self._next_offset)
            except OSError as error:
                raise StorageError(f"roll of {self._directory} failed: {error}") from error

    # -- reads -----------------------------------------------------------------------------

    def _unusable(self) -> LogError:
        if self._closed:
            return LogClosed(f"log {self._directory} is closed")
        return StorageError(f"log {self._directory} failed to fsync: {self._failure}")

    def _check_range(self, offset: int) -> None:
        if offset < self._segments[0].base_offset or offset > self._next_offset:
            raise OffsetOutOfRange(offset, self._segments[0].base_offset, self._next_offset)

    def read(self, offset: int, max_bytes: int) -> FetchSlices:
        """Whole batches from the one containing `offset`, up to `max_bytes` (the first batch
        is whole even if larger), possibly across segments; empty at the log end offset."""
        if self._closed:
            raise LogClosed(f"log {self._directory} is closed")
        if offset == self._next_offset:
            return FetchSlices()
        self._check_range(offset)
        segments = self._segments
        i = bisect_right(self._bases, offset) - 1
        result = FetchSlices()
        remaining = max_bytes
        start: int | None = offset
        try:
            while i < len(segments):
                found = segments[i].slice_from(start, remaining)
                i += 1
                if found is None:
                    if start is None:
                        break
                    continue  # `offset` was not in that segment after all; try the next
                piece, reached_end = found
                result.slices.append(piece)
                remaining -= piece.size
                start = None
                if not reached_end or remaining <= 0:
                    break
        except OSError as error:
            raise StorageError(f"read of {self._directory} failed: {error}") from error
        return result

    def batches(self, from_offset: int) -> Iterator[tuple[BatchHeader, bytes]]:
        """Every batch from the one containing `from_offset` to the current end, in order."""
        if from_offset == self._next_offset:
            return
        self._check_range(from_offset)
        segments = list(self._segments)
        i = bisect_right([s.base_offset for s in segments], from_offset) - 1
        first = True
        for segment in segments[i:]:
            try:
                if first:
                    bounds = segment.scan_bounds(from_offset)
                    if bounds is None:
                        continue
                    start, limit = bounds
                    first = False
                else:
                    start, limit = 0, segment.size
                for _, view in iter_batches(segment.fd, start, limit):
                    yield parse_header(view), bytes(view)
            except OSError as error:
                raise StorageError(f"read of {self._directory} failed: {error}") from error

    def offset_for_timestamp(self, timestamp: int) -> TimestampOffset | None:
        """The first batch whose maxTimestamp >= `timestamp`: (its maxTimestamp, its base
        offset). Precision is one batch; None if no batch is that late."""
        try:
            for segment in list(self._segments):
                found = segment.find_timestamp(timestamp)
                if found is not None:
                    return found
        except OSError as error:
            raise StorageError(f"read of {self._directory} failed: {error}") from error
        return None

    def max_timestamp(self) -> TimestampOffset | None:
        """The largest batch maxTimestamp in the log and the base offset of the first batch
        that has it (Kafka ListOffsets MAX_TIMESTAMP, per batch); None if no batch has a
        timestamp. Reads only the segments' in-memory maxima."""
        best: Segment | None = None
        for segment in list(self._segments):
            if segment.max_timestamp >= 0 and (
                best is None or segment.max_timestamp > best.max_timestamp
            ):
                best = segment
        if best is None:
            return None
        return TimestampOffset(best.max_timestamp, best.offset_of_max_timestamp)

    # -- durability ------------------------------------------------------------------------

    def flush(self) -> int:
        """fsync everything appended before the call; return the new `flushed_offset`.

        Safe from any thread while the owner appends. Also saves indexes of inactive segments
        and moves the recovery-point checkpoint when the durable end entered a new segment.
        """
        with self._flush_lock:
            if self._closed:
                return self._flushed_offset
            if self._failure is not None:
                raise self._unusable()
            with self._lock:
                end = self._next_offset
                segments = list(self._segments)
                directory_dirty = self._directory_dirty
                self._directory_dirty = False
            try:
                for segment in segments:
                    if segment.flushed_size < segment.size:
                        try:
                            segment.sync()
                        except OSError as error:
                            self._failure = str(error)
                            raise
                for segment in segments[:-1]:
                    if not segment.indexes_saved:
                        segment.save_indexes()
                        directory_dirty = True
                if directory_dirty:
                    fsync_dir(self._directory)
                if end > self._flushed_offset:
                    self._flushed_offset = end
                containing = segments[0].base_offset
                for segment in segments:
                    if segment.base_offset <= end:
                        containing = segment.base_offset
                if containing != self._checkpoint_base:
                    write_recovery_point(self._directory, end)
                    self._checkpoint_base = containing
            except OSError as error:
                with self._lock:
                    self._directory_dirty = self._directory_dirty or directory_dirty
                raise StorageError(f"flush of {self._directory} failed: {error}") from error
            return self._flushed_offset

    # -- retention and truncation ----------------------------------------------------------

    def enforce_retention(self, now_ms: int | None = None) -> int:
        """Delete old segments by time and size (never the active one); return how many.

        Deleted segments are renamed `*.deleted` and unlinked `file_delete_delay_ms` later (by
        a later call, or by `close`), so fetches holding their descriptors can finish.
        """
        now = self._clock() if now_ms is None else now_ms
        try:
            with self._flush_lock:
                self._unlink_retired(now)
                count = deletable_prefix(self._segments, self._config, now)
                if count == 0:
                    return 0
                victims = self._segments[:count]
                with self._lock:
                    del self._segments[:count]
                    del self._bases[:count]
                for segment in victims:
                    segment.retire()
                    self._retired.append((now + self._config.file_delete_delay_ms, segment))
                fsync_dir(self._directory)
                self._unlink_retired(now)
        except OSError as error:
            raise StorageError(f"retention in {self._directory} failed: {error}") from error
        return count

    def _unlink_retired(self, now_ms: int | None) -> None:
        keep = []
        for due, segment in self._retired:
            if now_ms is None or due <= now_ms:
                segment.unlink_retired()
            else:
                keep.append((due, segment))
        self._retired = keep

    def truncate_to(self, offset: int) -> int:
        """Remove every batch from the one containing `offset` on; return the new log end
        offset (the base offset of that batch, or unchanged if `offset` >= log end)."""
        if offset >= self._next_offset:
            return self._next_offset
        self._check_range(offset)
        try:
            with self._flush_lock:
                i = bisect_right(self._bases, offset) - 1
                later = self._segments[i + 1 :]
                with self._lock:
                    del self._segments[i + 1 :]
                    del self._bases[i + 1 :]
                for segment in later:
                    segment.remove_files()
                segment = self._segments[i]
                segment.truncate_to(offset)
                segment.sync()
                fsync_dir(self._directory)
                self._active = segment
                self._next_offset = segment.next_offset
                self._flushed_offset = min(self._flushed_offset, self._next_offset)
                self._checkpoint_base = None
        except OSError as error:
            raise StorageError(f"truncation of {self._directory} failed: {error}") from error
        return self._next_offset

    # -- shutdown --------------------------------------------------------------------------

    def close(self) -> None:
        """Flush, seal and save every index, then write the clean-shutdown marker."""
        with self._flush_lock:
            if self._closed:
                return
            if self._failure is not None:
                self._release()  # no marker: what is on disk must be recovered
                return
            try:
                for segment in self._segments:
                    if segment.flushed_size < segment.size:
                        segment.sync()
                self._active.seal()
                for segment in self._segments:
                    if not segment.indexes_saved:
                        segment.save_indexes()
                fsync_dir(self._directory)
                write_recovery_point(self._directory, self._next_offset)
                write_clean_marker(self._directory, self._next_offset)
                self._flushed_offset = self._next_offset
            except OSError as error:
                raise StorageError(f"close of {self._directory} failed: {error}") from error
            finally:
                self._release()

    def abandon(self) -> None:
        """Close the descriptors without flushing, saving indexes or writing the marker: the
        state a crash leaves (minus unsynced page cache). For tests, and for giving up on a
        log after a `StorageError`."""
        with self._flush_lock:
            self._release()

    def delete(self) -> None:
        """Close without flushing and remove the whole directory."""
        with self._flush_lock:
            self._release()
            shutil.rmtree(self._directory, ignore_errors=True)

    def _release(self) -> None:
        self._closed = True
        for segment in self._segments:
            segment.close()
        self._unlink_retired(None)

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Log({self._directory!r}, start={self.log_start_offset}, "
            f"end={self._next_offset}, segments={len(self._segments)})"
        )
