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

A round is plain callbacks, not a task. The first waiter schedules it for the end of the loop
turn (so every writer of that turn joins it: a produce to ten partitions is one round). Each
log's flush job runs in the pool and posts its result back with one `call_soon_threadsafe`; the
last result of a round settles its waiters and starts the next round at once if writers arrived
meanwhile. At low rates (an AMQP publisher at 1,000
msgs/s gets a round per message) the task, `run_in_executor`'s chained futures and `gather` cost
the event loop about twice as much CPU per round as the work itself (docs/amqp.md, the latency
tail).

With fsync disabled (the unsafe test mode) `wait_durable` returns at once.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

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
        self._running = False
        """A round is scheduled or in flight (its flush jobs have not all reported back)."""
        self._idle: list[asyncio.Future[None]] = []
        """`close` calls waiting for the running round to end."""
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
        if not self._running:  # at the end of this turn, so all of the turn's writers share it
            self._running = True
            loop.call_soon(self._start_round, loop)
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

    # -- rounds ------------------------------------------------------------------------------

    def _start_round(self, loop: asyncio.AbstractEventLoop) -> None:
        """Flush every log with waiters; `round_` is [waiters by log, flushes outstanding]."""
        batch, self._waiters = self._waiters, {}
        if not batch:
            self._end_round()
            return
        self._running = True
        round_: list[Any] = [batch, len(batch)]
        for log in batch:
            self._dirty.discard(log)
            try:
                self._executor.submit(self._flush_job, loop, round_, log)
            except RuntimeError as error:  # the pool is shut down (close() has run)
                self._flushed(loop, round_, log, error)

    def _flush_job(
        self, loop: asyncio.AbstractEventLoop, round_: list[Any], log: Flushable
    ) -> None:
        """In a pool thread: flush, then hand the result to the loop."""
        result: int | BaseException
        try:
            result = log.flush()
        except BaseException as error:
            result = error
        try:
            loop.call_soon_threadsafe(self._flushed, loop, round_, log, result)
        except RuntimeError:  # the loop is closed: nobody is left to wake
            logger.debug("group commit: loop closed before a flush reported back")

    def _flushed(
        self,
        loop: asyncio.AbstractEventLoop,
        round_: list[Any],
        log: Flushable,
        result: int | BaseException,
    ) -> None:
        """On the loop: settle `log`'s waiters of this round; end the round after its last log."""
        for end_offset, future in round_[0][log]:
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            elif result >= end_offset:
                future.set_result(None)
            else:  # cannot happen with a correct log; retry next round
                self._waiters.setdefault(log, []).append((end_offset, future))
        round_[1] -= 1
        if round_[1]:
            return
        self.rounds += 1
        if self._waiters:
            self._start_round(loop)
        else:
            self._end_round()

    def _end_round(self) -> None:
        self._running = False
        idle, self._idle = self._idle, []
        for future in idle:
            if not future.done():
                future.set_result(None)

    async def close(self) -> None:
        """Finish the running round (and any it chains to) and release the threads."""
        while self._running:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._idle.append(future)
            await future
        await self.flush_dirty()
        self._executor.shutdown(wait=True)
