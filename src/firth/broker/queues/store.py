"""A durable queue on disk: a log of its messages plus a journal of what became of them.

Layout of one queue's folder::

    <queue dir>/gen-00000003/log/...     the messages: a firth.log.Log, one batch per message
    <queue dir>/gen-00000003/journal     settle journal: fixed 13-byte entries, appended

A journal entry is ``u8 kind, u64 log offset, u32 count``:

- ``SETTLED``: the message was acknowledged, dropped or dead-lettered; it is not loaded again;
- ``DELIVERED``: handed to a consumer (so after a restart it comes back redelivered; if no
  SETTLED or RETURNED follows, the delivery was in flight when the broker stopped, which
  counts as one more return);
- ``RETURNED``: it came back unsettled; ``count`` is its delivery count (x-delivery-count),
  which therefore survives restarts.

Writes are buffered and made once per event-loop turn (``write_pending``), and in any case
before the front end writes to a socket (so a delivery never leaves before its DELIVERED
entry): the messages published to the queue in that turn become one record batch (one write,
one CRC), then the journal entries are written (no fsync: after a crash a lost settle means a redelivery, never a
loss). A message's offset is known when it is appended (the log's end plus what is buffered),
so a publisher can wait for the group commit to pass it at once; the group commit's flush
finds the batch written, since the buffer is written in the same loop turn, before any flush
round can look.

Reclaiming space (compaction): once a queue's log has grown past ``COMPACT_BYTES`` and at
most half of the messages in it are still live, the store writes the live ones (in order,
with their delivery state) into a new generation ``gen-N+1`` and deletes ``gen-N``. This is
how settled messages leave the disk: a generation is the unit of deletion, as a segment is in
a topic. Crash safety: the new generation carries a ``compacting`` marker until its log and
journal are complete and fsynced (it gets the marker in a scratch folder, renamed into place,
so no ``gen-`` folder ever lacks it while unfinished); removing the marker is the commit.
Opening deletes marked generations and keeps the newest complete one. A marked generation is
deleted by renaming it to the scratch folder first, so a crash while deleting cannot leave a
partial one that looks complete. A compaction that fails before its commit closes what it
opened and removes the new generation: the store goes on with the old one. Live messages get
new offsets; the ``QueuedMessage`` objects are updated in place, so unacknowledged deliveries
settle at their new offsets. Publishers still waiting for an fsync of the old log are
answered by its close (which flushes it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
from pathlib import Path

from firth.broker.queues.message import (
    QueuedMessage,
    build_batch,
    decode_batch_values,
    decode_value,
)
from firth.fsutil import fsync_dir, write_all
from firth.log import Log, LogConfig

SETTLED = 1
DELIVERED = 2
RETURNED = 3
_ENTRY = struct.Struct(">BQI")
MAX_BATCH_BYTES = 1024 * 1024
"""A turn's buffered messages are written early once they exceed this."""
COMPACT_BYTES = 64 * 1024 * 1024
"""A log larger than this is compacted once at most half of its messages are live."""
COMPACT_CHECK_EVERY = 1024
"""Settles between two compaction checks (a check sums segment sizes)."""
COMPACTING = "compacting"
"""Marker file in a generation whose compaction has not committed: ``open`` discards it."""
SCRATCH = "scratch"
"""Not a generation: a new one is made here before it takes its name, one being discarded is
moved here before it is deleted; whatever ``open`` finds here is garbage."""

LOG_CONFIG = LogConfig(
    segment_bytes=64 * 1024 * 1024,
    retention_ms=-1,
    retention_bytes=-1,
    max_message_bytes=256 * 1024 * 1024,
    segment_ms=365 * 24 * 3600 * 1000,
)


