"""The synchronous event store API, shared by every backend.

`EventStore` is the public face; `firth.eventsourcing.sqlite` and `firth.eventsourcing.postgres`
implement its few abstract page-level methods. Everything a backend does not need to know lives
here: URL dispatch, expected-version rules, idempotency decisions, paging, subscriptions.

Rules every backend keeps (the contract suite checks them on each):

- An append is one transaction: all of its events are stored, or none.
- Versions in a stream are 1, 2, 3, ... Positions in the global order start at 1 and grow in
  commit order, so a reader that remembers the last position it saw never skips an event that
  commits later. (On PostgreSQL an append whose connection dies after its INSERT leaves unused
  positions; they are never filled later. Refused and idempotent appends leave none.)
- Appending events whose ids are already stored, as the same consecutive run in the same
  stream, succeeds without writing and returns the version of the last of them.

Threads: one store object may be used from several threads; each backend serialises use of its
connection with a lock. Processes: open one store per process.
"""

from __future__ import annotations

import abc
import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, NamedTuple

from firth.eventsourcing.codec import encode, encode_unchecked
from firth.eventsourcing.errors import (
    ConcurrencyError,
    DuplicateEventError,
    InvalidURL,
    SerializationError,
)
from firth.eventsourcing.notify import ChangeSignal
from firth.eventsourcing.records import (
    ANY,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamInfo,
    StreamMetadata,
    StreamState,
    category_of,
)

PAGE_SIZE = 1000
"""Rows fetched per query by the iterators; big enough to amortise a round trip."""

PageReader = Callable[[int, Sequence[str] | None, Sequence[str] | None, int], list[RecordedEvent]]
"""Reads one page of the global order: (from_position, types, categories, limit)."""


class EncodedEvent(NamedTuple):
    """A `NewEvent` with its JSON already encoded (so encoding errors precede any write).
    A named tuple: built once per appended event, so cheap construction matters."""

    event_id: uuid.UUID
    type: str
    data: str
    metadata: str | None


def encode_events(events: Sequence[NewEvent]) -> list[EncodedEvent]:
    """Encode a batch (the append hot path: one comprehension with the raw encoder; when
    anything is wrong, the checked loop runs again to raise the error with its context)."""
    make = tuple.__new__  # EncodedEvent(...) without the named tuple's Python-level __new__
    try:
        encoded = [
            make(
                EncodedEvent,
                (
                    event.event_id,
                    event.type,
                    encode_unchecked(event.data),
                    None if event.metadata is None else encode_unchecked(event.metadata),
                ),
            )
            for event in events
            if type(event) is NewEvent
        ]
    except (TypeError, ValueError, RecursionError):
        return _encode_events_checked(events)
    if len(encoded) != len(events) or any(
        _NUL in event.data or (event.metadata is not None and _NUL in event.metadata)
        for event in encoded
    ):
        return _encode_events_checked(events)
    # the ids' integers: hashed in C, where UUID.__hash__ is a Python method
    if len({event.event_id.int for event in encoded}) != len(encoded):
        raise ValueError("an event id appears twice in one append")
    return encoded


_NUL = "\\u0000"  # how the encoder writes U+0000, which JSON stores cannot hold


def _encode_events_checked(events: Sequence[NewEvent]) -> list[EncodedEvent]:
    """The slow path of `encode_events`: the first bad event raises, with its index."""
    encoded = []
    for index, event in enumerate(events):
        if not isinstance(event, NewEvent):
            raise TypeError(f"append takes NewEvent objects, got {type(event).__name__}")
        try:
            data = encode(event.data)
            metadata = None if event.metadata is None else encode(event.metadata)
        except SerializationError as error:
            raise SerializationError(f"event {index} ({event.type}): {error}") from None
        encoded.append(EncodedEvent(event.event_id, event.type, data, metadata))
    if len({event.event_id for event in encoded}) != len(encoded):
        raise ValueError("an event id appears twice in one append")
    return encoded


# Which current states each symbolic expectation accepts: (current version, stream exists).
_EXPECTATIONS = {
    StreamState.ANY: lambda current, exists: True,
    StreamState.NO_STREAM: lambda current, exists: not exists,
    StreamState.STREAM_EXISTS: lambda current, exists: exists,
}


def expected_version_ok(expected: ExpectedVersion, current: int, exists: bool) -> bool:
    """Whether a stream at `current` (and existing or not) satisfies `expected`."""
    if isinstance(expected, StreamState):
        return _EXPECTATIONS[expected](current, exists)
    if isinstance(expected, bool) or not isinstance(expected, int) or expected < 0:
        raise ValueError(
            f"expected_version must be ANY, NO_STREAM, STREAM_EXISTS or an int >= 0, not {expected!r}"
        )
    return current == expected


