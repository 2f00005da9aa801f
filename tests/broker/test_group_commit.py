"""GroupCommit: waiters wake once a flush covers their offset, writers arriving during a round
share the next one, flush errors reach the round's waiters, different logs flush in parallel,
and close finishes the running round."""

from __future__ import annotations

import asyncio
import threading

import pytest

from firth.broker.group_commit import GroupCommit

TIMEOUT = 10.0


class FakeLog:
    """A log whose flush makes everything appended so far durable; optionally gated so a test
    can hold a flush in flight, or failing."""

    def __init__(self, gated: bool = False) -> None:
        self.end = 0
        self._flushed = 0
        self.flushes = 0
        self.gate = threading.Event()
        if not gated:
            self.gate.set()
        self.entered = threading.Semaphore(0)
        self.error: OSError | None = None
        self.short = 0
        """Flushes that still report the old flushed offset (a misbehaving log)."""

    @property
    def flushed_offset(self) -> int:
        return self._flushed

    def flush(self) -> int:
        end = self.end
        self.entered.release()
        assert self.gate.wait(TIMEOUT)
        self.flushes += 1
        if self.error is not None:
            raise self.error
        if self.short:
            self.short -= 1
            return self._flushed
        self._flushed = end
        return end


async def entered(log: FakeLog) -> None:
    """Wait until a flush of `log` has started."""
    assert await asyncio.to_thread(log.entered.acquire, True, TIMEOUT)


def test_nothing_to_wait_for() -> None:
    async def main() -> None:
        log = FakeLog()
        log.end = log._flushed = 5
        commit = GroupCommit()
        assert commit.durable_future(log, 5) is None
        disabled = GroupCommit(enabled=False)
        assert disabled.durable_future(log, 9) is None
        await commit.close()
        await disabled.close()
        assert log.flushes == 0

    asyncio.run(main())


def test_waiter_wakes_after_a_flush_covering_its_offset() -> None:
    async def main() -> None:
        log = FakeLog()
        commit = GroupCommit()
        log.end = 3
        await asyncio.wait_for(commit.wait_durable(log, 3), TIMEOUT)
        assert log.flushed_offset == 3
        assert (commit.rounds, commit.waits, log.flushes) == (1, 1, 1)
        await commit.close()

    asyncio.run(main())


def test_writers_arriving_during_a_round_share_the_next_one() -> None:
    async def main() -> None:
        log = FakeLog(gated=True)
        commit = GroupCommit()
        log.end = 1
        first = commit.durable_future(log, 1)
        assert first is not None
        await entered(log)  # round 1 is flushing offsets below 1
        log.end = 3
        second = commit.durable_future(log, 2)
        third = commit.durable_future(log, 3)
        assert second is not None and third is not None
        assert not first.done()
        log.gate.set()
        await asyncio.wait_for(asyncio.gather(first, second, third), TIMEOUT)
        assert commit.rounds == 2
        assert log.flushes == 2
        await commit.close()

    asyncio.run(main())


def test_a_flush_error_fails_that_rounds_waiters_and_the_next_round_works() -> None:
    async def main() -> None:
        log = FakeLog()
        log.error = OSError(5, "EIO")
        commit = GroupCommit()
        log.end = 1
        with pytest.raises(OSError, match="EIO"):
            await asyncio.wait_for(commit.wait_durable(log, 1), TIMEOUT)
        log.error = None
        await asyncio.wait_for(commit.wait_durable(log, 1), TIMEOUT)
        assert commit.rounds == 2
        await commit.close()

    asyncio.run(main())


def test_a_flush_that_falls_short_is_retried_in_the_next_round() -> None:
    async def main() -> None:
        log = FakeLog()
        log.short = 1
        commit = GroupCommit()
        log.end = 4
        await asyncio.wait_for(commit.wait_durable(log, 4), TIMEOUT)
        assert (commit.rounds, log.flushes) == (2, 2)
        await commit.close()

    asyncio.run(main())


def test_logs_of_one_round_flush_in_parallel() -> None:
    async def main() -> None:
        a, b = FakeLog(gated=True), FakeLog(gated=True)
        a.end = b.end = 1
        commit = GroupCommit()
        fa, fb = commit.durable_future(a, 1), commit.durable_future(b, 1)
        assert fa is not None and fb is not None
        await entered(a)
        await entered(b)  # both flushes are in flight at once
        b.gate.set()
        await asyncio.wait_for(fb, TIMEOUT)
        assert not fa.done() and commit.rounds == 0  # the round ends with its last log
        a.gate.set()
        await asyncio.wait_for(fa, TIMEOUT)
        assert commit.rounds == 1
        await commit.close()

    asyncio.run(main())


def test_close_finishes_the_running_round_then_flushes_dirty_logs() -> None:
    async def main() -> None:
        waited, dirty = FakeLog(gated=True), FakeLog()
        waited.end = dirty.end = 2
        commit = GroupCommit()
        commit.mark_dirty(dirty)
        future = commit.durable_future(waited, 2)
        assert future is not None
        await entered(waited)
        closing = asyncio.ensure_future(commit.close())
        await asyncio.sleep(0)
        assert not closing.done()
        waited.gate.set()
        await asyncio.wait_for(closing, TIMEOUT)
        assert future.done() and future.exception() is None
        assert dirty.flushed_offset == 2

    asyncio.run(main())


def test_after_close_a_wait_fails_instead_of_hanging() -> None:
    async def main() -> None:
        log = FakeLog()
        commit = GroupCommit()
        await commit.close()
        log.end = 1
        with pytest.raises(RuntimeError):
            await asyncio.wait_for(commit.wait_durable(log, 1), TIMEOUT)

    asyncio.run(main())
