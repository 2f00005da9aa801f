"""The PostgreSQL transaction's own round trips (BEGIN sent with the first statement, the
checkpoint upsert with the next statement or the COMMIT, savepoints for nested ones) and the
prepared append, under what users meet: a connection killed at each step, a failing commit,
other threads meanwhile, names and stream ids that need quoting. Each failure must surface as
the store's error, commit nothing partial and leave the store working on the next call."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from firth.eventsourcing import EventStore, EventStoreError, NewEvent
from firth.eventsourcing.errors import StoreUnavailable

from . import es_pg

pytestmark = pytest.mark.postgres

WAIT = 10.0  # seconds: the bound of every wait on a condition


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[EventStore]:
    with EventStore.open(pg_url) as store:
        with store.transaction() as tx:
            tx.execute("CREATE TABLE marks (label TEXT PRIMARY KEY)")
        yield store


@pytest.fixture
def admin(pg_server: es_pg.PgServer, pg_url: str) -> Iterator[psycopg.Connection]:
    """A connection of the test's own, on the store's schema, to kill and to look."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


def _marks(admin: psycopg.Connection) -> list[str]:
    return sorted(row[0] for row in admin.execute("SELECT label FROM marks").fetchall())


def _checkpoint(admin: psycopg.Connection, name: str) -> int | None:
    row = admin.execute("SELECT position FROM checkpoints WHERE name = %s", (name,)).fetchone()
    return None if row is None else int(row[0])


def _state(admin: psycopg.Connection, pid: int) -> str | None:
    row = admin.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return None if row is None else str(row[0])


def _kill(admin: psycopg.Connection, pid: int) -> None:
    """Terminate the backend `pid` and wait until it is gone."""
    assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
    deadline = time.monotonic() + WAIT
    while _state(admin, pid) is not None:
        assert time.monotonic() < deadline, "the backend did not exit"
        time.sleep(0.01)


def _works(store: EventStore, admin: psycopg.Connection, label: str) -> None:
    """The store works again: a transaction commits, an append outside one is stored."""
    with store.transaction() as tx:
        tx.lock_checkpoint("works")
        tx.execute("INSERT INTO marks VALUES (?)", (label,))
        tx.set_checkpoint("works", len(label))
    assert label in _marks(admin)
    assert _checkpoint(admin, "works") == len(label)
    version = store.stream_version("works-1")
    assert store.append("works-1", [NewEvent("W", {})], version) == version + 1


# -- a connection lost at each step ------------------------------------------------------------


