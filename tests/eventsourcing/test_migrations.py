"""Schema migrations of databases that an earlier Firth left behind.

A PostgreSQL database at each earlier schema version is built by the store's own migration code
stopped at that version (its migration list cut short), and filled the way that release filled
it: events inserted directly into the version-1 `events` table (release 1 had no `firth_append`),
a soft delete, a snapshot and a checkpoint. `EventStore.open` must bring it to the current
version without moving an event, record each migration once, and let appends continue where the
old release stopped; opening it again must change nothing. A database whose schema is newer than
this code knows is refused on both backends, and left as it was.

SQLite has a single schema version so far, so it has no upgrade to test (a test below says so
and fails once SQLite gains a migration 2, asking for one).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from firth.eventsourcing import (
    NO_STREAM,
    ConcurrencyError,
    DuplicateEventError,
    EventStore,
    EventStoreError,
    NewEvent,
    NotAnEventStore,
    RecordedEvent,
)
from firth.eventsourcing import postgres as postgres_module
from firth.eventsourcing.schema import (
    MIGRATIONS_TABLE,
    POSTGRES_MIGRATIONS,
    SQLITE_MIGRATIONS,
    Migration,
)

# The schema version this code brings each dialect's database to.
LATEST_VERSION = {
    "sqlite": SQLITE_MIGRATIONS[-1].version,
    "postgresql": POSTGRES_MIGRATIONS[-1].version,
}
PG_LATEST = LATEST_VERSION["postgresql"]

# What the old release stored: (stream, version, type, data, metadata), in global order; the
# streams interleave so that positions and versions differ.
OLD_EVENTS: list[tuple[str, int, str, Any, dict[str, Any] | None]] = [
    ("account-1", 1, "Opened", {"owner": "ada"}, {"by": "teller-3"}),
    ("account-1", 2, "Deposited", {"amount": 100}, None),
    ("order-7", 1, "Placed", {"items": ["x", "y"], "note": "ünïcode"}, {"correlation": "c-1"}),
    ("account-1", 3, "Deposited", {"amount": 5.5}, None),
    ("temp-9", 1, "Created", {}, None),
    ("order-7", 2, "Shipped", {"carrier": None}, None),
]


@dataclass(frozen=True)
class OldDatabase:
    url: str
    version: int
    events: list[RecordedEvent]  # every event, as read through the old schema


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Run one statement on the database behind a store URL, outside the store; commit."""
    if url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
            rows = db.execute(sql).fetchall()
            db.commit()
            return rows
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql)
        return cursor.fetchall() if cursor.description else []


def _migration_rows(url: str) -> list[tuple[Any, ...]]:
    return _rows(url, f"SELECT version, name, applied_at FROM {MIGRATIONS_TABLE} ORDER BY version")


def _has_append_function(url: str) -> bool:
    return _rows(url, "SELECT to_regproc('firth_append') IS NOT NULL")[0][0] is True


def _insert_as_old_release(url: str) -> None:
    """The old releases' append: a plain INSERT into the version-1 table (position and
    recorded_at from their column defaults), in one transaction per event."""
    with psycopg.connect(url, autocommit=True) as conn:
        for stream, version, type_, data, metadata in OLD_EVENTS:
            conn.execute(
                "INSERT INTO events (stream_id, version, event_id, type, category, data, metadata)"
                " VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s::jsonb)",
                (
                    stream,
                    version,
                    uuid.uuid4(),
                    type_,
                    stream.split("-")[0],
                    json.dumps(data),
                    None if metadata is None else json.dumps(metadata),
                ),
            )


