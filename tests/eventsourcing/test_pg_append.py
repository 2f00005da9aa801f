"""The PostgreSQL append's own path: `firth_append` prepared once per connection and run
through libpq outside transactions, psycopg's execute inside them. What each must keep: a
statement found missing is prepared again, a unique violation still resolves idempotent
retries, an append inside a transaction commits or rolls back with it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from firth.eventsourcing import DuplicateEventError, EventStore, EventStoreError, NewEvent
from firth.eventsourcing import postgres as postgres_module

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[EventStore]:
    with EventStore.open(pg_url) as store:
        yield store


def test_an_append_after_its_statement_was_deallocated_prepares_it_again(
    pg_store: EventStore,
) -> None:
    assert pg_store.append("acct-1", [NewEvent("E", {"i": 1})]) == 1
    with pg_store.transaction() as tx:
        tx.execute("DEALLOCATE ALL")
    assert pg_store.append("acct-1", [NewEvent("E", {"i": 2})], 1) == 2
    with pg_store.transaction() as tx:
        tx.execute("DEALLOCATE " + postgres_module._APPEND_STATEMENT.decode())
    assert pg_store.append("acct-1", [NewEvent("E", {"i": 3})], 2) == 3
    assert [event.data for event in pg_store.read_stream("acct-1")] == [
        {"i": 1},
        {"i": 2},
        {"i": 3},
    ]


@pytest.mark.parametrize("first_statement", [True, False])
def test_an_append_inside_a_transaction_rolls_back_with_it(
    pg_store: EventStore, first_statement: bool
) -> None:
    with pytest.raises(RuntimeError), pg_store.transaction() as tx:
        if first_statement:
            tx.lock_checkpoint("append-inside")
        assert pg_store.append("inside-1", [NewEvent("E", {})]) == 1
        raise RuntimeError("roll back")
    assert pg_store.stream_version("inside-1") == 0
    with pg_store.transaction() as tx:
        tx.lock_checkpoint("append-inside")
        pg_store.append("inside-1", [NewEvent("E", {})])
    assert pg_store.stream_version("inside-1") == 1
    assert pg_store.append("inside-1", [NewEvent("E", {})], 1) == 2  # outside again


def test_a_stream_id_with_nul_is_refused_and_the_store_works_on(pg_store: EventStore) -> None:
    with pytest.raises(EventStoreError, match="NUL"):
        pg_store.append("bad\x00id", [NewEvent("E", {})])
    assert pg_store.append("good-1", [NewEvent("E", {})]) == 1


def test_odd_text_is_stored_exactly(pg_store: EventStore) -> None:
    """Parameters go as text: quotes, backslashes, braces, commas and non-ASCII arrive as
    they were."""
    stream = "odd-'\"\\{},ü✓ 1"
    data = {"s": "'\"\\{},ü✓\n\t", "big": 2**70, "f": 0.1}
    metadata = {"m": 'é\\"', "n": None}
    event = NewEvent("Typ'e\"\\{,}ü", data, metadata)
    assert pg_store.append(stream, [event]) == 1
    (read,) = pg_store.read_stream(stream)
    assert (read.stream_id, read.type, read.data, read.metadata, read.event_id) == (
        stream,
        event.type,
        data,
        metadata,
        event.event_id,
    )


def _wait_for_lock(admin: psycopg.Connection, pid: int) -> None:
    deadline = time.monotonic() + 20
    while not admin.execute(
        "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'", (pid,)
    ).fetchone():
        assert time.monotonic() < deadline, "the append never waited on the other insert"
        time.sleep(0.01)


@pytest.mark.parametrize("same_place", [True, False])
def test_a_unique_violation_resolves_as_before(
    pg_url: str, pg_store: EventStore, same_place: bool
) -> None:
    """Another session inserts the event's id after the append checked the ids, and commits
    while the append waits on it: the append's unique violation is a retry of the same event
    (same stream and version: its version returned) or a duplicate id elsewhere (refused)."""
    event = NewEvent("E", {})
    stream = "race-1" if same_place else "race-2"
    blocker = psycopg.connect(pg_url)
    blocker.execute(
        "INSERT INTO events (stream_id, version, event_id, type, category, data)"
        " VALUES ('race-1', 1, %s, 'E', 'race', '{}')",
        (event.event_id,),
    )
    pid = pg_store.backend_pid()  # type: ignore[attr-defined]
    outcome: list[BaseException | int] = []

    def append() -> None:
        try:
            outcome.append(pg_store.append(stream, [event]))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=append)
    thread.start()
    with psycopg.connect(pg_url, autocommit=True) as admin:
        _wait_for_lock(admin, pid)
    blocker.commit()
    blocker.close()
    thread.join(20)
    (result,) = outcome
    if same_place:
        assert result == 1
    else:
        assert isinstance(result, DuplicateEventError)
    assert pg_store.stream_version("race-2") == 0