class QueueStore:
    """The on-disk half of one durable queue (see the module docstring)."""

    def __init__(self, directory: Path, *, fsync: bool = True) -> None:
        self.directory = directory
        self.fsync = fsync
        self.generation = 0
        self.log: Log | None = None
        self._journal_fd = -1
        self._pending = bytearray()
        self._batch: list[QueuedMessage] = []
        self._batch_bytes = 0
        self.live = 0
        """Stored messages not yet settled."""
        self._settles = 0

    # -- opening -----------------------------------------------------------------------------------

    def open(self) -> list[QueuedMessage]:
        """Open (creating if needed) and return the live messages in log order."""
        self.directory.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.directory / SCRATCH, ignore_errors=True)
        generations = []
        for path in sorted(self.directory.iterdir()):
            if not path.name.startswith("gen-"):
                continue
            if (path / COMPACTING).exists():  # an unfinished compaction: the old one stands
                self._set_aside(path)
                continue
            generations.append(int(path.name[4:]))
        generations.sort()
        self.generation = generations[-1] if generations else 0
        for old in generations[:-1]:
            shutil.rmtree(self._gen_dir(old), ignore_errors=True)
        return self._open_generation()

    def _gen_dir(self, generation: int) -> Path:
        return self.directory / f"gen-{generation:08d}"

    def _open_generation(self) -> list[QueuedMessage]:
        gen_dir = self._gen_dir(self.generation)
        gen_dir.mkdir(parents=True, exist_ok=True)
        self.log = Log.open(gen_dir / "log", LOG_CONFIG)
        journal = gen_dir / "journal"
        settled: set[int] = set()
        delivered: set[int] = set()
        returns: dict[int, int] = {}
        if journal.exists():
            data = journal.read_bytes()
            usable = len(data) - len(data) % _ENTRY.size
            in_flight: set[int] = set()
            for kind, offset, count in _ENTRY.iter_unpack(data[:usable]):
                if kind == SETTLED:
                    settled.add(offset)
                    in_flight.discard(offset)
                elif kind == DELIVERED:
                    delivered.add(offset)
                    in_flight.add(offset)
                elif kind == RETURNED:
                    returns[offset] = count
                    delivered.add(offset)
                    in_flight.discard(offset)
            # Delivered and neither settled nor returned when the broker stopped: the
            # delivery failed with its connection, which counts as a return (as in RabbitMQ).
            for offset in in_flight:
                returns[offset] = returns.get(offset, 0) + 1
            if usable != len(data):
                os.truncate(journal, usable)
        self._journal_fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        messages: list[QueuedMessage] = []
        for header, batch in self.log.batches(self.log.log_start_offset):
            for delta, value in decode_batch_values(batch):
                offset = header.base_offset + delta
                if offset in settled:
                    continue
                message = decode_value(value)
                message.offset = offset
                message.returns = returns.get(offset, 0)
                message.redelivered = offset in delivered
                messages.append(message)
        self.live = len(messages)
        return messages

    # -- writing -----------------------------------------------------------------------------------

    def append(self, message: QueuedMessage) -> int:
        """Buffer ``message`` for this turn's batch (sets its offset); returns the log end
        offset to wait durable for. The caller makes sure ``write_pending`` runs this turn."""
        assert self.log is not None
        batch = self._batch
        message.offset = self.log.log_end_offset + len(batch)
        batch.append(message)
        self.live += 1
        self._batch_bytes += len(message.body) + len(message.properties)
        if self._batch_bytes > MAX_BATCH_BYTES:
            self._write_batch()
        return message.offset + 1

    def _write_batch(self) -> None:
        if not self._batch or self.log is None or self.log.closed:
            self._batch.clear()
            return
        messages, self._batch = self._batch, []
        self._batch_bytes = 0
        batch, header = build_batch(messages)
        self.log.append(batch, header)

    def note(self, kind: int, message: QueuedMessage) -> None:
        if message.offset >= 0:
            self._pending += _ENTRY.pack(kind, message.offset, message.returns)
            if kind == SETTLED:
                self.live -= 1
                self._settles += 1

    def write_pending(self) -> None:
        """Write this turn's messages (one batch), then its journal entries."""
        self._write_batch()
        self.write_journal()

    def write_journal(self) -> None:
        """Write buffered journal entries (page cache; no fsync)."""
        if self._pending and self._journal_fd >= 0:
            data, self._pending = bytes(self._pending), bytearray()
            write_all(self._journal_fd, data)

    def wants_compaction(self) -> bool:
        """Cheap most of the time: looks at the log only every COMPACT_CHECK_EVERY settles,
        or when nothing is live."""
        if self.live and self._settles < COMPACT_CHECK_EVERY:
            return False
        self._settles = 0
        log = self.log
        if log is None or log.closed or log.size_bytes < COMPACT_BYTES:
            return False
        stored = log.log_end_offset - log.log_start_offset + len(self._batch)
        return self.live * 2 <= stored

    def compact(self, live: list[QueuedMessage], in_flight: frozenset[int] = frozenset()) -> None:
        """Rewrite ``live`` (every stored, unsettled message) into a new generation;
        ``in_flight`` holds the ``seq`` of those delivered and not yet settled.

        If a step fails before the new generation is committed, what it opened is closed, the
        new generation set aside and removed, and the error raised: the store goes on with the
        old generation, untouched. (Should the set-aside fail too, after a commit whose
        fsync failed, a restart may take the new generation and miss what the old one gets
        after this.) Once committed, the store switches to the new one even if closing the
        old one then fails."""
        assert self.log is not None
        self.write_pending()
        ordered = sorted((m for m in live if m.offset >= 0), key=lambda m: m.offset)
        new_dir = self._gen_dir(self.generation + 1)
        scratch = self.directory / SCRATCH
        new_log: Log | None = None
        fd = -1
        try:
            self._set_aside(new_dir)  # a leftover, if any
            scratch.mkdir()
            (scratch / COMPACTING).touch()
            if self.fsync:
                fsync_dir(scratch)
            os.rename(scratch, new_dir)  # so gen-N+1 never exists without its marker
            new_log = Log.open(new_dir / "log", LOG_CONFIG)
            offsets = _copy_messages(ordered, new_log)
            fd = os.open(new_dir / "journal", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            write_all(fd, _delivery_state(ordered, offsets, in_flight))
            if self.fsync:
                os.fsync(fd)
                new_log.flush()
                fsync_dir(new_dir)  # the journal's entry
                fsync_dir(self.directory)  # gen-N+1's entry
            os.unlink(new_dir / COMPACTING)  # the commit
            if self.fsync:
                fsync_dir(new_dir)  # the marker's removal, before gen-N goes
        except BaseException:
            # The first error is the one raised; these only tidy up after it.
            with contextlib.suppress(OSError):
                if fd >= 0:
                    os.close(fd)
            with contextlib.suppress(OSError):
                if new_log is not None:
                    new_log.abandon()
            with contextlib.suppress(OSError):  # a disk refusing even this: see the docstring
                self._set_aside(new_dir)
            raise
        old_log, old_fd, old_dir = self.log, self._journal_fd, self._gen_dir(self.generation)
        for message, offset in zip(ordered, offsets, strict=True):
            message.offset = offset
        self.generation += 1
        self.log = new_log
        self._journal_fd = fd
        self.live = len(ordered)
        try:
            if old_fd >= 0:
                os.close(old_fd)
        finally:
            try:
                old_log.close()  # answers publishers still waiting for its fsync
            finally:
                shutil.rmtree(old_dir, ignore_errors=True)  # gen-N+1 is newer: safe if torn

    def _set_aside(self, gen_dir: Path) -> None:
        """Remove a generation that is not committed (or whose commit is undone) so that no
        crash can leave part of it under its ``gen-`` name, complete-looking: rename it to
        SCRATCH first (atomic), make that durable, then delete it."""
        scratch = self.directory / SCRATCH
        shutil.rmtree(scratch, ignore_errors=True)
        if gen_dir.exists():
            os.rename(gen_dir, scratch)
            if self.fsync:
                fsync_dir(self.directory)
            shutil.rmtree(scratch, ignore_errors=True)

    # -- closing -----------------------------------------------------------------------------------

    def _close_files(self) -> None:
        if self._journal_fd >= 0:
            os.close(self._journal_fd)
            self._journal_fd = -1
        if self.log is not None and not self.log.closed:
            self.log.close()

    def close(self) -> None:
        self.write_pending()
        self._close_files()

    def delete(self) -> None:
        self._pending.clear()
        self._batch.clear()
        if self._journal_fd >= 0:
            os.close(self._journal_fd)
            self._journal_fd = -1
        if self.log is not None and not self.log.closed:
            self.log.abandon()
        shutil.rmtree(self.directory, ignore_errors=True)


# -- compaction steps ------------------------------------------------------------------------------


def _copy_messages(ordered: list[QueuedMessage], log: Log) -> list[int]:
    """Append ``ordered`` to ``log`` in batches of about MAX_BATCH_BYTES; their new offsets."""
    offsets: list[int] = []
    chunk: list[QueuedMessage] = []
    size = 0
    for message in [*ordered, None]:
        if message is not None:
            chunk.append(message)
            size += len(message.body) + len(message.properties)
        if chunk and (message is None or size > MAX_BATCH_BYTES):
            batch, header = build_batch(chunk)
            base = log.append(batch, header)
            offsets.extend(range(base, base + len(chunk)))
            chunk, size = [], 0
    return offsets


def _delivery_state(
    ordered: list[QueuedMessage], offsets: list[int], in_flight: frozenset[int]
) -> bytes:
    """The new generation's journal: each message's delivery state so far, at its new offset."""
    journal = bytearray()
    for message, offset in zip(ordered, offsets, strict=True):
        if message.returns or message.redelivered:
            journal += _ENTRY.pack(RETURNED, offset, message.returns)
        if message.seq in in_flight:  # delivered now: a crash counts one more return
            journal += _ENTRY.pack(DELIVERED, offset, 0)
    return bytes(journal)
