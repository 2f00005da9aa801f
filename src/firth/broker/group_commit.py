"""Group commit: one fsync shared by every append waiting to be durable.

An acknowledged write (Kafka acks=all, an AMQP publisher confirm for a persistent message) must
be on disk before it is acknowledged. One fdatasync per message caps out near 5,000/s on this
class of machine; sharing each fsync among all writers that arrived while the previous one ran
takes durable throughput to the disk's bandwidth instead.

The loop: a writer appends (on the event loop thread), then awaits `wait_durable(log, end)`.
If no flush round is running, one starts. A round takes every log with waiters, fsyncs them in
worker threads (in parallel: fsyncs of different files overlap), and wakes each waiter whose end
offset the log's flushed offset now covers. Writers that arrive during a round wait for the next
round, which starts as soon as this one ends. So at most one round runs at a time and a writer
waits at most two fsyncs.

With fsync disabled (the unsafe test mode) `wait_durable` returns at once.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

logger = logging.getLogger(__name__)


class Flushable(Protocol):
    @property
    def flushed_offset(self) -> int: ...

    def flush(self) -> int: ...


class GroupCommit:
    def __init__(self, *, enabled: bool = True, threads: int = 4) -> None:
        self.enabled = enabled
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fsync")
        self._waiters: dict[Flushable, list[tuple[int, asyncio.Future[None]]]] = {}
        self._dirty: set[Flushable] = set()
        self._round: asyncio.Task[None] | None = None
        self.rounds = 0
        """Flush rounds completed; with `waits` it tells how many writes shared each fsync."""
        self.waits = 0

    def durable_future(self, log: Flushable, end_offset: int) -> asyncio.Future[None] | None:
        """A future resolved once every offset below `end_offset` of `log` is on disk (or
        failed with the flush's error); None if they already are.

        A plain future rather than a coroutine, so that a request waiting for several
        partitions gathers futures without wrapping each in a task.
        """
        if not self.enabled or log.flushed_offset >= end_offset:
            return None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        waiters = self._waiters.get(log)
        if waiters is None:
            self._waiters[log] = [(end_offset, future)]
        else:
            waiters.append((end_offset, future))
        self.waits += 1
        if self._round is None:
            self._round = loop.create_task(self._run())
        return future

    async def wait_durable(self, log: Flushable, end_offset: int) -> None:
        """Return once every offset below `end_offset` of `log` is on disk."""
        future = self.durable_future(log, end_offset)
        if future is not None:
            await future

    def mark_dirty(self, log: Flushable) -> None:
        """Note a log with unflushed appends nobody waits for; `flush_dirty` syncs it later."""
        if self.enabled:
            self._dirty.add(log)

    async def flush_dirty(self) -> None:
        """Background flush of logs written without a durability wait (acks=0/1)."""
        dirty, self._dirty = self._dirty, set()
        if dirty:
            loop = asyncio.get_running_loop()
            await asyncio.gather(
                *(loop.run_in_executor(self._executor, log.flush) for log in dirty),
                return_exceptions=True,
            )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiters:
                batch, self._waiters = self._waiters, {}
                logs = list(batch)
                for log in logs:
                    self._dirty.discard(log)
                results = await asyncio.gather(
                    *(loop.run_in_executor(self._executor, log.flush) for log in logs),
                    return_exceptions=True,
                )
                self.rounds += 1
                for log, result in zip(logs, results, strict=True):
                    for end_offset, future in batch[log]:
                        if future.done():
                            continue
                        if isinstance(result, BaseException):
                            future.set_exception(result)
                        elif result >= end_offset:
                            future.set_result(None)
                        else:  # cannot happen with a correct log; retry next round
                            self._waiters.setdefault(log, []).append((end_offset, future))
        finally:
            self._round = None

    async def close(self) -> None:
        """Finish the running round and release the threads."""
        while self._round is not None:
            await asyncio.shield(self._round)
        await self.flush_dirty()
        self._executor.shutdown(wait=True)
