"""In-process change signals: wake subscribers the moment this process appends.

A subscription polls its database at a short interval to see appends made by other processes;
appends made through any store object *in this process* on the same database also bump the
database's `ChangeSignal`, so local subscribers wake at once instead of at the next poll.

A signal is a generation counter. A waiter reads the generation, queries, and if the query
found nothing waits until the generation moves past what it read, so an append that lands
between the query and the wait is never slept through.
"""

from __future__ import annotations

import asyncio
import threading


class ChangeSignal:
    """A generation counter with threaded and asyncio waiters. Thread-safe."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0
        self._futures: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    @property
    def generation(self) -> int:
        return self._generation

    def notify(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()
            futures, self._futures = self._futures, set()
        for loop, future in futures:
            try:
                loop.call_soon_threadsafe(_set_done, future)
            except RuntimeError:  # that loop is closed
                pass

    def wait(self, since: int, timeout: float) -> bool:
        """Block until the generation differs from `since` or `timeout` passes."""
        with self._condition:
            return self._condition.wait_for(lambda: self._generation != since, timeout)

    async def wait_async(self, since: int, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        with self._condition:
            if self._generation != since:
                return True
            self._futures.add(entry)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._condition:
                self._futures.discard(entry)


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_registry: dict[str, ChangeSignal] = {}
_registry_lock = threading.Lock()


def signal_for(key: str) -> ChangeSignal:
    """The process-wide signal of one database (key: resolved file path or connection target)."""
    with _registry_lock:
        signal = _registry.get(key)
        if signal is None:
            signal = _registry[key] = ChangeSignal()
        return signal
