"""`Repository`: load aggregates from their streams (snapshot first) and save new events.

Saving appends the aggregate's pending events with the stream version it was loaded at as the
expected version, so two writers that loaded the same version cannot both save
(`ConcurrencyError`: reload, re-run the command, save again). With `snapshot_every=N` a
snapshot of the state is stored whenever a save crosses a multiple of N events; loading then
starts from the latest snapshot and replays only the events after it. Snapshots are a cache:
deleting them changes nothing but speed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any, Generic, TypeVar

from firth.eventsourcing.aggregate import Aggregate, DomainEvent
from firth.eventsourcing.codec import encode_unchecked
from firth.eventsourcing.errors import EventStoreError
from firth.eventsourcing.records import NewEvent, new_event_ids
from firth.eventsourcing.store import _NUL, EncodedEvent, EventStore

_APPEND = EventStore.append

A = TypeVar("A", bound=Aggregate)


def _encoded(events: Sequence[DomainEvent], metadata: Any) -> list[EncodedEvent] | None:
    """The events as `store.append` would encode their `NewEvent`s (type name, `to_data()` as
    JSON, the metadata's JSON, a new id each), or None when anything about them is not plainly
    storable (then `save` goes the `NewEvent` way, which raises the error it always raised).
    Built without a `NewEvent` per event: its generated `__init__`, id and checks, and
    `encode_events` reading it back, were most of what a batched save spent above the store."""
    try:
        types = [event.type_name for event in events]
        datas = [encode_unchecked(event.to_data()) for event in events]
        meta = None if metadata is None else encode_unchecked(metadata)
        if not all(isinstance(name, str) and name for name in set(types)):
            return None
    except (TypeError, ValueError, RecursionError):
        return None
    if _NUL in "".join(datas) or (meta is not None and _NUL in meta):
        return None
    make = tuple.__new__  # EncodedEvent(...) without the named tuple's Python-level __new__
    return [
        make(EncodedEvent, fields)
        for fields in zip(new_event_ids(len(datas)), types, datas, repeat(meta))
    ]


class AggregateNotFound(EventStoreError):
    code = "aggregate-not-found"


class Repository(Generic[A]):
    """Loads and saves aggregates of one class."""

    def __init__(
        self,
        store: EventStore,
        aggregate_class: type[A],
        *,
        snapshot_every: int | None = None,
        use_snapshots: bool = True,
        metadata: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        if snapshot_every is not None and snapshot_every < 1:
            raise ValueError("snapshot_every must be at least 1")
        self.store = store
        self.aggregate_class = aggregate_class
        self.snapshot_every = snapshot_every
        self.use_snapshots = use_snapshots
        self._metadata = metadata

    def get(self, id: str) -> A | None:
        """The aggregate, or None if its stream has no events."""
        cls = self.aggregate_class
        stream_id = cls.stream_id_for(id)
        aggregate = cls(id)
        from_version = 1
        snapshot = self.store.load_snapshot(stream_id) if self.use_snapshots else None
        if snapshot is not None:
            aggregate.restore_state(snapshot.state)
            aggregate.version = snapshot.version
            from_version = snapshot.version + 1
        for recorded in self.store.read_stream(stream_id, from_version=from_version):
            if recorded.version != aggregate.version + 1:
                raise EventStoreError(
                    f"{stream_id}: expected version {aggregate.version + 1}, read {recorded.version}"
                )
            aggregate.apply(
                cls.decode_event(recorded.type, recorded.data, stream_id, recorded.version)
            )
        if aggregate.version == 0:
            return None
        return aggregate

    def load(self, id: str) -> A:
        aggregate = self.get(id)
        if aggregate is None:
            raise AggregateNotFound(f"no {self.aggregate_class.__name__} with id {id!r}")
        return aggregate

    def save(self, aggregate: A) -> int:
        """Append the pending events; returns the stream's new version."""
        pending = aggregate.pending
        if not pending:
            return aggregate.version
        base = aggregate.version - len(pending)
        metadata = self._metadata() if self._metadata else None
        store = self.store
        # The store's own `append` is bypassed only when it is the base class's (a subclass
        # that overrides it, say to instrument appends, still gets every save through it).
        encoded = _encoded(pending, metadata) if type(store).append is _APPEND else None
        if encoded is not None:
            version = store._append_encoded(aggregate.stream_id, encoded, base)
        else:  # anything _encoded does not vouch for raises here, as NewEvent and append say
            new_events = [NewEvent(event.type_name, event.to_data(), metadata) for event in pending]
            version = store.append(aggregate.stream_id, new_events, expected_version=base)
        aggregate.collect_pending()
        every = self.snapshot_every
        if every is not None and version // every > base // every:
            self.store.save_snapshot(
                aggregate.stream_id, version, type(aggregate).__name__, aggregate.snapshot_state()
            )
        return version
