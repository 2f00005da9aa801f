"""The asyncio API: `AsyncEventStore`, a thin adapter over a synchronous `EventStore`.

Every database call runs on one private worker thread, so the event loop never blocks and the
backend sees the single-threaded use it is written for. Iterators fetch a page per hop to the
worker; subscriptions wait on the database's in-process change signal without holding a thread,
polling at the store's interval for appends made by other processes.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from firth.eventsourcing.records import (
    ANY,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamInfo,
    StreamMetadata,
)
from firth.eventsourcing.store import PAGE_SIZE, EventStore

T = TypeVar("T")


class AsyncEventStore:
    """`await AsyncEventStore.open(url)`; the same operations as `EventStore`, awaitable."""

    def __init__(self, store: EventStore, executor: ThreadPoolExecutor) -> None:
        self.sync = store
        self._executor = executor

    @classmethod
    async def open(cls, url: str, **options: Any) -> AsyncEventStore:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="firth-eventstore")
        loop = asyncio.get_running_loop()
        try:
            store = await loop.run_in_executor(
                executor, functools.partial(EventStore.open, url, **options)
            )
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(store, executor)

    async def _run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(function, *args, **kwargs)
        )

    async def close(self) -> None:
        await self._run(self.sync.close)
        self._executor.shutdown(wait=True)

    async def __aenter__(self) -> AsyncEventStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def append(
        self, stream_id: str, events: Iterable[NewEvent], expected_version: ExpectedVersion = ANY
    ) -> int:
        return await self._run(self.sync.append, stream_id, list(events), expected_version)

    async def read_stream(
        self,
        stream_id: str,
        from_version: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> AsyncIterator[RecordedEvent]:
        if from_version is None:
            from_version = 2**62 if backwards else 1
        remaining = limit
        while remaining is None or remaining > 0:
            size = PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)
            page = await self._run(
                self.sync._read_stream_page, stream_id, from_version, backwards, size
            )
            for event in page:
                yield event
            if len(page) < size:
                return
            if remaining is not None:
                remaining -= len(page)
            from_version = page[-1].version + (-1 if backwards else 1)

    async def read_all(
        self,
        from_position: int = 1,
        types: Sequence[str] | None = None,
        categories: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[RecordedEvent]:
        position = max(1, from_position)
        remaining = limit
        while remaining is None or remaining > 0:
            size = PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)
            page = await self._run(self.sync._read_all_page, position, types, categories, size)
            for event in page:
                yield event
            if len(page) < size:
                return
            if remaining is not None:
                remaining -= len(page)
            position = page[-1].position + 1

    async def subscribe(
        self,
        from_position: int = 1,
        types: Sequence[str] | None = None,
        categories: Sequence[str] | None = None,
        poll_interval: float | None = None,
    ) -> AsyncIterator[RecordedEvent]:
        """Catch-up then live, forever; stop by breaking out of the loop or cancelling."""
        await self._run(self.sync._watch)
        interval = poll_interval or self.sync.poll_interval
        signal = self.sync._signal
        position = max(1, from_position)
        while True:
            generation = signal.generation
            page = await self._run(self.sync._read_all_page, position, types, categories, PAGE_SIZE)
            for event in page:
                yield event
                position = event.position + 1
            if not page:
                await signal.wait_async(generation, interval)

    async def stream_version(self, stream_id: str) -> int:
        return await self._run(self.sync.stream_version, stream_id)

    async def head_position(self) -> int:
        return await self._run(self.sync.head_position)

    async def list_streams(self, limit: int | None = None) -> list[StreamInfo]:
        return await self._run(self.sync.list_streams, limit)

    async def get_stream_metadata(self, stream_id: str) -> StreamMetadata:
        return await self._run(self.sync.get_stream_metadata, stream_id)

    async def set_stream_metadata(self, stream_id: str, metadata: StreamMetadata) -> None:
        await self._run(self.sync.set_stream_metadata, stream_id, metadata)

    async def delete_stream(self, stream_id: str, expected_version: ExpectedVersion = ANY) -> None:
        await self._run(self.sync.delete_stream, stream_id, expected_version)

    async def save_snapshot(self, stream_id: str, version: int, type: str, state: Any) -> None:
        await self._run(self.sync.save_snapshot, stream_id, version, type, state)

    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        return await self._run(self.sync.load_snapshot, stream_id)

    async def get_checkpoint(self, name: str) -> int:
        return await self._run(self.sync.get_checkpoint, name)

    async def set_checkpoint(self, name: str, position: int) -> None:
        await self._run(self.sync.set_checkpoint, name, position)