@pytest.fixture(params=range(1, PG_LATEST), ids=lambda version: f"from-v{version}")
def old_database(
    request: pytest.FixtureRequest, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> OldDatabase:
    """A PostgreSQL database at an earlier schema version, holding events and side tables."""
    version = int(request.param)
    with monkeypatch.context() as patch:
        patch.setattr(
            postgres_module,
            "POSTGRES_MIGRATIONS",
            tuple(m for m in POSTGRES_MIGRATIONS if m.version <= version),
        )
        with EventStore.open(pg_url) as old:
            assert old.schema_version() == version  # type: ignore[attr-defined]
            _insert_as_old_release(pg_url)
            old.delete_stream("temp-9", expected_version=1)
            old.save_snapshot("account-1", 2, "Account", {"balance": 100})
            old.set_checkpoint("balances", 4)
            events = list(old.read_all())
    assert len(events) == len(OLD_EVENTS)
    return OldDatabase(pg_url, version, events)


@pytest.mark.postgres
def test_the_old_database_lacks_what_later_migrations_add(old_database: OldDatabase) -> None:
    applied = [row[:2] for row in _migration_rows(old_database.url)]
    assert applied == [(m.version, m.name) for m in POSTGRES_MIGRATIONS[: old_database.version]]
    assert _has_append_function(old_database.url) is (old_database.version >= 2)


@pytest.mark.postgres
def test_upgrade_keeps_every_event_where_it_was(old_database: OldDatabase) -> None:
    with EventStore.open(old_database.url) as store:
        assert store.schema_version() == PG_LATEST  # type: ignore[attr-defined]
        recorded = list(store.read_all())
        assert recorded == old_database.events  # ids, data, metadata, timestamps included
        assert [(e.position, e.stream_id, e.version, e.type, e.data) for e in recorded] == [
            (position, stream, version, type_, data)
            for position, (stream, version, type_, data, _) in enumerate(OLD_EVENTS, 1)
        ]
        assert recorded[0].metadata == {"by": "teller-3"}
        assert [e.version for e in store.read_stream("account-1")] == [1, 2, 3]
        assert [e.position for e in store.read_stream("order-7")] == [3, 6]
        assert list(store.read_stream("temp-9")) == []  # the soft delete still holds
        assert store.head_position() == len(OLD_EVENTS)
        snapshot = store.load_snapshot("account-1")
        assert snapshot is not None and (snapshot.version, snapshot.state) == (2, {"balance": 100})
        assert store.get_checkpoint("balances") == 4


@pytest.mark.postgres
def test_upgrade_records_each_migration_once(old_database: OldDatabase) -> None:
    EventStore.open(old_database.url).close()
    applied = [row[:2] for row in _migration_rows(old_database.url)]
    assert applied == [(m.version, m.name) for m in POSTGRES_MIGRATIONS]
    assert _has_append_function(old_database.url)


@pytest.mark.postgres
def test_appends_after_upgrade_continue_versions_and_positions(old_database: OldDatabase) -> None:
    last = len(OLD_EVENTS)
    with EventStore.open(old_database.url) as store:
        deposits = [NewEvent("Deposited", {"amount": n}) for n in (1, 2)]
        assert store.append("account-1", deposits, expected_version=3) == 5
        with pytest.raises(ConcurrencyError) as refused:
            store.append("order-7", [NewEvent("Cancelled", {})], expected_version=1)
        assert refused.value.actual_version == 2
        assert store.append("order-8", [NewEvent("Placed", {})], expected_version=NO_STREAM) == 1
        # The stream deleted by the old release comes back with its versions continuing.
        assert store.append("temp-9", [NewEvent("Recreated", {})], NO_STREAM) == 2
        assert [(e.position, e.stream_id, e.version) for e in store.read_all(last + 1)] == [
            (last + 1, "account-1", 4),
            (last + 2, "account-1", 5),
            (last + 3, "order-8", 1),
            (last + 4, "temp-9", 2),
        ]
        assert [e.position for e in store.read_all()] == list(range(1, last + 5))  # no gap
        assert [e.type for e in store.read_stream("temp-9")] == ["Recreated"]
        assert [e.event_id for e in store.read_stream("account-1", 4)] == [
            event.event_id for event in deposits
        ]


@pytest.mark.postgres
def test_event_ids_stored_before_the_upgrade_keep_appends_idempotent(
    old_database: OldDatabase,
) -> None:
    opened, deposited = old_database.events[0], old_database.events[1]
    with EventStore.open(old_database.url) as store:
        retry = [
            NewEvent(e.type, e.data, e.metadata or None, event_id=e.event_id)
            for e in (opened, deposited)
        ]
        assert store.append("account-1", retry) == 2  # a retry of versions 1-2: stored already
        with pytest.raises(DuplicateEventError):
            store.append("account-2", [NewEvent("Opened", {}, event_id=opened.event_id)])
        assert store.head_position() == len(OLD_EVENTS)
        assert list(store.read_all()) == old_database.events


@pytest.mark.postgres
def test_opening_an_upgraded_database_again_changes_nothing(old_database: OldDatabase) -> None:
    with EventStore.open(old_database.url) as store:
        store.append("account-1", [NewEvent("Deposited", {"amount": 7})])
        migrated = _migration_rows(old_database.url)
        stored = list(store.read_all())
    with EventStore.open(old_database.url) as again:
        assert again.schema_version() == PG_LATEST  # type: ignore[attr-defined]
        assert list(again.read_all()) == stored
        assert _migration_rows(old_database.url) == migrated  # same rows, same applied_at
        assert again.append("account-1", [NewEvent("Deposited", {"amount": 8})]) == 5


@pytest.mark.postgres
def test_concurrent_opens_upgrade_once(old_database: OldDatabase) -> None:
    """Two stores opening the old database at once: one migrates, the other then finds it done.

    A lock on the migrations table holds both openers in their migration transaction until both
    wait (one for that table, one for the migration lock, or both for the table if there were no
    migration lock); then both go on.
    """
    opened: list[int] = []
    failed: list[BaseException] = []

    def open_store() -> None:
        try:
            with EventStore.open(old_database.url) as store:
                opened.append(store.schema_version())  # type: ignore[attr-defined]
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(2)]
    with psycopg.connect(old_database.url) as holder:
        holder.execute(f"LOCK TABLE {MIGRATIONS_TABLE} IN ACCESS EXCLUSIVE MODE")
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while _waiting_sessions(holder) < 2:
            assert time.monotonic() < deadline, "the openers never reached their migration"
            time.sleep(0.01)
        holder.rollback()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert failed == [] and opened == [PG_LATEST] * 2
    applied = [row[:2] for row in _migration_rows(old_database.url)]
    assert applied == [(m.version, m.name) for m in POSTGRES_MIGRATIONS]


