"""`Segment`: one .log file of record batches plus its offset and time indexes.

A segment holds the batches with offsets [base_offset, next_offset), back to back from byte 0,
each exactly as appended (the producer's bytes, baseOffset patched). Only the last segment of a
log (the active one) is appended to; the others are immutable until retention deletes them.

Appends are the hot path: one `os.write` of the whole batch on an O_APPEND descriptor, then a
few integer updates, and an index entry only every `index_interval_bytes`. Nothing looks inside
the batch; the caller passes the header fields the segment needs.

Reads never move a file position: they `pread` 27-byte batch prefixes to find batch boundaries
(starting from the nearest index entry) and return `FileSlice`s of whole batches. `size` is
updated only after a batch is completely written, so a reader that snapshots `size` sees only
whole batches even while the owner thread appends.

Invariants:
- `size` is the end of the last whole batch; the file is never longer except transiently during
  an append (a failed write is truncated back).
- batches are contiguous: each batch's baseOffset is the previous batch's last offset + 1, and
  the first one's is `base_offset`.
- index entries point at batch starts; `indexes_saved` says whether the files on disk match
  memory. Indexes are written only by `save_indexes`: once the segment is inactive, after
  recovery, and at close.

Concurrency: one owner thread appends, reads, rolls and truncates. A flush thread may call
`sync()` on any segment and `save_indexes()` on inactive ones; both touch only state the owner
no longer changes (or, for `sync`, only the kernel's).
"""

from __future__ import annotations

import os
import struct

from firth.fsutil import atomic_write
from firth.log.config import LogConfig
from firth.log.files import (
    DELETED_SUFFIX,
    INDEX_SUFFIX,
    LOG_SUFFIX,
    OFFSET_INDEX_ENTRY_SIZE,
    SEGMENT_SUFFIXES,
    TIME_INDEX_ENTRY_SIZE,
    TIME_INDEX_SUFFIX,
    segment_file_name,
)
from firth.log.offset_index import OffsetIndex
from firth.log.positions import FileSlice, OffsetPosition, TimestampOffset
from firth.log.records_file import iter_batches, read_header, read_span
from firth.log.time_index import NO_TIMESTAMP, TimeIndex
from firth.wire.recordbatch import BatchError, parse_header, validate

_OPEN_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
_OFFSET_ROW = struct.Struct(">ii")
_TIME_ROW = struct.Struct(">qi")


