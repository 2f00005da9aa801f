"""Idempotent producer state: producer-id allocation and per-partition sequence checks.

Kafka's idempotent producer tags every batch with (producerId, producerEpoch, baseSequence). The
broker keeps, per partition and producer, the epoch and the last five batches it appended, so
that a retried batch is answered with the offset it got the first time instead of being written
twice, and a gap in sequence numbers is refused with OUT_OF_ORDER_SEQUENCE_NUMBER.

The rules, applied before a batch is appended:

| state of the producer in this partition | batch                         | outcome                       |
|-----------------------------------------|-------------------------------|-------------------------------|
| unknown (never seen, or expired)        | any sequence                  | accept (state may have expired)|
| known, epoch E                          | epoch < E                     | INVALID_PRODUCER_EPOCH        |
| known, epoch E                          | epoch > E, sequence 0         | accept, new epoch             |
| known, epoch E                          | epoch > E, sequence != 0      | OUT_OF_ORDER_SEQUENCE_NUMBER  |
| known, epoch E                          | same (first, last) as cached  | duplicate: original offset    |
| known, epoch E                          | first == last appended + 1    | accept                        |
| known, epoch E                          | anything else                 | OUT_OF_ORDER_SEQUENCE_NUMBER  |

State survives restart: each partition's table is snapshotted (atomic replace) with the log end
offset it covers, and on start the batches after that offset are replayed from the log. A
snapshot that claims more than the log holds (the log lost an unflushed tail) is discarded and
the whole log replayed.

Producer ids are handed out from blocks reserved durably in `producer-ids` (a checkpoint of the
next free block), so an id is never handed out twice, even across kill -9.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from firth.fsutil import atomic_write
from firth.wire.recordbatch import NO_PRODUCER_ID, BatchHeader

CACHED_BATCHES = 5
"""Batches remembered per producer and partition, as Kafka (max.in.flight <= 5 for idempotence)."""

SEQUENCE_MODULUS = 1 << 31

ID_BLOCK_SIZE = 1000


class ProducerStateError(Exception):
    """A batch refused by the sequence rules; `code` is the Kafka error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


INVALID_PRODUCER_EPOCH = 47
OUT_OF_ORDER_SEQUENCE_NUMBER = 45


@dataclass(frozen=True, slots=True)
class AppendedBatch:
    first_sequence: int
    last_sequence: int
    base_offset: int


@dataclass(slots=True)
class ProducerEntry:
    epoch: int
    batches: deque[AppendedBatch] = field(default_factory=lambda: deque(maxlen=CACHED_BATCHES))
    last_timestamp: int = -1


class PartitionProducers:
    """Sequence state of every idempotent producer writing to one partition.

    Not thread-safe: the owner (the partition, on the event loop) calls check() then record()
    around each append without yielding in between.
    """

    __slots__ = ("dirty", "entries")

    def __init__(self) -> None:
        self.entries: dict[int, ProducerEntry] = {}
        self.dirty = False

    def check(self, header: BatchHeader) -> int | None:
        """Apply the sequence rules. Returns the original base offset of a duplicate, None to
        append, or raises ProducerStateError."""
        if header.producer_id == NO_PRODUCER_ID:
            return None
        entry = self.entries.get(header.producer_id)
        if entry is None:
            return None
        if header.producer_epoch < entry.epoch:
            raise ProducerStateError(
                INVALID_PRODUCER_EPOCH,
                f"producer {header.producer_id} epoch {header.producer_epoch} is older than the "
                f"current epoch {entry.epoch}",
            )
        if header.producer_epoch > entry.epoch:
            if header.base_sequence != 0:
                raise ProducerStateError(
                    OUT_OF_ORDER_SEQUENCE_NUMBER,
                    f"new epoch {header.producer_epoch} must start at sequence 0, "
                    f"got {header.base_sequence}",
                )
            return None
        first, last = header.base_sequence, header.last_sequence
        for batch in entry.batches:
            if batch.first_sequence == first and batch.last_sequence == last:
                return batch.base_offset
        if entry.batches:
            expected = (entry.batches[-1].last_sequence + 1) % SEQUENCE_MODULUS
            if first != expected:
                raise ProducerStateError(
                    OUT_OF_ORDER_SEQUENCE_NUMBER,
                    f"producer {header.producer_id}: expected sequence {expected}, got {first}",
                )
        return None

    def record(self, header: BatchHeader, base_offset: int) -> None:
        """Remember an appended batch (after check() allowed it)."""
        if header.producer_id == NO_PRODUCER_ID:
            return
        entry = self.entries.get(header.producer_id)
        if entry is None or header.producer_epoch > entry.epoch:
            entry = ProducerEntry(epoch=header.producer_epoch)
            self.entries[header.producer_id] = entry
        entry.batches.append(AppendedBatch(header.base_sequence, header.last_sequence, base_offset))
        entry.last_timestamp = header.max_timestamp
        self.dirty = True

    def replay(self, batches: Iterable[BatchHeader]) -> None:
        """Rebuild state from stored batch headers (base offsets already assigned)."""
        for header in batches:
            if header.producer_id != NO_PRODUCER_ID and not header.is_control:
                self.record(header, header.base_offset)

    def to_json(self, offset: int) -> bytes:
        return json.dumps(
            {
                "version": 1,
                "offset": offset,
                "producers": {
                    str(pid): {
                        "epoch": entry.epoch,
                        "last_timestamp": entry.last_timestamp,
                        "batches": [
                            [b.first_sequence, b.last_sequence, b.base_offset]
                            for b in entry.batches
                        ],
                    }
                    for pid, entry in self.entries.items()
                },
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> tuple[PartitionProducers, int]:
        """Decode a snapshot; returns the table and the log offset it covers."""
        doc = json.loads(data)
        table = cls()
        for pid, raw in doc["producers"].items():
            entry = ProducerEntry(epoch=int(raw["epoch"]), last_timestamp=raw["last_timestamp"])
            for first, last, base in raw["batches"]:
                entry.batches.append(AppendedBatch(first, last, base))
            table.entries[int(pid)] = entry
        return table, int(doc["offset"])

    def expire(self, now_ms: int, expiration_ms: int) -> None:
        """Forget producers silent for longer than `expiration_ms` (Kafka's
        producer.id.expiration.ms), bounding memory."""
        stale = [
            pid
            for pid, entry in self.entries.items()
            if entry.last_timestamp >= 0 and now_ms - entry.last_timestamp > expiration_ms
        ]
        for pid in stale:
            del self.entries[pid]
        if stale:
            self.dirty = True


class ProducerIdAllocator:
    """Hands out producer ids from durably reserved blocks; tracks each id's current epoch so
    InitProducerId can bump it (KIP-360)."""

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self._path = path
        self._fsync = fsync
        try:
            reserved = int(path.read_text().strip())
        except FileNotFoundError:
            reserved = 0
        self._next = reserved
        self._block_end = reserved
        self.epochs: dict[int, int] = {}

    def allocate(self) -> int:
        if self._next >= self._block_end:
            self._block_end = self._next + ID_BLOCK_SIZE
            atomic_write(self._path, str(self._block_end).encode(), fsync=self._fsync)
        pid = self._next
        self._next += 1
        self.epochs[pid] = 0
        return pid

    def bump_epoch(self, pid: int, epoch: int) -> tuple[int, int] | None:
        """Next epoch for a known (pid, epoch); None if the pair is not current."""
        current = self.epochs.get(pid)
        if current is None or current != epoch:
            return None
        if epoch >= 32766:
            new_pid = self.allocate()
            return new_pid, 0
        self.epochs[pid] = epoch + 1
        return pid, epoch + 1
