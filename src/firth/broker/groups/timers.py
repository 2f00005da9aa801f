"""Time for the coordinator, injectable so tests run fast and deterministically.

The coordinator needs a monotonic clock (session deadlines, rebalance timeouts), a way to run a
callback at a moment, and a wall clock (commit timestamps). `LoopTimers` takes all three from the
running asyncio loop; `ManualTimers` is a clock that moves only when a test calls `advance`, firing
due callbacks in deadline order, so a 30-second session timeout is tested in microseconds.
Callbacks run synchronously in the caller's thread (the loop thread); they must not block.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Timers(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def wall_ms(self) -> int:
        """Milliseconds since the epoch, for timestamps stored with committed offsets."""
        ...

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        """Run `callback` at monotonic time `when` (or as soon after as possible)."""
        ...


class LoopTimers:
    """Timers of the running asyncio loop (looked up at each call, so it can be built early)."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def wall_ms(self) -> int:
        return int(time.time() * 1000)

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_at(when, callback)


class _ManualHandle:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualTimers:
    """A clock that stands still until `advance`; for tests."""

    def __init__(self, start: float = 1000.0, wall_start_ms: int = 1_700_000_000_000) -> None:
        self._now = start
        self._start = start
        self._wall_start_ms = wall_start_ms
        self._heap: list[tuple[float, int, Callable[[], None], _ManualHandle]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def wall_ms(self) -> int:
        return self._wall_start_ms + int((self._now - self._start) * 1000)

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        handle = _ManualHandle()
        heapq.heappush(self._heap, (when, next(self._seq), callback, handle))
        return handle

    def pending(self) -> int:
        """How many timers are armed (not cancelled, not fired)."""
        return sum(1 for *_, handle in self._heap if not handle.cancelled)

    def advance(self, seconds: float) -> None:
        """Move the clock forward, firing every due callback in deadline order."""
        target = self._now + seconds
        while self._heap and self._heap[0][0] <= target:
            when, _, callback, handle = heapq.heappop(self._heap)
            if handle.cancelled:
                continue
            self._now = max(self._now, when)
            callback()
        self._now = target
