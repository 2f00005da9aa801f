"""Committed offsets, durable: an append-only record log plus snapshots, with group commit.

Layout under the store's directory (<data_dir>/__consumer_offsets/):

    offsets-<seq>.snapshot   every group's offsets as of the start of log <seq>
    offsets-<seq>.log        records appended since that snapshot
    *.tmp                    a snapshot being written (ignored and removed at load)

Why a private log rather than a Kafka-style internal topic: the state is small (one entry per
group and partition), every read is served from memory, and recovery needs only "replay the
valid prefix"; a dedicated file with CRC-framed records (see `records`) gives that with no
dependency on the topic catalog, and snapshots bound both the file and the replay time.

Durability: `commit`, `delete_group` and `delete_offsets` return only once their record is
fsynced. Records submitted while a write is in flight wait in a queue and go to disk together
with one write and one fsync in a worker thread (group commit), so many committers share the cost
of one fsync. Each batch has one future, shared by every record in it: `submit_commit` hands it
out (the hot path waits on it without a coroutine), and the awaiting methods wait on it through
`asyncio.shield`, so a caller that goes away never cancels its batch-mates' wait. The in-memory
table changes only after the record is durable, in submission order, so a reader never sees an
offset that a crash could take back, and the table always equals a replay of the files.

Compaction: once the current log passes `compact_after_bytes`, the writer switches to a new log
<seq+1>, and a second worker writes the table (as it was at the switch) to
offsets-<seq+1>.snapshot with an atomic replace (tmp, fsync, rename, fsync directory), then
deletes the older files. Load picks the newest valid snapshot, replays the logs from its
sequence on (stopping each at its first torn or corrupt record), writes a fresh snapshot of the
result and starts a new log, so each start leaves exactly two files.

Concurrency: every public method runs in the event-loop thread; only the file writes happen in
the worker threads, and each worker is single-threaded, so writes never interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from firth.broker.groups import records as rec
from firth.broker.groups.errors import GroupStoreError
from firth.broker.groups.results import CommittedOffset, TopicPartition
from firth.fsutil import fsync_dir, write_all

logger = logging.getLogger(__name__)

DIRECTORY_NAME = "__consumer_offsets"
"""The store's folder under the broker's data directory."""

_EMPTY: Mapping[TopicPartition, CommittedOffset] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class LoadReport:
    snapshot_sequence: int | None
    records_replayed: int
    truncated_bytes: int
    corrupt_snapshots: int


class OffsetStore:
    """Every group's committed offsets, in memory, made durable by the files described above."""

    def __init__(
        self,
        directory: Path,
        *,
        fsync: bool = True,
        compact_after_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.directory = directory
        self._fsync = fsync
        self._compact_after_bytes = compact_after_bytes
        self._table: dict[str, dict[TopicPartition, CommittedOffset]] = {}
        self._sequence = 0
        self._fd = -1
        self._log_bytes = 0
        self._rotate_before_next_write = False
        self._pending: list[tuple[bytes, rec.Record]] = []
        self._pending_future: asyncio.Future[None] | None = None
        """The future of the batch `_pending` will be written in (None while it is empty)."""
        self._flusher: asyncio.Task[None] | None = None
        self._snapshotter: asyncio.Task[None] | None = None
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="firth-offsets-log")
        self._snapshot_writer = ThreadPoolExecutor(1, thread_name_prefix="firth-offsets-snap")
        self._closed = False
        self.load_report = LoadReport(None, 0, 0, 0)
        self.fsyncs = 0
        """How many log fsyncs (batches) have completed; for tests and metrics."""

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        fsync: bool = True,
        compact_after_bytes: int = 16 * 1024 * 1024,
    ) -> OffsetStore:
        """Load (recovering from any crash) and get ready to append. Blocking file I/O."""
        store = cls(directory, fsync=fsync, compact_after_bytes=compact_after_bytes)
        store._load()
        return store

    # ---- reads (from memory) ----

    def group_ids(self) -> list[str]:
        return list(self._table)

    def has_offsets(self, group_id: str) -> bool:
        return group_id in self._table

    def offsets(self, group_id: str) -> Mapping[TopicPartition, CommittedOffset]:
        """A read-only view of the group's committed offsets (empty if it has none)."""
        table = self._table.get(group_id)
        return MappingProxyType(table) if table is not None else _EMPTY

    # ---- writes (answered once durable) ----

    async def commit(
        self, group_id: str, entries: Sequence[rec.OffsetEntry], timestamp_ms: int
    ) -> None:
        if entries:
            await asyncio.shield(self.submit_commit(group_id, entries, timestamp_ms))

    def submit_commit(
        self, group_id: str, entries: Sequence[rec.OffsetEntry], timestamp_ms: int
    ) -> asyncio.Future[None]:
        """Queue a commit record; the returned future (shared by the record's whole batch, so
        never cancel it) resolves once the record is fsynced and applied, or fails with
        GroupStoreError. `entries` must not be empty."""
        if self._closed:
            raise GroupStoreError("the offsets store is closed")
        record = rec.CommitRecord(group_id, timestamp_ms, tuple(entries))
        return self._enqueue(rec.encode(record), record)

    async def delete_group(self, group_id: str) -> None:
        await self._submit(rec.DeleteGroupRecord(group_id))

    async def delete_offsets(self, group_id: str, partitions: Iterable[TopicPartition]) -> None:
        keys = tuple(TopicPartition(*key) for key in partitions)
        if keys:
            await self._submit(rec.DeleteOffsetsRecord(group_id, keys))

    async def close(self) -> None:
        """Finish every submitted write, then release the files and workers."""
        self._closed = True
        while self._flusher is not None and not self._flusher.done():
            await self._flusher
        if self._snapshotter is not None:
            with contextlib.suppress(Exception):
                await self._snapshotter
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._writer.shutdown(wait=True)
        self._snapshot_writer.shutdown(wait=True)

    # ---- internals ----

    def _apply(self, record: rec.Record) -> None:
        if isinstance(record, rec.CommitRecord):
            table = self._table.setdefault(record.group_id, {})
            timestamp = record.commit_timestamp_ms
            for topic, partition, offset, leader_epoch, metadata in record.entries:
                table[TopicPartition(topic, partition)] = CommittedOffset(
                    offset, leader_epoch, metadata, timestamp
                )
        elif isinstance(record, rec.DeleteGroupRecord):
            self._table.pop(record.group_id, None)
        elif isinstance(record, rec.DeleteOffsetsRecord):
            existing = self._table.get(record.group_id)
            if existing is not None:
                for key in record.partitions:
                    existing.pop(key, None)
                if not existing:
                    del self._table[record.group_id]

    async def _submit(self, record: rec.Record) -> None:
        if self._closed:
            raise GroupStoreError("the offsets store is closed")
        await asyncio.shield(self._enqueue(rec.encode(record), record))

    def _enqueue(self, encoded: bytes, record: rec.Record) -> asyncio.Future[None]:
        """Add a record to the next batch and return that batch's future."""
        future = self._pending_future
        if future is None:
            loop = asyncio.get_running_loop()
            future = self._pending_future = loop.create_future()
            if self._flusher is None or self._flusher.done():
                self._flusher = loop.create_task(self._flush_pending())
        self._pending.append((encoded, record))
        return future

    async def _flush_pending(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending, []
            future, self._pending_future = self._pending_future, None
            assert future is not None
            data = b"".join([encoded for encoded, _ in batch])
            try:
                await loop.run_in_executor(self._writer, self._write_batch, data)
            except OSError as exc:
                # The log may now end in a partial record: later records go to a new log so
                # that they stay readable behind it.
                self._rotate_before_next_write = True
                logger.error("offsets store write failed: %s", exc)
                if not future.done():
                    future.set_exception(GroupStoreError(str(exc)))
                    future.exception()  # retrieved here: nobody may be waiting any more
                continue
            self.fsyncs += 1
            for _, record in batch:
                self._apply(record)
            if not future.done():
                future.set_result(None)
            if self._log_bytes >= self._compact_after_bytes and (
                self._snapshotter is None or self._snapshotter.done()
            ):
                await self._start_compaction()

    def _write_batch(self, data: bytes) -> None:
        """Worker thread: append and fsync (rotating first after an earlier failure)."""
        if self._rotate_before_next_write:
            self._open_log(self._sequence + 1)
            self._rotate_before_next_write = False
        write_all(self._fd, data)
        if self._fsync:
            os.fdatasync(self._fd)
        self._log_bytes += len(data)

    def _open_log(self, sequence: int) -> None:
        path = self.directory / rec.file_name(sequence, rec.LOG_SUFFIX)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        try:
            write_all(fd, rec.MAGIC)
            if self._fsync:
                os.fsync(fd)
                fsync_dir(self.directory)
        except OSError:
            os.close(fd)
            raise
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = fd
        self._sequence = sequence
        self._log_bytes = len(rec.MAGIC)

    async def _start_compaction(self) -> None:
        loop = asyncio.get_running_loop()
        sequence = self._sequence + 1
        try:
            await loop.run_in_executor(self._writer, self._open_log, sequence)
        except OSError as exc:
            logger.error("offsets store could not start a new log: %s", exc)
            return
        copy = {group: dict(table) for group, table in self._table.items()}
        self._snapshotter = loop.create_task(self._snapshot_in_background(sequence, copy))

    async def _snapshot_in_background(
        self, sequence: int, table: dict[str, dict[TopicPartition, CommittedOffset]]
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._snapshot_writer, self._write_snapshot, sequence, table)
        except OSError as exc:
            logger.error("offsets store snapshot %d failed: %s", sequence, exc)

    def _write_snapshot(
        self, sequence: int, table: Mapping[str, Mapping[TopicPartition, CommittedOffset]]
    ) -> None:
        """Write the snapshot atomically, then delete every file it supersedes."""
        final = self.directory / rec.file_name(sequence, rec.SNAPSHOT_SUFFIX)
        tmp = final.with_name(final.name + rec.TMP_SUFFIX)
        count = 0
        with open(tmp, "wb") as out:
            out.write(rec.MAGIC)
            for group_id, offsets in table.items():
                by_time = sorted(offsets.items(), key=lambda item: item[1].commit_timestamp_ms)
                for timestamp, items in itertools.groupby(
                    by_time, key=lambda item: item[1].commit_timestamp_ms
                ):
                    entries = tuple(
                        rec.OffsetEntry(
                            key.topic,
                            key.partition,
                            value.offset,
                            value.leader_epoch,
                            value.metadata,
                        )
                        for key, value in items
                    )
                    out.write(rec.encode(rec.CommitRecord(group_id, timestamp, entries)))
                    count += 1
            out.write(rec.encode(rec.SnapshotEndRecord(count)))
            out.flush()
            if self._fsync:
                os.fsync(out.fileno())
        os.replace(tmp, final)
        if self._fsync:
            fsync_dir(self.directory)
        for path in self.directory.iterdir():
            parsed = rec.parse_file_name(path.name)
            if parsed is not None and parsed[0] < sequence:
                path.unlink(missing_ok=True)

    def _read_snapshot(self, path: Path) -> list[rec.Record] | None:
        data = path.read_bytes()
        if not data.startswith(rec.MAGIC):
            return None
        records, end = rec.decode(data, len(rec.MAGIC))
        if end != len(data) or not records:
            return None
        last = records[-1]
        if not isinstance(last, rec.SnapshotEndRecord) or last.record_count != len(records) - 1:
            return None
        return records[:-1]

    def _load(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        snapshots: list[int] = []
        logs: list[int] = []
        for path in self.directory.iterdir():
            if path.name.endswith(rec.TMP_SUFFIX):
                path.unlink(missing_ok=True)
                continue
            parsed = rec.parse_file_name(path.name)
            if parsed is None:
                continue
            (snapshots if parsed[1] == rec.SNAPSHOT_SUFFIX else logs).append(parsed[0])
        base: int | None = None
        corrupt = 0
        for sequence in sorted(snapshots, reverse=True):
            path = self.directory / rec.file_name(sequence, rec.SNAPSHOT_SUFFIX)
            loaded = self._read_snapshot(path)
            if loaded is None:
                corrupt += 1
                logger.error("offsets snapshot %s is corrupt; trying an older one", path)
                continue
            for record in loaded:
                self._apply(record)
            base = sequence
            break
        replayed = 0
        truncated = 0
        for sequence in sorted(logs):
            if base is not None and sequence < base:
                continue
            path = self.directory / rec.file_name(sequence, rec.LOG_SUFFIX)
            data = path.read_bytes()
            if not data.startswith(rec.MAGIC):
                truncated += len(data)
                continue
            records, end = rec.decode(data, len(rec.MAGIC))
            for record in records:
                self._apply(record)
            replayed += len(records)
            if end != len(data):
                truncated += len(data) - end
                logger.warning(
                    "offsets log %s: dropped a torn or corrupt tail of %d bytes",
                    path,
                    len(data) - end,
                )
        next_sequence = max([*snapshots, *logs, 0]) + 1
        self._write_snapshot(next_sequence, self._table)
        self._open_log(next_sequence)
        self.load_report = LoadReport(base, replayed, truncated, corrupt)
