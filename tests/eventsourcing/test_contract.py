"""The event store contract: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest

from firth.eventsourcing import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AsyncEventStore,
    ConcurrencyError,
    DuplicateEventError,
    EventStore,
    LeaseHeld,
    NewEvent,
    SerializationError,
    StreamMetadata,
)
from firth.eventsourcing import store as store_module


def events(*types: str) -> list[NewEvent]:
    return [NewEvent(type_, {"n": index}) for index, type_ in enumerate(types)]


def test_versions_and_positions_start_at_one(store: EventStore) -> None:
    assert store.head_position() == 0
    assert store.append("account-1", events("Opened", "Deposited")) == 2
    assert store.append("order-7", events("Placed")) == 1
    recorded = list(store.read_all())
    assert [(e.position, e.stream_id, e.version) for e in recorded] == [
        (1, "account-1", 1),
        (2, "account-1", 2),
        (3, "order-7", 1),
    ]
    assert recorded[0].data == {"n": 0} and recorded[0].metadata == {}
    assert recorded[0].recorded_at.tzinfo is not None
    assert store.head_position() == 3
    assert store.stream_version("account-1") == 2 and store.stream_version("nope") == 0


def test_metadata_and_event_id_round_trip(store: EventStore) -> None:
    event_id = uuid.uuid4()
    event = NewEvent(
        "Tagged", {"nested": [1, "two", None, {"x": 1.5}]}, {"correlation": "c-1"}, event_id
    )
    store.append("thing-1", [event])
    (recorded,) = store.read_stream("thing-1")
    assert recorded.event_id == event_id
    assert recorded.data == {"nested": [1, "two", None, {"x": 1.5}]}
    assert recorded.metadata == {"correlation": "c-1"}
    assert recorded.type == "Tagged" and recorded.category == "thing"


@pytest.mark.parametrize(
    ("expected", "current_events", "allowed"),
    [
        (ANY, 0, True),
        (ANY, 2, True),
        (NO_STREAM, 0, True),
        (NO_STREAM, 2, False),
        (STREAM_EXISTS, 0, False),
        (STREAM_EXISTS, 2, True),
        (0, 0, True),
        (0, 2, False),
        (2, 2, True),
        (1, 2, False),
        (3, 2, False),
    ],
)
def test_expected_version_table(
    store: EventStore, expected, current_events: int, allowed: bool
) -> None:
    if current_events:
        store.append("s-1", events(*["E"] * current_events))
    if allowed:
        assert store.append("s-1", events("New"), expected) == current_events + 1
    else:
        with pytest.raises(ConcurrencyError) as caught:
            store.append("s-1", events("New"), expected)
        assert caught.value.actual_version == current_events
        assert caught.value.stream_id == "s-1"
        assert store.stream_version("s-1") == current_events
        assert store.head_position() == current_events


def test_bad_expected_version_argument(store: EventStore) -> None:
    with pytest.raises(ValueError):
        store.append("s-1", events("E"), -1)
    with pytest.raises(ValueError):
        store.append("s-1", events("E"), "1")  # type: ignore[arg-type]


def test_appends_are_idempotent_by_event_id(store: EventStore) -> None:
    batch = events("A", "B")
    assert store.append("s-1", batch, NO_STREAM) == 2
    assert store.append("s-1", events("C")) == 3
    # The retry of an already-stored batch succeeds without writing, whatever was expected.
    assert store.append("s-1", batch, NO_STREAM) == 2
    assert store.append("s-1", batch) == 2
    assert store.append("s-1", batch[1:]) == 2
    assert [e.type for e in store.read_stream("s-1")] == ["A", "B", "C"]
    assert store.head_position() == 3


def test_partly_stored_batch_or_id_of_another_stream_is_refused(store: EventStore) -> None:
    first = events("A", "B")
    store.append("s-1", first)
    with pytest.raises(DuplicateEventError):
        store.append("s-1", [first[1], NewEvent("C", {})])
    with pytest.raises(DuplicateEventError):
        store.append("s-2", [first[0]])
    with pytest.raises(ValueError):
        same = NewEvent("D", {})
        store.append("s-1", [same, same])
    assert store.head_position() == 2 and store.stream_version("s-2") == 0


def test_read_stream_forwards_backwards_and_limits(store: EventStore) -> None:
    store.append("s-1", events(*[f"E{i}" for i in range(1, 6)]))
    store.append("s-2", events("Other"))
    assert [e.version for e in store.read_stream("s-1")] == [1, 2, 3, 4, 5]
    assert [e.version for e in store.read_stream("s-1", from_version=3)] == [3, 4, 5]
    assert [e.version for e in store.read_stream("s-1", backwards=True)] == [5, 4, 3, 2, 1]
    assert [e.version for e in store.read_stream("s-1", from_version=2, backwards=True)] == [2, 1]
    assert [e.version for e in store.read_stream("s-1", limit=2)] == [1, 2]
    assert list(store.read_stream("missing")) == []


def test_read_all_from_position_types_and_categories(store: EventStore) -> None:
    store.append("account-1", events("Opened", "Deposited"))
    store.append("order-1", events("Placed"))
    store.append("account-2", events("Opened"))
    store.append("nodash", events("Deposited"))
    assert [e.position for e in store.read_all(from_position=3)] == [3, 4, 5]
    assert [e.position for e in store.read_all(types=["Deposited"])] == [2, 5]
    assert [e.position for e in store.read_all(categories=["account"])] == [1, 2, 4]
    assert [e.position for e in store.read_all(categories=["nodash", "order"])] == [3, 5]
    assert [
        e.position
        for e in store.read_all(from_position=2, types=["Opened"], categories=["account"])
    ] == [4]
    assert [e.position for e in store.read_all(limit=2)] == [1, 2]
    assert list(store.read_all(from_position=6)) == []


def test_reads_page_through_large_results(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "PAGE_SIZE", 7)
    store.append("s-1", [NewEvent("E", {"i": i}) for i in range(30)])
    assert [e.data["i"] for e in store.read_all()] == list(range(30))
    assert [e.version for e in store.read_stream("s-1", backwards=True)] == list(range(30, 0, -1))
    assert [e.version for e in store.read_stream("s-1", from_version=5, limit=10)] == list(
        range(5, 15)
    )


def test_subscription_catches_up_then_follows_live_appends(store: EventStore) -> None:
    store.append("s-1", events("A", "B"))
    subscription = store.subscribe(from_position=2)
    received = [subscription.next(timeout=5)]
    assert [e.type for e in received if e] == ["B"]
    assert subscription.next(timeout=0.05) is None  # caught up, nothing new

    def writer() -> None:
        for index in range(20):
            store.append(f"s-{index % 3}", [NewEvent("Live", {"i": index})])

    thread = threading.Thread(target=writer)
    thread.start()
    live = [subscription.next(timeout=10) for _ in range(20)]
    thread.join()
    assert [e.data["i"] for e in live if e] == list(range(20))
    assert [e.position for e in live if e] == list(range(3, 23))
    assert subscription.position == 22
    subscription.close()
    assert subscription.next(timeout=1) is None


def test_subscription_sees_appends_from_another_store_object(store: EventStore) -> None:
    subscription = store.subscribe(types=["Wanted"])
    with EventStore.open(store.url) as other:
        other.append("s-1", events("Unwanted", "Wanted"))
    event = subscription.next(timeout=10)
    assert event is not None and event.type == "Wanted" and event.position == 2
    subscription.close()


def test_stream_metadata_limits_read_stream(store: EventStore) -> None:
    store.append("s-1", events(*["E"] * 6))
    assert store.get_stream_metadata("s-1") == StreamMetadata()
    store.set_stream_metadata("s-1", StreamMetadata(max_count=2))
    assert [e.version for e in store.read_stream("s-1")] == [5, 6]
    assert [e.version for e in store.read_stream("s-1", backwards=True)] == [6, 5]
    store.set_stream_metadata("s-1", StreamMetadata(truncate_before=4))
    assert [e.version for e in store.read_stream("s-1")] == [4, 5, 6]
    store.set_stream_metadata("s-1", StreamMetadata(max_age=3600))
    assert len(list(store.read_stream("s-1"))) == 6
    store.set_stream_metadata("s-1", StreamMetadata(max_age=0.0))
    assert list(store.read_stream("s-1")) == []
    assert store.get_stream_metadata("s-1") == StreamMetadata(max_age=0.0)
    # The global order still holds every event until a scavenge.
    assert len(list(store.read_all())) == 6


def test_soft_delete_then_recreate(store: EventStore) -> None:
    store.append("s-1", events("A", "B"))
    with pytest.raises(ConcurrencyError):
        store.delete_stream("s-1", expected_version=1)
    store.delete_stream("s-1", expected_version=2)
    assert list(store.read_stream("s-1")) == []
    assert store.get_stream_metadata("s-1").deleted
    assert store.append("s-1", events("C"), NO_STREAM) == 3
    assert [(e.version, e.type) for e in store.read_stream("s-1")] == [(3, "C")]
    assert not store.get_stream_metadata("s-1").deleted
    assert len(list(store.read_all())) == 3


def test_scavenge_removes_hidden_events(store: EventStore) -> None:
    store.append("s-1", events(*["E"] * 5))
    store.append("s-2", events("F"))
    store.set_stream_metadata("s-1", StreamMetadata(max_count=2))
    assert store.scavenge() == 3
    assert [(e.stream_id, e.version) for e in store.read_all()] == [
        ("s-1", 4),
        ("s-1", 5),
        ("s-2", 1),
    ]
    # Positions are never reused after a scavenge.
    store.append("s-3", events("G"))
    assert store.head_position() == 7


def test_scavenge_removes_truncated_and_expired_events(store: EventStore) -> None:
    store.append("s-1", events(*["E"] * 4))
    store.append("s-2", events("F", "G"))
    store.set_stream_metadata("s-1", StreamMetadata(truncate_before=3))
    store.set_stream_metadata("s-2", StreamMetadata(max_age=3600))
    assert store.scavenge() == 2
    assert [(e.stream_id, e.version) for e in store.read_all()] == [
        ("s-1", 3),
        ("s-1", 4),
        ("s-2", 1),
        ("s-2", 2),
    ]
    store.set_stream_metadata("s-2", StreamMetadata(max_age=0.0))
    assert store.scavenge() == 2
    assert [(e.stream_id, e.version) for e in store.read_all()] == [("s-1", 3), ("s-1", 4)]


def test_a_snapshot_saved_again_at_its_version_replaces_it(store: EventStore) -> None:
    store.save_snapshot("s-1", 10, "Account", {"balance": 10})
    store.save_snapshot("s-1", 10, "AccountV2", {"balance": 11})
    snapshot = store.load_snapshot("s-1")
    assert snapshot is not None
    assert (snapshot.version, snapshot.type, snapshot.state) == (10, "AccountV2", {"balance": 11})


def test_snapshots_keep_the_latest(store: EventStore) -> None:
    assert store.load_snapshot("s-1") is None
    store.save_snapshot("s-1", 10, "Account", {"balance": 10})
    store.save_snapshot("s-1", 20, "Account", {"balance": 20})
    store.save_snapshot("s-2", 5, "Account", {"balance": 5})
    snapshot = store.load_snapshot("s-1")
    assert snapshot is not None
    assert (snapshot.version, snapshot.type, snapshot.state) == (20, "Account", {"balance": 20})
    with pytest.raises(SerializationError):
        store.save_snapshot("s-1", 30, "Account", {"bad": object()})


def test_checkpoints_and_transactions(store: EventStore) -> None:
    assert store.get_checkpoint("projection") == 0
    store.set_checkpoint("projection", 41)
    store.set_checkpoint("projection", 42)
    assert store.get_checkpoint("projection") == 42
    with store.transaction() as tx:
        tx.execute("CREATE TABLE read_model (k TEXT PRIMARY KEY, v INTEGER)")
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.execute("INSERT INTO read_model VALUES (?, ?)", ("a", 1))
        tx.set_checkpoint("projection", 50)
        raise RuntimeError("boom")
    assert store.get_checkpoint("projection") == 42
    with store.transaction() as tx:
        tx.execute("INSERT INTO read_model VALUES (?, ?)", ("a", 1))
        tx.set_checkpoint("projection", 50)
    with store.transaction() as tx:
        assert tx.execute("SELECT k, v FROM read_model") == [("a", 1)]
    assert store.get_checkpoint("projection") == 50


def test_list_streams(store: EventStore) -> None:
    store.append("a-1", events("E", "E"))
    store.append("b-1", events("E"))
    store.append("a-1", events("E"))
    streams = store.list_streams()
    assert [(s.stream_id, s.version, s.event_count, s.last_position) for s in streams] == [
        ("b-1", 1, 1, 3),
        ("a-1", 3, 3, 4),
    ]
    assert [s.stream_id for s in store.list_streams(limit=1)] == ["b-1"]


def test_unserialisable_data_stores_nothing(store: EventStore) -> None:
    for bad in ({"when": object()}, {"x": float("nan")}, {"s": "nul\x00"}):
        with pytest.raises(SerializationError) as caught:
            store.append("s-1", [NewEvent("Good", {"ok": 1}), NewEvent("Bad", bad)])
        assert "Bad" in str(caught.value)
    with pytest.raises(SerializationError):
        store.append("s-1", [NewEvent("E", {}, metadata={"m": {1, 2}})])
    assert store.head_position() == 0 and store.stream_version("s-1") == 0


def test_reopen_keeps_data_and_schema(store: EventStore) -> None:
    store.append("s-1", events("A"))
    version = store.schema_version()  # type: ignore[attr-defined]
    with EventStore.open(store.url) as again:
        assert again.schema_version() == version  # type: ignore[attr-defined]
        assert [e.type for e in again.read_stream("s-1")] == ["A"]


def test_lease_is_exclusive(store: EventStore) -> None:
    lease = store.acquire_lease("relay:topic")
    with EventStore.open(store.url) as other:
        with pytest.raises(LeaseHeld):
            other.acquire_lease("relay:topic")
        other.acquire_lease("relay:another").release()
        lease.release()
        with other.acquire_lease("relay:topic"):
            pass


def test_asyncio_api(store_url: str) -> None:
    async def scenario() -> None:
        async with await AsyncEventStore.open(store_url) as store:
            assert await store.append("s-1", events("A", "B"), NO_STREAM) == 2
            with pytest.raises(ConcurrencyError):
                await store.append("s-1", events("C"), NO_STREAM)
            assert [e.type async for e in store.read_stream("s-1", backwards=True)] == ["B", "A"]
            assert [e.position async for e in store.read_all(from_position=2)] == [2]
            received = []

            async def follow() -> None:
                async for event in store.subscribe():
                    received.append(event.type)
                    if len(received) == 4:
                        return

            task = asyncio.create_task(follow())
            await store.append("s-2", events("C", "D"))
            await asyncio.wait_for(task, 10)
            assert received == ["A", "B", "C", "D"]
            assert await store.stream_version("s-2") == 2
            assert await store.head_position() == 4
            await store.set_checkpoint("c", 3)
            assert await store.get_checkpoint("c") == 3

    asyncio.run(scenario())
