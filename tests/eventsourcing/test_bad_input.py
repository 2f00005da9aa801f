"""Bad input and failures: not-a-database files, bad URLs, locked and dropped connections."""

from __future__ import annotations

import os
import sqlite3
import threading
import time

import psycopg
import pytest

from firth.eventsourcing import (
    EventStore,
    InvalidURL,
    NewEvent,
    NotAnEventStore,
    StoreUnavailable,
)


@pytest.mark.parametrize("content", [os.urandom(4096), b"hello, I am a text file\n" * 100])
def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path, content: bytes) -> None:
    path = tmp_path / "events.db"
    path.write_bytes(content)
    with pytest.raises(NotAnEventStore) as refused:
        EventStore.open(f"sqlite:///{path}")
    assert str(path) in str(refused.value)
    assert path.read_bytes() == content


def test_an_sqlite_database_of_another_application_is_refused(tmp_path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, what TEXT)")
    with pytest.raises(NotAnEventStore, match="not a Firth event store"):
        EventStore.open(f"sqlite:///{path}")


def test_a_newer_schema_is_refused(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    EventStore.open(url).close()
    with sqlite3.connect(tmp_path / "events.db") as db:
        db.execute("INSERT INTO schema_migrations VALUES (999, 'from the future', 0)")
    with pytest.raises(NotAnEventStore, match="schema version 999"):
        EventStore.open(url)


def test_bad_urls() -> None:
    with pytest.raises(InvalidURL):
        EventStore.open("mysql://localhost/events")
    with pytest.raises(NotAnEventStore):
        EventStore.open("sqlite://relative-without-third-slash.db")


def test_unreachable_postgresql_is_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable):
        EventStore.open("postgresql://postgres@127.0.0.1:1/none", connect_timeout=2)


def test_sqlite_write_lock_timeout_is_store_unavailable(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    with EventStore.open(url, busy_timeout=0.2) as store:
        blocker = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable, match="locked"):
            store.append("s-1", [NewEvent("E", {})])
        blocker.execute("ROLLBACK")
        blocker.close()
        assert store.append("s-1", [NewEvent("E", {})]) == 1


@pytest.mark.postgres
def test_dropped_postgresql_connection_mid_append(pg_url: str) -> None:
    store = EventStore.open(pg_url)
    store_pid = store.backend_pid()  # type: ignore[attr-defined]
    # Another session holds an uncommitted row with version 2 of the stream, so the store's
    # insert of versions 1..3 stops half-way, waiting on that row's unique-index entry.
    blocker = psycopg.connect(pg_url)
    blocker.execute(
        "INSERT INTO events (stream_id, version, event_id, type, category, data)"
        " VALUES ('acct-1', 2, gen_random_uuid(), 'Blocker', 'acct', '{}')"
    )
    outcome: list[BaseException | int] = []

    def append() -> None:
        try:
            outcome.append(store.append("acct-1", [NewEvent("E", {"i": i}) for i in range(3)]))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=append)
    thread.start()
    with psycopg.connect(pg_url, autocommit=True) as admin:
        deadline = time.monotonic() + 20
        while not admin.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'",
            (store_pid,),
        ).fetchone():
            assert time.monotonic() < deadline, "the append never reached the blocking insert"
            time.sleep(0.01)
        assert admin.execute("SELECT pg_terminate_backend(%s)", (store_pid,)).fetchone() == (True,)
        thread.join(20)
        blocker.rollback()
        blocker.close()
        (result,) = outcome
        assert isinstance(result, StoreUnavailable)
        assert "lost" in str(result) or "terminat" in str(result)
        assert admin.execute("SELECT count(*) FROM events").fetchone() == (0,)
    # The store reconnects on its next call.
    assert store.append("acct-1", [NewEvent("E", {"i": 9})]) == 1
    assert [e.data for e in store.read_stream("acct-1")] == [{"i": 9}]
    store.close()
