"""A handler's answer that waits on one future, without a coroutine or a task of its own.

Most handlers are coroutines and each request runs as a task. A handler on a hot path whose
only wait is a future someone else resolves (OffsetCommit waits for the offsets store's
group-commit batch) may instead be a plain function returning a `Deferred`: the server adds a
callback to `future` and builds the response with `finish()` once it is done, which saves the
task, its steps and the coroutine frames per request. `future` may be shared by many requests
(a whole fsync batch), so nobody waiting on it may cancel it.

A `Deferred` is also awaitable (it waits through `asyncio.shield`), so callers that simply
`await handler(ctx)`, such as tests, need not know the difference.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from typing import Any

from firth.kafka.handlers.context import Response


class Deferred:
    """Ready once `future` is done (None: ready now); `finish()` then builds the response,
    reading the future's outcome itself (a failed future is not an error of the Deferred)."""

    __slots__ = ("finish", "future")

    def __init__(self, future: asyncio.Future[Any] | None, finish: Callable[[], Response]) -> None:
        self.future = future
        self.finish = finish

    def __await__(self) -> Generator[Any, None, Response]:
        future = self.future
        if future is not None and not future.done():
            try:
                yield from asyncio.shield(future).__await__()
            except Exception:
                pass
        return self.finish()