class Segment:
    __slots__ = (
        "_bytes_since_index",
        "_deferred_config",
        "_index_interval",
        "base_offset",
        "created_ms",
        "directory",
        "fd",
        "flushed_size",
        "indexes_full",
        "indexes_saved",
        "max_timestamp",
        "next_offset",
        "offset_index",
        "offset_of_max_timestamp",
        "rolling_base_timestamp",
        "size",
        "time_index",
    )

    def __init__(
        self, directory: str, base_offset: int, fd: int, config: LogConfig, created_ms: int
    ) -> None:
        self.directory = directory
        self.base_offset = base_offset
        self.fd = fd
        self.size = 0
        self.flushed_size = 0
        self.next_offset = base_offset
        self.created_ms = created_ms
        self.offset_index = OffsetIndex(base_offset, config.max_offset_index_entries)
        self.time_index = TimeIndex(base_offset, config.max_time_index_entries)
        self.max_timestamp = NO_TIMESTAMP
        self.offset_of_max_timestamp = base_offset
        self.rolling_base_timestamp = NO_TIMESTAMP
        self._bytes_since_index = 0
        self._index_interval = config.index_interval_bytes
        self._deferred_config: LogConfig | None = None
        """Set while index files are accepted by the probe but not yet read (lazy load)."""
        self.indexes_saved = False
        self.indexes_full = False
        """True once either index has no room: the segment must roll before the next append."""

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def create(cls, directory: str, base_offset: int, config: LogConfig, now_ms: int) -> Segment:
        """A new, empty segment file (which must not exist yet)."""
        path = os.path.join(directory, segment_file_name(base_offset, LOG_SUFFIX))
        fd = os.open(path, _OPEN_FLAGS | os.O_CREAT | os.O_EXCL, 0o644)
        return cls(directory, base_offset, fd, config, now_ms)

    @classmethod
    def open_existing(
        cls, directory: str, base_offset: int, config: LogConfig, now_ms: int
    ) -> Segment:
        """Open a segment's .log; its state stays empty until `load_indexes` or `recover`."""
        path = os.path.join(directory, segment_file_name(base_offset, LOG_SUFFIX))
        fd = os.open(path, _OPEN_FLAGS)
        segment = cls(directory, base_offset, fd, config, now_ms)
        segment.size = os.fstat(fd).st_size
        return segment

    def path(self, suffix: str) -> str:
        return os.path.join(self.directory, segment_file_name(self.base_offset, suffix))

    def update_config(self, config: LogConfig) -> None:
        self._index_interval = config.index_interval_bytes
        self.offset_index.max_entries = config.max_offset_index_entries
        self.time_index.max_entries = config.max_time_index_entries
        if self._deferred_config is not None:
            self._deferred_config = config
        self._refresh_full()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def remove_files(self) -> None:
        """Close and unlink the segment's files (used for segments cut off by recovery)."""
        self.close()
        for suffix in SEGMENT_SUFFIXES:
            try:
                os.unlink(self.path(suffix))
            except FileNotFoundError:
                pass

    def retire(self) -> None:
        """Rename the files to `*.deleted`; the descriptor stays open for in-flight reads."""
        for suffix in SEGMENT_SUFFIXES:
            try:
                os.rename(self.path(suffix), self.path(suffix) + DELETED_SUFFIX)
            except FileNotFoundError:
                pass

    def unlink_retired(self) -> None:
        self.close()
        for suffix in SEGMENT_SUFFIXES:
            try:
                os.unlink(self.path(suffix) + DELETED_SUFFIX)
            except FileNotFoundError:
                pass

    # -- append (owner thread) -------------------------------------------------------------

    def append(
        self, batch: bytearray | memoryview, base_offset: int, next_offset: int, max_timestamp: int
    ) -> None:
        """Write one whole batch (already patched with `base_offset`) at the end."""
        position = self.size
        size = len(batch)
        written = os.write(self.fd, batch)
        if written != size:
            self._finish_short_write(batch, position, written)
        # The bookkeeping of `_account`, inlined: this runs once per produced batch.
        if max_timestamp > self.max_timestamp:
            self.max_timestamp = max_timestamp
            self.offset_of_max_timestamp = base_offset
        if position == 0:
            self.rolling_base_timestamp = max_timestamp
        if self._bytes_since_index > self._index_interval:
            self._add_index_entry(base_offset, position)
            self._bytes_since_index = size
        else:
            self._bytes_since_index += size
        self.indexes_saved = False
        self.size = position + size
        self.next_offset = next_offset

    def _finish_short_write(
        self, batch: bytearray | memoryview, position: int, written: int
    ) -> None:
        view = memoryview(batch)
        try:
            while written < len(view):
                written += os.write(self.fd, view[written:])
        except OSError:
            # Never leave half a batch behind: later appends would land after garbage.
            os.ftruncate(self.fd, position)
            raise

    def _account(self, position: int, base_offset: int, size: int, max_timestamp: int) -> None:
        """Index bookkeeping for a batch at `position`: what `append` does after writing (the
        two must agree, so that rebuilt indexes equal the ones appends built)."""
        if max_timestamp > self.max_timestamp:
            self.max_timestamp = max_timestamp
            self.offset_of_max_timestamp = base_offset
        if position == 0:
            self.rolling_base_timestamp = max_timestamp
        if self._bytes_since_index > self._index_interval:
            self._add_index_entry(base_offset, position)
            self._bytes_since_index = size
        else:
            self._bytes_since_index += size

    def _add_index_entry(self, base_offset: int, position: int) -> None:
        self.offset_index.append(base_offset, position)
        if self.max_timestamp >= 0:
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
        self._refresh_full()

    def _refresh_full(self) -> None:
        self.indexes_full = self.offset_index.is_full or self.time_index.is_full

    def seal(self) -> None:
        """Record the final maximum timestamp in the time index (on roll and close)."""
        if self._deferred_config is not None:
            return  # not loaded yet: the files were sealed before they were saved
        if self.max_timestamp >= 0:
            before = len(self.time_index)
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            if len(self.time_index) != before:
                self.indexes_saved = False

    # -- durability (any thread) -----------------------------------------------------------

    def sync(self) -> None:
        """fdatasync the .log; everything written before the call is then on disk."""
        size = self.size
        os.fdatasync(self.fd)
        if size > self.flushed_size:
            self.flushed_size = size

    def save_indexes(self) -> None:
        """Write both index files by atomic replace (the caller fsyncs the directory)."""
        self._ensure_indexes()
        atomic_write(self.path(INDEX_SUFFIX), self.offset_index.to_bytes(), sync_directory=False)
        atomic_write(self.path(TIME_INDEX_SUFFIX), self.time_index.to_bytes(), sync_directory=False)
        self.indexes_saved = True

    # -- loading and recovery (owner thread, before the log is shared) ---------------------

    def _reset_state(self) -> None:
        self.offset_index.clear()
        self.time_index.clear()
        self.max_timestamp = NO_TIMESTAMP
        self.offset_of_max_timestamp = self.base_offset
        self.rolling_base_timestamp = NO_TIMESTAMP
        self._bytes_since_index = 0
        self.next_offset = self.base_offset
        self.indexes_saved = False
        self.indexes_full = False
        self._deferred_config = None

    def recover(self, *, verify: bool) -> int:
        """Scan the whole .log, rebuilding both indexes; return the bytes cut off the end.

        With `verify`, every batch is validated (length, magic, CRC-32C) and must continue the
        offsets contiguously; the file is truncated (and fsynced) at the first batch that is
        torn or fails. Without it only the framing and offsets are checked, which is enough to
        rebuild indexes of a segment already known good.
        """
        self._reset_state()
        expected = self.base_offset
        valid_end = 0
        file_size = os.fstat(self.fd).st_size
        for position, view in iter_batches(self.fd, 0, file_size):
            try:
                header = validate(view) if verify else parse_header(view)
            except BatchError:
                break
            if header.base_offset != expected or header.last_offset_delta < 0:
                break
            self._account(position, expected, len(view), header.max_timestamp)
            expected = header.next_offset
            valid_end = position + len(view)
        cut = file_size - valid_end
        if cut:
            os.ftruncate(self.fd, valid_end)
            os.fsync(self.fd)
        self.size = valid_end
        self.next_offset = expected
        return cut

    def load_indexes(self, config: LogConfig, *, lazy: bool = False) -> bool:
        """Adopt the index files on disk if they are consistent with the .log.

        First a probe that reads only the files' last entries: sizes are whole rows; the last
        offset index entry points at a batch start carrying its offset; walking batch headers
        from it ends exactly at the end of the .log (which yields `next_offset`) without
        passing a batch that should have been indexed; the time index ends with at least the
        largest timestamp seen on that walk (which yields `max_timestamp`).

        Then the whole files: they parse, both columns strictly increase, positions lie in the
        file, and the first entry points at a batch carrying its offset. With `lazy` this part
        waits for the first lookup (opening a log with many inactive segments then costs a few
        small reads per segment); if it fails then, the indexes are rebuilt from the .log.

        On False the segment's state is unspecified and the caller must `recover`.
        """
        self._reset_state()
        if not self._probe_indexes():
            return False
        self._deferred_config = config
        if lazy:
            return True
        return self._load_deferred_indexes()

    def _probe_indexes(self) -> bool:
        try:
            index_size = os.path.getsize(self.path(INDEX_SUFFIX))
            time_index_size = os.path.getsize(self.path(TIME_INDEX_SUFFIX))
        except FileNotFoundError:
            return False
        if index_size % OFFSET_INDEX_ENTRY_SIZE or time_index_size % TIME_INDEX_ENTRY_SIZE:
            return False
        size = self.size
        last = OffsetPosition(self.base_offset, 0)
        if index_size:
            entry = _read_tail(self.path(INDEX_SUFFIX), OFFSET_INDEX_ENTRY_SIZE)
            if entry is None:
                return False
            relative, position = _OFFSET_ROW.unpack(entry)
            if relative < 0 or not 0 <= position < size:
                return False
            last = OffsetPosition(self.base_offset + relative, position)
        position, expected = last.position, last.offset
        tail_max_timestamp = NO_TIMESTAMP
        while position < size:
            # Append indexes a batch once more than the interval was written since the last
            # entry, so a batch starting further than that from it means entries are missing.
            if position - last.position > self._index_interval:
                return False
            header = read_header(self.fd, position, size)
            if header is None or header.base_offset != expected:
                return False
            position += header.size
            expected = header.next_offset
            tail_max_timestamp = max(tail_max_timestamp, header.max_timestamp)
        final: TimestampOffset | None = None
        if time_index_size:
            entry = _read_tail(self.path(TIME_INDEX_SUFFIX), TIME_INDEX_ENTRY_SIZE)
            if entry is None:
                return False
            timestamp, relative = _TIME_ROW.unpack(entry)
            if not 0 <= relative < expected - self.base_offset:
                return False
            final = TimestampOffset(timestamp, self.base_offset + relative)
        if tail_max_timestamp >= 0 and (final is None or final.timestamp < tail_max_timestamp):
            return False  # the sealed time index must end with the segment's largest timestamp
        self.next_offset = expected
        self._bytes_since_index = size - last.position
        if final is not None:
            self.max_timestamp = final.timestamp
            self.offset_of_max_timestamp = final.offset
        if size:
            header = read_header(self.fd, 0, size)
            if header is None:
                return False
            self.rolling_base_timestamp = header.max_timestamp
        self.flushed_size = size
        self.indexes_saved = True
        return True

    def _load_deferred_indexes(self) -> bool:
        """Read and check the whole index files the probe accepted; True if adopted."""
        config = self._deferred_config
        if config is None:
            return True
        self._deferred_config = None
        try:
            offset_index = OffsetIndex.from_bytes(
                self.base_offset,
                _read_file(self.path(INDEX_SUFFIX)),
                config.max_offset_index_entries,
            )
            time_index = TimeIndex.from_bytes(
                self.base_offset,
                _read_file(self.path(TIME_INDEX_SUFFIX)),
                config.max_time_index_entries,
            )
        except FileNotFoundError:
            return False
        if offset_index is None or time_index is None:
            return False
        if not offset_index.is_consistent(self.size):
            return False
        if not time_index.is_consistent(self.next_offset - self.base_offset):
            return False
        if len(offset_index):
            first = offset_index.entry(0)
            span = read_span(self.fd, first.position, self.size)
            if span is None or span[0] != first.offset:
                return False
        self.offset_index = offset_index
        self.time_index = time_index
        self._refresh_full()
        return True

    def _ensure_indexes(self) -> None:
        """Complete a lazy load before the first lookup; rebuild from the .log if the files
        turn out inconsistent (the segment's data is trusted, so nothing is truncated)."""
        if self._deferred_config is None or self._load_deferred_indexes():
            return
        self.offset_index.clear()
        self.time_index.clear()
        self._bytes_since_index = 0
        self.max_timestamp = NO_TIMESTAMP  # recomputed by the scan, entries with it
        self.offset_of_max_timestamp = self.base_offset
        expected = self.base_offset
        for position, view in iter_batches(self.fd, 0, self.size):
            try:
                header = parse_header(view)
            except BatchError:
                break
            if header.base_offset != expected:
                break
            self._account(position, expected, len(view), header.max_timestamp)
            expected = header.next_offset
        self.seal()
        self.indexes_saved = False  # the next flush (or close) writes the rebuilt files

    def last_batch_valid(self) -> bool:
        """CRC-check the last batch (the cheap tail check of a cleanly closed log)."""
        if self.size == 0:
            return True
        last = self.offset_index.last_entry()
        position = last.position
        while True:
            span = read_span(self.fd, position, self.size)
            if span is None:
                return False
            if position + span[1] == self.size:
                break
            position += span[1]
        data = os.pread(self.fd, span[1], position)
        try:
            validate(data)
        except BatchError:
            return False
        return True

    def truncate_to(self, offset: int) -> None:
        """Remove the batch containing `offset` and everything after it; rebuild indexes."""
        located = self.locate(offset, self.size)
        if located is None:
            return
        os.ftruncate(self.fd, located[0])
        self.recover(verify=False)
        self.flushed_size = min(self.flushed_size, self.size)

    # -- reads (owner thread; immutable parts from any thread) -----------------------------

    def locate(self, offset: int, limit: int) -> tuple[int, int] | None:
        """`(position, size)` of the batch containing `offset`, among bytes below `limit`."""
        self._ensure_indexes()
        position = self.offset_index.lookup(offset).position
        while True:
            span = read_span(self.fd, position, limit)
            if span is None:
                return None
            if span[2] > offset:
                return position, span[1]
            position += span[1]

    def slice_from(self, offset: int | None, max_bytes: int) -> tuple[FileSlice, bool] | None:
        """Whole batches from the one containing `offset` (or from the segment start when
        `offset` is None), at most `max_bytes` of them except that a batch containing `offset`
        is always returned whole. Returns the slice and whether it reaches the segment end;
        None if nothing qualifies."""
        self._ensure_indexes()
        limit = self.size
        if offset is None:
            span = read_span(self.fd, 0, limit)
            if span is None or span[1] > max_bytes:
                return None
            start, end = 0, span[1]
        else:
            located = self.locate(offset, limit)
            if located is None:
                return None
            start, end = located[0], located[0] + located[1]
        target = start + max_bytes
        if target >= limit:
            end = limit
        else:
            # Jump to the last indexed batch start before the budget ends, then step.
            indexed = self.offset_index.lookup_position(target).position
            if indexed > end:
                end = indexed
            while True:
                span = read_span(self.fd, end, limit)
                if span is None or end + span[1] > target:
                    break
                end += span[1]
        return FileSlice(self.fd, start, end - start), end == limit

    def find_timestamp(self, timestamp: int) -> TimestampOffset | None:
        """The first batch whose maxTimestamp >= `timestamp`, as (its maxTimestamp, its base
        offset); None if this segment has none."""
        if self.max_timestamp < timestamp:
            return None
        self._ensure_indexes()
        start = self.time_index.lookup(timestamp - 1).offset
        position = self.offset_index.lookup(start).position
        limit = self.size
        while True:
            header = read_header(self.fd, position, limit)
            if header is None:
                return None
            if header.max_timestamp >= timestamp:
                return TimestampOffset(header.max_timestamp, header.base_offset)
            position += header.size

    def scan_bounds(self, offset: int) -> tuple[int, int] | None:
        """Start position and snapshot end for a sequential read from `offset`."""
        limit = self.size
        located = self.locate(offset, limit)
        if located is None:
            return None
        return located[0], limit


def _read_tail(path: str, size: int) -> bytes | None:
    """The last `size` bytes of a file, or None if it is shorter."""
    with open(path, "rb") as file:
        file.seek(0, os.SEEK_END)
        if file.tell() < size:
            return None
        file.seek(-size, os.SEEK_END)
        data = file.read(size)
    return data if len(data) == size else None


def _read_file(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()