def idempotent_version(
    stream_id: str, events: Sequence[EncodedEvent], stored: dict[uuid.UUID, tuple[str, int]]
) -> int | None:
    """Decide what an append whose event ids may already be stored means.

    `stored` maps the batch's event ids that are in the store to (stream id, version). Returns
    None if none are stored (a fresh append), the last version if the whole batch is stored as
    one consecutive run of this stream (an idempotent retry), else raises DuplicateEventError.
    """
    if not stored:
        return None
    first = events[0].event_id
    if len(stored) == len(events) and first in stored:
        base_stream, base_version = stored[first]
        if base_stream == stream_id and all(
            stored.get(event.event_id) == (stream_id, base_version + offset)
            for offset, event in enumerate(events)
        ):
            return base_version + len(events) - 1
    clash = next(event.event_id for event in events if event.event_id in stored)
    raise DuplicateEventError(stream_id, clash)


def refuse(stream_id: str, expected: ExpectedVersion, current: int) -> ConcurrencyError:
    return ConcurrencyError(stream_id, expected, current)


class Transaction(abc.ABC):
    """A database transaction handed to projections: read-model SQL plus checkpoints commit
    together. SQL uses `?` placeholders on every backend."""

    dialect: str

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; returns its rows (empty for statements without a result)."""

    @abc.abstractmethod
    def get_checkpoint(self, name: str) -> int: ...

    @abc.abstractmethod
    def set_checkpoint(self, name: str, position: int) -> None: ...

    def lock_appends(self) -> None:
        """Exclude appends until the transaction ends (SQLite: already so)."""
        return None

    def lock(self, name: str) -> None:
        """Hold an exclusive lock on `name` until the transaction ends (SQLite: every write
        transaction is already exclusive)."""
        return None

    def lock_checkpoint(self, name: str) -> int:
        """`lock(name)`, then `get_checkpoint(name)` as seen once the lock is held: how a
        projection's batch begins (a backend may do both in one round trip)."""
        self.lock(name)
        return self.get_checkpoint(name)


