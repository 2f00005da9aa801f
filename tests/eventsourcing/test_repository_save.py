"""`Repository.save` encodes an aggregate's events itself (no `NewEvent` each): what it stores
must be byte for byte what appending the `NewEvent`s stores, and every event it cannot vouch
for must fail exactly as appending the `NewEvent`s fails."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterable
from typing import Any

import pytest

from firth.eventsourcing import EventStore, NewEvent
from firth.eventsourcing.aggregate import Aggregate, DomainEvent, applies
from firth.eventsourcing.codec import decode, encode
from firth.eventsourcing.errors import SerializationError
from firth.eventsourcing.records import ExpectedVersion, new_event_ids
from firth.eventsourcing.repository import Repository, _encoded


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int


@dataclasses.dataclass(frozen=True)
class Recorded(DomainEvent):
    value: Any


@dataclasses.dataclass(frozen=True)
class Pair(DomainEvent):
    type_name = "pair-of-things"
    first: str
    second: float | None = None


@dataclasses.dataclass(frozen=True)
class Custom(DomainEvent):
    amount: int

    def to_data(self) -> dict[str, Any]:
        return {"in_cents": self.amount * 100}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Custom:
        return cls(data["in_cents"] // 100)


class Ledger(Aggregate):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.entries: list[Any] = []

    @applies(Recorded)
    def _recorded(self, event: Recorded) -> None:
        self.entries.append(event.value)

    @applies(Pair)
    def _pair(self, event: Pair) -> None:
        self.entries.append((event.first, event.second))

    @applies(Custom)
    def _custom(self, event: Custom) -> None:
        self.entries.append(event.amount)


VALUES: list[Any] = [
    1,
    -2.5,
    1.5e-7,
    True,
    None,
    "plain",
    "ünïcödé ✓ 𝄞",
    'quote " and backslash \\ and newline \n',
    [1, [2, [3]]],
    (4, 5),
    {"nested": {"list": [None, False], "n": 0}},
    {1: "int key"},
    "",
    [],
    {},
]


def _spied(store: EventStore) -> list[list[NewEvent]]:
    """Make `store.append` an override that records its batches (a subclass of the store's own
    class, so the store keeps working)."""
    calls: list[list[NewEvent]] = []
    base = type(store)

    def append(
        self: EventStore,
        stream_id: str,
        events: Iterable[NewEvent],
        expected_version: ExpectedVersion = base.append.__defaults__[0],  # type: ignore[index]
    ) -> int:
        batch = list(events)
        calls.append(batch)
        return base.append(self, stream_id, batch, expected_version)

    store.__class__ = type(  # a backend class names its dialect where it subclasses
        "Spied" + base.__name__, (base,), {"append": append}, dialect=base._dialect
    )
    return calls


def _raw_rows(store: EventStore, stream_id: str) -> list[tuple[Any, ...]]:
    """(version, type, data, metadata) of a stream as stored: JSON as text on both backends."""
    json_text = "CAST({} AS TEXT)" if store.dialect == "sqlite" else "{}::text"
    with store.transaction() as tx:
        return tx.execute(
            f"SELECT version, type, {json_text.format('data')}, {json_text.format('metadata')}"
            " FROM events WHERE stream_id = ? ORDER BY version",
            (stream_id,),
        )


def _events() -> list[DomainEvent]:
    return [
        *(Recorded(value) for value in VALUES),
        Pair("a"),
        Pair("b", 0.1),
        Custom(7),
    ]


def _save(store: EventStore, id: str, metadata: dict[str, Any] | None) -> None:
    repository = Repository(store, Ledger, metadata=(lambda: metadata) if metadata else None)
    ledger = Ledger(id)
    for event in _events():
        ledger.trigger(event)
    assert repository.save(ledger) == len(_events())
    ledger.trigger(Recorded("second save"))
    assert repository.save(ledger) == len(_events()) + 1


@pytest.mark.parametrize("metadata", [None, {"trace": "t-1", "user": "ü"}])
def test_stored_rows_are_those_of_appending_new_events(
    store: EventStore, metadata: dict[str, Any] | None
) -> None:
    _save(store, "encoded", metadata)
    calls = _spied(store)  # from here on, save goes through NewEvents and append
    _save(store, "by-new-events", metadata)
    assert [len(batch) for batch in calls] == [len(_events()), 1]
    assert _raw_rows(store, "ledger-encoded") == _raw_rows(store, "ledger-by-new-events")


def test_saved_events_read_back_as_their_data_encoded(store: EventStore) -> None:
    _save(store, "1", {"trace": "t"})
    expected = [decode(encode(event.to_data())) for event in [*_events(), Recorded("second save")]]
    read = list(store.read_all())
    assert [event.data for event in read] == expected
    assert [event.type for event in read] == [
        *(["Recorded"] * len(VALUES)),
        "pair-of-things",
        "pair-of-things",
        "Custom",
        "Recorded",
    ]
    assert [event.metadata for event in read] == [{"trace": "t"}] * len(read)
    assert Repository(store, Ledger).load("1").version == len(read)


def test_each_saved_event_gets_its_own_version_7_id(store: EventStore) -> None:
    _save(store, "1", None)
    ids = [event.event_id for event in store.read_all()]
    assert len(set(ids)) == len(ids) == len(_events()) + 1
    assert all(event_id.version == 7 and event_id.variant == uuid.RFC_4122 for event_id in ids)


def test_new_event_ids_are_distinct_version_7_uuids_of_now() -> None:
    before = NewEvent("T", {}).event_id.int >> 80
    ids = new_event_ids(1000)
    after = NewEvent("T", {}).event_id.int >> 80
    assert len(set(ids)) == 1000
    for event_id in ids:
        assert event_id == uuid.UUID(str(event_id))  # a well-formed value, as parsed
        assert event_id.version == 7 and event_id.variant == uuid.RFC_4122
        assert before <= event_id.int >> 80 <= after
    assert new_event_ids(0) == []


_cycle: list[Any] = []
_cycle.append(_cycle)


@pytest.mark.parametrize(
    ("event", "error", "message"),
    [
        (Recorded(object()), SerializationError, "event 1 (Recorded)"),
        (Recorded(float("nan")), SerializationError, "event 1 (Recorded)"),
        (Recorded("nul \x00 inside"), SerializationError, "NUL"),
        (Recorded(_cycle), SerializationError, "refers to itself"),
    ],
)
def test_unstorable_events_fail_as_appending_new_events_fails(
    store: EventStore, event: Recorded, error: type[Exception], message: str
) -> None:
    ledger = Ledger("1")
    ledger.trigger(Recorded("fine"))
    ledger.trigger(event)
    repository = Repository(store, Ledger)
    if error is None:
        assert repository.save(ledger) == 2
        return
    with pytest.raises(error, match=re.escape(message)):
        repository.save(ledger)
    assert store.head_position() == 0
    assert len(ledger.pending) == 2  # nothing saved: still pending


def test_unstorable_metadata_fails_as_appending_new_events_fails(store: EventStore) -> None:
    ledger = Ledger("1")
    ledger.trigger(Recorded(1))
    repository = Repository(store, Ledger, metadata=lambda: {"bad": {1, 2}})
    with pytest.raises(SerializationError, match=re.escape("event 0 (Recorded)")):
        repository.save(ledger)
    repository = Repository(store, Ledger, metadata=lambda: {"nul": "\x00"})
    with pytest.raises(SerializationError, match="NUL"):
        repository.save(ledger)
    assert store.head_position() == 0


def test_a_type_name_new_event_refuses_is_refused(store: EventStore) -> None:
    @dataclasses.dataclass(frozen=True)
    class Odd(DomainEvent):
        value: int

    class OddLedger(Aggregate):
        @applies(Odd)
        def _odd(self, event: Odd) -> None:
            pass

    ledger = OddLedger("1")
    ledger.trigger(Odd(1))
    Odd.type_name = 5  # type: ignore[assignment]
    with pytest.raises(ValueError, match="non-empty string"):
        Repository(store, OddLedger).save(ledger)
    assert store.head_position() == 0


def test_a_store_that_overrides_append_gets_every_save(sqlite_url: str) -> None:
    with EventStore.open(sqlite_url) as store:
        calls = _spied(store)
        ledger = Ledger("1")
        ledger.trigger(Recorded(1))
        ledger.trigger(Pair("x", 2.0))
        Repository(store, Ledger, metadata=lambda: {"m": 1}).save(ledger)
        assert [(event.type, event.data, event.metadata) for event in calls[0]] == [
            ("Recorded", {"value": 1}, {"m": 1}),
            ("pair-of-things", {"first": "x", "second": 2.0}, {"m": 1}),
        ]


def test_plain_events_are_encoded_by_save_itself_and_doubtful_ones_are_not() -> None:
    encoded = _encoded(_events(), {"m": 1})
    assert encoded is not None
    assert [(e.type, e.data, e.metadata) for e in encoded] == [
        (event.type_name, encode(event.to_data()), '{"m":1}') for event in _events()
    ]
    assert _encoded([Recorded(object())], None) is None
    assert _encoded([Recorded("\x00")], None) is None
    assert _encoded([Recorded(1)], {"\x00": 1}) is None
    assert _encoded([Recorded(_cycle)], None) is None
