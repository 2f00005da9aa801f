"""A topic partition: its log, its idempotent-producer table and its long-poll waiters.

The partition is the broker core's unit of ordering. All appends run on the event loop thread,
one after another, so the producer sequence check and the append never interleave. Fetchers
waiting for data (Kafka's long poll with min_bytes/max_wait) register a future that the next
append resolves; they re-read the log themselves.

High watermark: Firth is a single replica, so every appended offset is committed at once and
the high watermark equals the log end offset, as in a one-broker Kafka. Durability is a separate
question answered by the group commit (acks=all waits for the fsync).
"""

from __future__ import annotations

import asyncio

from firth.broker.producers import PartitionProducers
from firth.log import Log
from firth.wire.recordbatch import BatchHeader


class Partition:
    __slots__ = ("_waiters", "index", "log", "producers", "topic")

    def __init__(self, topic: str, index: int, log: Log, producers: PartitionProducers) -> None:
        self.topic = topic
        self.index = index
        self.log = log
        self.producers = producers
        self._waiters: set[asyncio.Future[None]] = set()

    def __repr__(self) -> str:
        return f"Partition({self.topic}-{self.index})"

    @property
    def high_watermark(self) -> int:
        return self.log.log_end_offset

    def append(self, batch: bytearray | memoryview, header: BatchHeader) -> tuple[int, bool]:
        """Append one validated client batch (a writable buffer: its baseOffset is patched in
        place). Returns (base offset, was a duplicate).

        Raises ProducerStateError for a batch the sequence rules refuse.
        """
        original = self.producers.check(header)
        if original is not None:
            return original, True
        base_offset = self.log.append(batch, header)
        self.producers.record(header, base_offset)
        if self._waiters:
            waiters, self._waiters = self._waiters, set()
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        return base_offset, False

    def data_waiter(self) -> asyncio.Future[None]:
        """A future resolved by the next append to this partition."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(future)
        return future

    def discard_waiter(self, future: asyncio.Future[None]) -> None:
        """Forget a waiter whose fetch finished for another reason."""
        self._waiters.discard(future)

    def wake_all(self) -> None:
        """Resolve all waiters (topic deleted, broker stopping)."""
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