class Lease(abc.ABC):
    """Exclusive ownership of a name across processes, released on `release()` or process death."""

    name: str

    @abc.abstractmethod
    def release(self) -> None: ...

    def check(self) -> None:
        """Raise LeaseLost if the lease can no longer be trusted (its connection died)."""
        return None

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class EventStore(abc.ABC):
    """An append-only store of events in streams, with one global order.

    Open with `EventStore.open(url)`: `sqlite:///relative.db`, `sqlite:////absolute.db`,
    `sqlite:///:memory:` (one connection only), a plain file path, or `postgresql://...`.
    """

    url: str
    dialect: str
    _signal: ChangeSignal
    poll_interval: float = 0.1

    # -- opening ---------------------------------------------------------------------------

    @staticmethod
    def open(url: str, **options: Any) -> EventStore:
        if url.startswith(("postgresql://", "postgres://")):
            from firth.eventsourcing.postgres import PostgresEventStore

            return PostgresEventStore(url, **options)
        if url.startswith("sqlite://") or "://" not in url:
            from firth.eventsourcing.sqlite import SqliteEventStore

            return SqliteEventStore(url, **options)
        raise InvalidURL(
            f"unsupported event store URL {url!r}: use sqlite:///path or postgresql://..."
        )

    def __enter__(self) -> EventStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @abc.abstractmethod
    def close(self) -> None: ...

    # -- writing ---------------------------------------------------------------------------

    def append(
        self, stream_id: str, events: Iterable[NewEvent], expected_version: ExpectedVersion = ANY
    ) -> int:
        """Append `events` to `stream_id` atomically; returns the stream's new version.

        Raises ConcurrencyError (with `actual_version`) if the stream is not as expected,
        SerializationError if an event cannot be stored as JSON, DuplicateEventError if an
        event id is stored elsewhere. Nothing is written when it raises.
        """
        if not isinstance(stream_id, str) or not stream_id:
            raise ValueError("a stream id must be a non-empty string")
        batch = list(events)
        expected_version_ok(expected_version, 0, False)  # validates the argument's type
        if not batch:
            current = self.stream_version(stream_id)
            exists = current > 0 and not self.get_stream_metadata(stream_id).deleted
            if not expected_version_ok(expected_version, current, exists):
                raise refuse(stream_id, expected_version, current)
            return current
        return self._append_encoded(stream_id, encode_events(batch), expected_version)

    def _append_encoded(
        self, stream_id: str, events: list[EncodedEvent], expected_version: ExpectedVersion
    ) -> int:
        """`append` of at least one event already encoded, with distinct ids, to a valid stream
        id with a valid expected version (`Repository.save` calls it with what it encoded)."""
        version = self._append(stream_id, category_of(stream_id), events, expected_version)
        self._signal.notify()
        return version

    @abc.abstractmethod
    def _append(
        self, stream_id: str, category: str, events: list[EncodedEvent], expected: ExpectedVersion
    ) -> int: ...

    # -- reading ---------------------------------------------------------------------------

    def read_stream(
        self,
        stream_id: str,
        from_version: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """The visible events of one stream, by version (from_version inclusive).

        Forwards from version 1 by default; backwards from the last version by default.
        Stream metadata (max-age, max-count, truncate-before, soft delete) hides events here.
        """
        if from_version is None:
            from_version = 2**62 if backwards else 1
        remaining = limit
        while remaining is None or remaining > 0:
            size = PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)
            page = self._read_stream_page(stream_id, from_version, backwards, size)
            yield from page
            if len(page) < size:
                return
            if remaining is not None:
                remaining -= len(page)
            from_version = page[-1].version + (-1 if backwards else 1)

    def read_all(
        self,
        from_position: int = 1,
        types: Sequence[str] | None = None,
        categories: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """Every stored event in global order from `from_position` (inclusive), optionally only
        the given event types and stream categories."""
        for page in self._pages_in_turn(max(1, from_position), types, categories, PAGE_SIZE, limit):
            yield from page

    def _pages_in_turn(
        self,
        position: int,
        types: Sequence[str] | None,
        categories: Sequence[str] | None,
        page_size: int,
        limit: int | None = None,
    ) -> Iterator[list[RecordedEvent]]:
        """Pages of the global order read one after the other on this store's connection, at
        most `limit` events in all (None: no limit), none empty, ending after a short page."""
        remaining = limit
        while remaining is None or remaining > 0:
            size = page_size if remaining is None else min(page_size, remaining)
            page = self._read_all_page(position, types, categories, size)
            if page:
                yield page
            if len(page) < size:
                return
            if remaining is not None:
                remaining -= len(page)
            position = page[-1].position + 1

    def read_all_pages(
        self,
        from_position: int = 1,
        types: Sequence[str] | None = None,
        categories: Sequence[str] | None = None,
        page_size: int = PAGE_SIZE,
    ) -> Generator[list[RecordedEvent], None, None]:
        """`read_all` in pages of at most `page_size` events (none empty), ending after the
        first short page. Where the backend can read on a connection of its own
        (`_page_reader`), the next page is fetched in a thread while the caller handles the
        current one, so the database's work overlaps the caller's; each page is still one
        query that sees every event committed before it, so the pages are exactly those of
        reading one after the other."""
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        position = max(1, from_position)
        with self._page_reader() as read_page:
            if read_page is None:
                yield from self._pages_in_turn(position, types, categories, page_size)
                return
            with ThreadPoolExecutor(1, thread_name_prefix="firth-read-ahead") as ahead:
                future = ahead.submit(read_page, position, types, categories, page_size)
                while True:
                    page = future.result()
                    if len(page) < page_size:
                        if page:
                            yield page
                        return
                    future = ahead.submit(
                        read_page, page[-1].position + 1, types, categories, page_size
                    )
                    yield page

    def _page_reader(self) -> contextlib.AbstractContextManager[PageReader | None]:
        """A `_read_all_page` that runs on a connection of its own (so another thread may call
        it while this store's connection is in use), or None where the backend has none to
        spare; `read_all_pages` then reads its pages one after the other."""
        return contextlib.nullcontext(None)

    def subscribe(
        self,
        from_position: int = 1,
        types: Sequence[str] | None = None,
        categories: Sequence[str] | None = None,
        poll_interval: float | None = None,
    ) -> Subscription:
        """A catch-up subscription: every event from `from_position` on, then live ones."""
        self._watch()
        return Subscription(
            self, from_position, types, categories, poll_interval or self.poll_interval
        )

    def _watch(self) -> None:
        """Start whatever tells this process about other processes' appends (beyond polling)."""
        return None

    @abc.abstractmethod
    def _read_stream_page(
        self, stream_id: str, from_version: int, backwards: bool, limit: int
    ) -> list[RecordedEvent]: ...

    @abc.abstractmethod
    def _read_all_page(
        self,
        from_position: int,
        types: Sequence[str] | None,
        categories: Sequence[str] | None,
        limit: int,
    ) -> list[RecordedEvent]: ...

    @abc.abstractmethod
    def stream_version(self, stream_id: str) -> int:
        """The version of the stream's last event (0 if it has none), deleted or not."""

    @abc.abstractmethod
    def head_position(self) -> int:
        """The position of the last stored event (0 if the store is empty)."""

    @abc.abstractmethod
    def list_streams(self, limit: int | None = None) -> list[StreamInfo]:
        """Streams ordered by their last event's position."""

    # -- stream metadata and deletion ------------------------------------------------------

    @abc.abstractmethod
    def get_stream_metadata(self, stream_id: str) -> StreamMetadata: ...

    @abc.abstractmethod
    def set_stream_metadata(self, stream_id: str, metadata: StreamMetadata) -> None: ...

    def delete_stream(self, stream_id: str, expected_version: ExpectedVersion = ANY) -> None:
        """Soft delete: the stream reads as empty. A later append brings it back with the
        version numbers continuing; the earlier events stay hidden (truncate-before).
        Checked and applied in one transaction that excludes appends."""
        with self.transaction() as tx:
            tx.lock_appends()
            current = int(
                tx.execute(
                    "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ?", (stream_id,)
                )[0][0]
            )
            rows = tx.execute(
                "SELECT max_age, max_count, deleted FROM stream_metadata WHERE stream_id = ?",
                (stream_id,),
            )
            max_age, max_count, deleted = rows[0] if rows else (None, None, False)
            if not expected_version_ok(expected_version, current, current > 0 and not deleted):
                raise refuse(stream_id, expected_version, current)
            tx.execute(
                "INSERT INTO stream_metadata (stream_id, max_age, max_count, truncate_before,"
                " deleted) VALUES (?, ?, ?, ?, ?) ON CONFLICT (stream_id) DO UPDATE SET"
                " truncate_before = excluded.truncate_before, deleted = excluded.deleted",
                (stream_id, max_age, max_count, current + 1, True),
            )

    @abc.abstractmethod
    def scavenge(self) -> int:
        """Physically remove the events stream metadata hides; returns how many went."""

    # -- snapshots, checkpoints, transactions, leases ---------------------------------------

    @abc.abstractmethod
    def save_snapshot(self, stream_id: str, version: int, type: str, state: Any) -> None: ...

    @abc.abstractmethod
    def load_snapshot(self, stream_id: str) -> Snapshot | None:
        """The snapshot with the highest version of the stream, if any."""

    def get_checkpoint(self, name: str) -> int:
        """The last position recorded under `name` (0 if none)."""
        with self.transaction() as tx:
            return tx.get_checkpoint(name)

    def set_checkpoint(self, name: str, position: int) -> None:
        with self.transaction() as tx:
            tx.set_checkpoint(name, position)

    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[Transaction]:
        """A write transaction (committed on normal exit, rolled back on an exception)."""

    @abc.abstractmethod
    def acquire_lease(self, name: str) -> Lease:
        """Take the exclusive lease `name` or raise LeaseHeld; released when the process dies."""


class Subscription:
    """A catch-up subscription: iterate to get events in global order, forever.

    It reads pages from the store while there are events, then waits for the next poll or for
    an in-process append, whichever comes first. `next(timeout)` gives None when nothing came
    in time; `position` is the position of the last event handed out (0 before the first).
    Not thread-safe: one consumer per subscription; `close()` may be called from any thread.
    """

    def __init__(
        self,
        store: EventStore,
        from_position: int,
        types: Sequence[str] | None,
        categories: Sequence[str] | None,
        poll_interval: float,
    ) -> None:
        self._store = store
        self._next_position = max(1, from_position)
        self._types = list(types) if types else None
        self._categories = list(categories) if categories else None
        self._poll_interval = poll_interval
        self._buffer: list[RecordedEvent] = []
        self._index = 0
        self._closed = threading.Event()
        self.position = self._next_position - 1

    def __iter__(self) -> Iterator[RecordedEvent]:
        while True:
            event = self.next(timeout=None)
            if event is None:
                return
            yield event

    def next(self, timeout: float | None = None) -> RecordedEvent | None:
        """The next event; None after `timeout` seconds without one, or once closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        signal = self._store._signal
        while not self._closed.is_set():
            if self._index < len(self._buffer):
                event = self._buffer[self._index]
                self._index += 1
                self.position = event.position
                self._next_position = event.position + 1
                return event
            generation = signal.generation
            self._buffer = self._store._read_all_page(
                self._next_position, self._types, self._categories, PAGE_SIZE
            )
            self._index = 0
            if self._buffer:
                continue
            wait = self._poll_interval
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                wait = min(wait, left)
            signal.wait(generation, wait)
        return None

    def close(self) -> None:
        self._closed.set()
        self._store._signal.notify()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