def test_a_connection_lost_before_the_transaction_sent_anything(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    pid = pg_store.backend_pid()
    with pytest.raises(StoreUnavailable), pg_store.transaction() as tx:
        _kill(admin, pid)
        tx.lock_checkpoint("lost")  # BEGIN goes with this statement, on a dead connection
        tx.set_checkpoint("lost", 3)
    assert _checkpoint(admin, "lost") is None
    _works(pg_store, admin, "after-lost-before-begin")


def test_a_connection_lost_before_store_work_joins_the_transaction(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    pid = pg_store.backend_pid()
    with pytest.raises(StoreUnavailable), pg_store.transaction():
        _kill(admin, pid)
        pg_store.append("lost-1", [NewEvent("E", {})])
    assert pg_store.stream_version("lost-1") == 0
    _works(pg_store, admin, "after-lost-join")


def test_a_connection_lost_after_begin_commits_nothing(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    pid = pg_store.backend_pid()
    with pytest.raises(StoreUnavailable), pg_store.transaction() as tx:
        assert tx.lock_checkpoint("mid") == 0
        tx.execute("INSERT INTO marks VALUES (?)", ("partial",))
        _kill(admin, pid)
        tx.execute("INSERT INTO marks VALUES (?)", ("second",))
    assert _marks(admin) == []
    _works(pg_store, admin, "after-lost-mid")


def test_a_connection_lost_with_the_checkpoint_pending_at_commit(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    """The upsert is sent with the COMMIT; the connection is gone by then: the store's error,
    neither the read model's row nor the checkpoint is stored."""
    pid = pg_store.backend_pid()
    with pytest.raises(StoreUnavailable), pg_store.transaction() as tx:
        assert tx.lock_checkpoint("pending") == 0
        tx.execute("INSERT INTO marks VALUES (?)", ("partial",))
        tx.set_checkpoint("pending", 7)
        _kill(admin, pid)
    assert _marks(admin) == []
    assert _checkpoint(admin, "pending") is None
    _works(pg_store, admin, "after-lost-commit")


def test_an_append_after_a_lost_connection_prepares_its_statement_again(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    assert pg_store.append("re-1", [NewEvent("E", {"i": 1})]) == 1
    _kill(admin, pg_store.backend_pid())
    with pytest.raises(StoreUnavailable):
        pg_store.append("re-1", [NewEvent("E", {"i": 2})], 1)
    assert pg_store.append("re-1", [NewEvent("E", {"i": 2})], 1) == 2
    assert pg_store.append("re-1", [NewEvent("E", {"i": 3})], 2) == 3
    assert [event.data["i"] for event in pg_store.read_stream("re-1")] == [1, 2, 3]


# -- commit failures, empty and nested transactions --------------------------------------------


def test_a_checkpoint_failing_at_commit_leaves_the_connection_out_of_any_transaction(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    with pytest.raises(EventStoreError), pg_store.transaction() as tx:
        tx.lock_checkpoint("huge")
        tx.execute("INSERT INTO marks VALUES (?)", ("lost",))
        tx.set_checkpoint("huge", 2**70)  # beyond bigint: fails with the COMMIT
    assert _state(admin, pg_store.backend_pid()) == "idle"
    # Nothing of the failed one is sent again with the next transaction.
    with pg_store.transaction() as tx:
        tx.set_checkpoint("next", 1)
    assert _checkpoint(admin, "next") == 1
    assert _checkpoint(admin, "huge") is None
    # Work outside a transaction is committed at once (seen by another session).
    pg_store.set_checkpoint("outside", 2)
    assert _checkpoint(admin, "outside") == 2
    assert _marks(admin) == []


def test_an_empty_transaction_leaves_no_transaction_open(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    pid = pg_store.backend_pid()
    with pg_store.transaction():
        assert _state(admin, pid) == "idle"  # nothing sent yet
    assert _state(admin, pid) == "idle"
    with pytest.raises(RuntimeError), pg_store.transaction():
        raise RuntimeError("nothing to roll back")
    assert _state(admin, pid) == "idle"
    pg_store.set_checkpoint("outside", 4)
    assert _checkpoint(admin, "outside") == 4


def test_a_transaction_is_open_on_the_server_only_from_its_first_statement(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    pid = pg_store.backend_pid()
    with pg_store.transaction() as tx:
        tx.set_checkpoint("kept", 5)  # kept for the COMMIT
        assert _state(admin, pid) == "idle"
        tx.lock("a-name")
        assert _state(admin, pid) == "idle in transaction"
        assert _checkpoint(admin, "kept") is None  # not committed before the transaction is
    assert _state(admin, pid) == "idle"
    assert _checkpoint(admin, "kept") == 5


def test_a_checkpoint_set_in_a_nested_transaction_is_committed(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    with pg_store.transaction() as outer:
        outer.lock_checkpoint("outer")
        with pg_store.transaction() as inner:
            inner.set_checkpoint("inner", 11)
        outer.set_checkpoint("outer", 12)
    assert _checkpoint(admin, "inner") == 11
    assert _checkpoint(admin, "outer") == 12


def test_a_checkpoint_set_last_in_a_nested_transaction_is_committed(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    with pg_store.transaction(), pg_store.transaction() as inner:
        inner.set_checkpoint("inner-only", 13)
    assert _checkpoint(admin, "inner-only") == 13


def test_a_failing_nested_transaction_rolls_back_its_checkpoint_only(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    with pg_store.transaction() as outer:
        outer.execute("INSERT INTO marks VALUES (?)", ("outer",))
        with pytest.raises(RuntimeError), pg_store.transaction() as inner:
            inner.execute("INSERT INTO marks VALUES (?)", ("inner",))
            inner.set_checkpoint("inner", 21)
            raise RuntimeError("roll back the savepoint")
        outer.set_checkpoint("outer", 22)
    assert _marks(admin) == ["outer"]
    assert _checkpoint(admin, "inner") is None
    assert _checkpoint(admin, "outer") == 22


def test_a_checkpoint_set_in_a_nested_transaction_is_read_back_before_it_ends(
    pg_store: EventStore,
) -> None:
    with pg_store.transaction() as outer, pg_store.transaction() as inner:
        inner.set_checkpoint("seen", 3)
        assert outer.get_checkpoint("seen") == 3
        assert pg_store.get_checkpoint("seen") == 3
        assert inner.lock_checkpoint("seen") == 3


def test_a_checkpoint_set_by_the_outer_transaction_inside_a_savepoint_rolls_back_with_it(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    with pg_store.transaction() as outer:
        outer.set_checkpoint("outer", 1)
        with pytest.raises(RuntimeError), pg_store.transaction():
            outer.set_checkpoint("outer", 2)
            raise RuntimeError("roll back the savepoint")
        assert outer.get_checkpoint("outer") == 1
        outer.set_checkpoint("later", 5)  # kept for the COMMIT again
    assert _checkpoint(admin, "outer") == 1
    assert _checkpoint(admin, "later") == 5