def _waiting_sessions(conn: psycopg.Connection[Any]) -> int:
    """How many other sessions of this database wait for a lock."""
    with psycopg.connect(conn.info.dsn, autocommit=True) as observer:
        row = observer.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND pid <> %s",
            (conn.info.backend_pid,),
        ).fetchone()
    assert row is not None
    return int(row[0])


# What records a migration the running code does not know, per dialect.
_FUTURE_ROW = {
    "sqlite": "INSERT INTO {table} (version, name, applied_at) VALUES ({version}, 'future', 0)",
    "postgresql": "INSERT INTO {table} (version, name) VALUES ({version}, 'future')",
}


def test_a_newer_schema_is_refused_and_left_untouched(store_url: str) -> None:
    with EventStore.open(store_url) as store:
        dialect = store.dialect
        store.append("account-1", [NewEvent("Opened", {})])
    latest = LATEST_VERSION[dialect]
    future = latest + 1
    _rows(store_url, _FUTURE_ROW[dialect].format(table=MIGRATIONS_TABLE, version=future))
    migrated = _migration_rows(store_url)

    with pytest.raises(NotAnEventStore) as refused:
        EventStore.open(store_url)
    assert f"schema version {future}" in str(refused.value)
    assert f"knows up to {latest}" in str(refused.value)
    assert refused.value.code == "not-an-event-store"
    assert _migration_rows(store_url) == migrated
    assert _rows(store_url, "SELECT count(*) FROM events") == [(1,)]


def _opened_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> list[tuple[psycopg.Connection[Any], int]]:
    """Every connection the PostgreSQL store opens from now on, with its server session's
    process id, in order."""
    opened: list[tuple[psycopg.Connection[Any], int]] = []
    connect = postgres_module.PostgresEventStore._connect

    def recording(self: postgres_module.PostgresEventStore) -> psycopg.Connection[Any]:
        conn = connect(self)
        opened.append((conn, conn.info.backend_pid))
        return conn

    monkeypatch.setattr(postgres_module.PostgresEventStore, "_connect", recording)
    return opened


def _session_ends(url: str, backend_pid: int, timeout: float = 10.0) -> bool:
    """Whether the server session `backend_pid` is gone within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _rows(url, f"SELECT count(*) FROM pg_stat_activity WHERE pid = {backend_pid}") == [(0,)]:
            return True
        time.sleep(0.02)
    return False


@pytest.mark.postgres
def test_a_refused_postgres_database_leaves_no_connection_open(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with EventStore.open(pg_url):
        pass
    _rows(pg_url, _FUTURE_ROW["postgresql"].format(table=MIGRATIONS_TABLE, version=PG_LATEST + 1))
    opened = _opened_connections(monkeypatch)

    with pytest.raises(NotAnEventStore):
        EventStore.open(pg_url)
    [(conn, backend_pid)] = opened
    assert conn.closed
    assert _session_ends(pg_url, backend_pid)


@pytest.mark.postgres
def test_a_failed_postgres_migration_leaves_no_connection_open_and_nothing_applied(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = Migration(PG_LATEST + 1, "broken", ("CREATE TABLE events (x integer)",))
    monkeypatch.setattr(postgres_module, "POSTGRES_MIGRATIONS", (*POSTGRES_MIGRATIONS, broken))
    opened = _opened_connections(monkeypatch)

    with pytest.raises(EventStoreError, match="already exists"):
        EventStore.open(pg_url)
    [(conn, backend_pid)] = opened
    assert conn.closed
    assert _session_ends(pg_url, backend_pid)
    # the migrations' transaction was rolled back whole, the migrations table with it
    tables = f"SELECT to_regclass('{MIGRATIONS_TABLE}') IS NULL, to_regclass('events') IS NULL"
    assert _rows(pg_url, tables) == [(True, True)]


def test_sqlite_has_no_older_schema_to_upgrade_from() -> None:
    assert [m.version for m in SQLITE_MIGRATIONS] == [1], (
        "SQLite has a migration 2 now: add an upgrade test from version 1 to this file"
    )
