"""The PostgreSQL backend (psycopg 3).

Global order: an identity column is assigned at INSERT but becomes visible at COMMIT, so with
concurrent writers a reader that resumes from "the last position I saw" could skip a lower
position that commits after a higher one. This backend serialises appends with one
transaction-level advisory lock (`pg_advisory_xact_lock`), taken as the first statement of every
append and released by COMMIT/ROLLBACK after the transaction became visible. Positions are
therefore handed out in commit order and a reader never skips a late commit. Cost: one append
commits at a time (readers are never blocked). The alternative (ordering by transaction id and
reading below `pg_snapshot_xmin`) keeps writers concurrent but lets one long transaction stall
every reader; high-water-mark gap detection was rejected as error-prone. A failed append may leave
an unused position (identity values are not transactional) only if its transaction dies after
the INSERT (a lost connection); refused and idempotent appends are decided before it, so they
leave no hole. Later appends never fill a hole.

Appends: one call of the server-side function `firth_append` (schema migration 2) as a single
autocommit statement, so one round trip per append. It takes the append lock, reads the stream's
version and the batch's already-stored ids, decides the expected version, inserts, and NOTIFYs;
the lock is held only while the server works and commits, never while this process waits to be
scheduled, which is what limits concurrent writers. It plans every statement afresh
(`plan_cache_mode = force_custom_plan`): a plan cached while the table was small checked the
batch's ids by sequential scan, making batched appends slower as the table grew.

Connections: one per store object, in autocommit mode with explicit transactions, shared by the
store's threads under a lock, and reopened on the next call after it was lost. A lost
connection during an append surfaces as `StoreUnavailable`; PostgreSQL rolls the transaction
back, so nothing of that append is stored.

Subscriptions: every append NOTIFYs the channel `firth_events` (delivered at commit); a store
with subscriptions LISTENs on a connection of its own and wakes its subscribers at once, so the
poll (every 0.5 s) is only a safety net.

Leases use session-level advisory locks on a connection of their own, released by PostgreSQL
when that connection closes, including when its process dies.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import psycopg.errors
from psycopg.types.json import set_json_loads

from firth.eventsourcing.codec import decode, encode, encode_unchecked
from firth.eventsourcing.errors import (
    EventStoreError,
    LeaseHeld,
    LeaseLost,
    NotAnEventStore,
    StoreUnavailable,
)
from firth.eventsourcing.notify import signal_for
from firth.eventsourcing.records import (
    ExpectedVersion,
    RecordedEvent,
    Snapshot,
    StreamInfo,
    StreamMetadata,
    StreamState,
    recorded_events,
)
from firth.eventsourcing.schema import (
    ALREADY_STORED,
    APPENDED,
    EXPECT_ANY,
    EXPECT_NO_STREAM,
    EXPECT_STREAM_EXISTS,
    MIGRATIONS_TABLE,
    PG_APPEND_LOCK,
    PG_LOCK_NAMESPACE,
    POSTGRES_MIGRATIONS,
)
from firth.eventsourcing.store import (
    EncodedEvent,
    EventStore,
    Lease,
    Transaction,
    idempotent_version,
    refuse,
)

# Advisory lock keys: (namespace, id) pairs. The namespace is "FIRT" in ASCII.
LOCK_NAMESPACE = PG_LOCK_NAMESPACE
APPEND_LOCK = (
    PG_APPEND_LOCK  # held by every append: one committer at a time (position order = commit order)
)
MIGRATION_LOCK = 2  # held while checking and applying migrations
LEASE_NAMESPACE = 0x4649524C  # "FIRL": leases are (LEASE_NAMESPACE, hashtext(name))
NAMED_LOCK_NAMESPACE = 0x46495258  # "FIRX": Transaction.lock(name) takes (it, hashtext(name))

NOTIFY_CHANNEL = "firth_events"  # every append NOTIFYs it at commit; subscribers' stores LISTEN
LISTEN_CHECK_INTERVAL = 1.0  # seconds between the listener's checks for close()

# Events are read with the JSON as text, the id as its 16 bytes and the time as seconds since
# the epoch, in binary results, and decoded by `records`/`codec` (one JSON scan per page; id and
# time only when asked for): psycopg's jsonb, uuid and timestamptz loaders run Python per value,
# three per event. A float8 holds a timestamptz's microseconds exactly until 2106.
_COLUMNS = (
    "position, stream_id, version, type, data::text, metadata::text, uuid_send(event_id),"
    " extract(epoch FROM recorded_at)::float8"
)
# The whole append (lock, checks, insert, notify) is the server-side function of migrations 2-4,
# run as a single autocommit statement: one round trip, its own transaction, and the append lock
# is held only while the server works and commits, never while this process is scheduled.
_APPEND = "SELECT status, version FROM firth_append(%s, %s, %s, %b::uuid[], %s, %s, %s)"
_EXPECTED_CODES = {
    StreamState.ANY: EXPECT_ANY,
    StreamState.NO_STREAM: EXPECT_NO_STREAM,
    StreamState.STREAM_EXISTS: EXPECT_STREAM_EXISTS,
}


def _json_loads(data: str | bytes) -> Any:
    """jsonb loader: the direct scanner of `codec.decode` (psycopg hands over bytes)."""
    return decode(data if isinstance(data, str) else bytes(data).decode())


def _qmark_to_pyformat(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresEventStore(EventStore):
    """`EventStore` on a PostgreSQL database (`postgresql://user@host:port/db`)."""

    dialect = "postgresql"

    def __init__(
        self, url: str, *, poll_interval: float = 0.5, connect_timeout: float = 10.0
    ) -> None:
        self.url = url
        self._closing = threading.Event()
        self._listener: threading.Thread | None = None
        self.poll_interval = poll_interval
        self._connect_timeout = connect_timeout
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[Any] | None = None
        with self._lock, self._translate():
            conn = self._connection()
            info = conn.info
            self._signal = signal_for(f"postgresql:{info.host}:{info.port}/{info.dbname}")
            self._migrate(conn)

    # -- plumbing --------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(
            self.url, autocommit=True, connect_timeout=int(self._connect_timeout)
        )
        set_json_loads(_json_loads, conn)
        return conn

    def _connection(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                conn.close()
            self._conn = conn = self._connect()
        return conn

    def _watch(self) -> None:
        with self._lock:
            if self._listener is None or not self._listener.is_alive():
                self._listener = threading.Thread(
                    target=self._listen, name="firth-eventstore-listen", daemon=True
                )
                self._listener.start()

    def _listen(self) -> None:
        """LISTEN on a connection of its own and turn notifications into the database's
        in-process signal, so subscribers see other processes' appends at once; the poll
        stays as the safety net (and covers the time this is reconnecting)."""
        while not self._closing.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._signal.notify()  # appends made while nobody was listening
                    while not self._closing.is_set():
                        for _ in conn.notifies(timeout=LISTEN_CHECK_INTERVAL):
                            self._signal.notify()
            except psycopg.Error:
                self._closing.wait(LISTEN_CHECK_INTERVAL)

    def close(self) -> None:
        self._closing.set()
        listener = self._listener
        if listener is not None:
            listener.join(LISTEN_CHECK_INTERVAL + 2)
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        """The choke point where psycopg errors become event store errors."""
        try:
            yield
        except psycopg.errors.UniqueViolation:
            raise
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise StoreUnavailable(
                f"PostgreSQL connection failed or was lost: {exc}".strip()
            ) from exc
        except psycopg.Error as exc:
            raise EventStoreError(f"PostgreSQL: {exc}") from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[psycopg.Connection[Any]]:
        with self._lock, self._translate():
            conn = self._connection()
            with conn.transaction():
                yield conn

    def _query(self, sql: str, params: Sequence[Any] = (), *, binary: bool = False) -> list[Any]:
        with self._lock, self._translate():
            return self._connection().execute(sql, params, binary=binary).fetchall()

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, MIGRATION_LOCK))
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            row = conn.execute(
                f"SELECT coalesce(max(version), 0) FROM {MIGRATIONS_TABLE}"
            ).fetchone()
            applied = row[0] if row else 0
            known = max(m.version for m in POSTGRES_MIGRATIONS)
            if applied > known:
                raise NotAnEventStore(
                    f"database schema version {applied}; this Firth knows up to {known}"
                )
            for migration in POSTGRES_MIGRATIONS:
                if migration.version > applied:
                    for statement in migration.statements:
                        conn.execute(statement)
                    conn.execute(
                        f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )

    def schema_version(self) -> int:
        return int(self._query(f"SELECT max(version) FROM {MIGRATIONS_TABLE}")[0][0])

    def backend_pid(self) -> int:
        """The server process id of this store's connection (for operators and tests)."""
        with self._lock, self._translate():
            return self._connection().info.backend_pid

    # -- appends ---------------------------------------------------------------------------

    def _stored_ids(self, events: list[EncodedEvent]) -> dict[uuid.UUID, tuple[str, int]]:
        rows = self._query(
            "SELECT event_id, stream_id, version FROM events WHERE event_id = ANY(%s::uuid[])",
            ([event.event_id for event in events],),
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    def _append(
        self, stream_id: str, category: str, events: list[EncodedEvent], expected: ExpectedVersion
    ) -> int:
        code = _EXPECTED_CODES[expected] if isinstance(expected, StreamState) else expected
        try:
            with self._lock, self._translate():
                row = (
                    self._connection()
                    .execute(
                        _APPEND,
                        (
                            stream_id,
                            category,
                            code,
                            [event.event_id for event in events],
                            encode_unchecked([event.type for event in events]),
                            "[" + ",".join([event.data for event in events]) + "]",
                            "[" + ",".join([event.metadata or "null" for event in events]) + "]",
                        ),
                    )
                    .fetchone()
                )
        except psycopg.errors.UniqueViolation as exc:
            version = idempotent_version(stream_id, events, self._stored_ids(events))
            if version is None:
                raise EventStoreError(f"append to {stream_id!r} refused: {exc}") from exc
            return version
        assert row is not None
        status, version = int(row[0]), int(row[1])
        if status == APPENDED:
            return version
        if status == ALREADY_STORED:
            stored = idempotent_version(stream_id, events, self._stored_ids(events))
            if stored is None:  # deleted meanwhile by a scavenge: append for real
                return self._append(stream_id, category, events, expected)
            return stored
        # Refused; the ids were checked first (under the same lock), so none is stored.
        raise refuse(stream_id, expected, version)

    # -- reads -----------------------------------------------------------------------------

    def stream_version(self, stream_id: str) -> int:
        rows = self._query(
            "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = %s", (stream_id,)
        )
        return int(rows[0][0])

    def head_position(self) -> int:
        return int(self._query("SELECT coalesce(max(position), 0) FROM events")[0][0])

    def _read_stream_page(
        self, stream_id: str, from_version: int, backwards: bool, limit: int
    ) -> list[RecordedEvent]:
        with self._lock:
            metadata = self.get_stream_metadata(stream_id)
            lowest = 1
            if metadata.truncate_before:
                lowest = max(lowest, metadata.truncate_before)
            if metadata.max_count is not None:
                lowest = max(lowest, self.stream_version(stream_id) - metadata.max_count + 1)
            params: list[Any] = [stream_id]
            if backwards:
                where = "version <= %s AND version >= %s"
                params += [from_version, lowest]
            else:
                where = "version >= %s"
                params.append(max(from_version, lowest))
            if metadata.max_age is not None:
                where += " AND recorded_at >= %s"
                params.append(datetime.now(UTC) - timedelta(seconds=metadata.max_age))
            order = "DESC" if backwards else "ASC"
            params.append(limit)
            rows = self._query(
                f"SELECT {_COLUMNS} FROM events WHERE stream_id = %s AND {where}"
                f" ORDER BY version {order} LIMIT %s",
                params,
                binary=True,
            )
        return recorded_events(rows)

    def _read_all_page(
        self,
        from_position: int,
        types: Sequence[str] | None,
        categories: Sequence[str] | None,
        limit: int,
    ) -> list[RecordedEvent]:
        params: list[Any] = [from_position]
        where = "position >= %s"
        if types:
            where += " AND type = ANY(%s)"
            params.append(list(types))
        if categories:
            where += " AND category = ANY(%s)"
            params.append(list(categories))
        params.append(limit)
        rows = self._query(
            f"SELECT {_COLUMNS} FROM events WHERE {where} ORDER BY position LIMIT %s",
            params,
            binary=True,
        )
        return recorded_events(rows)

    def list_streams(self, limit: int | None = None) -> list[StreamInfo]:
        rows = self._query(
            "SELECT stream_id, max(version), count(*), max(position), max(recorded_at) FROM events"
            " GROUP BY stream_id ORDER BY max(position) LIMIT %s",
            (limit,),
        )
        return [StreamInfo(row[0], row[1], row[2], row[3], row[4]) for row in rows]

    # -- metadata --------------------------------------------------------------------------

    def get_stream_metadata(self, stream_id: str) -> StreamMetadata:
        rows = self._query(
            "SELECT max_age, max_count, truncate_before, deleted FROM stream_metadata WHERE stream_id = %s",
            (stream_id,),
        )
        if not rows:
            return StreamMetadata()
        max_age, max_count, truncate_before, deleted = rows[0]
        return StreamMetadata(max_age, max_count, truncate_before, bool(deleted))

    def set_stream_metadata(self, stream_id: str, metadata: StreamMetadata) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO stream_metadata VALUES (%s, %s, %s, %s, %s) ON CONFLICT (stream_id) DO UPDATE SET"
                " max_age = excluded.max_age, max_count = excluded.max_count,"
                " truncate_before = excluded.truncate_before, deleted = excluded.deleted",
                (
                    stream_id,
                    metadata.max_age,
                    metadata.max_count,
                    metadata.truncate_before,
                    metadata.deleted,
                ),
            )

    def scavenge(self) -> int:
        removed = 0
        with self._write() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, APPEND_LOCK))
            rows = conn.execute(
                "SELECT stream_id, max_age, max_count, truncate_before FROM stream_metadata"
            ).fetchall()
            for stream_id, max_age, max_count, truncate_before in rows:
                if truncate_before:
                    removed += conn.execute(
                        "DELETE FROM events WHERE stream_id = %s AND version < %s",
                        (stream_id, truncate_before),
                    ).rowcount
                if max_count is not None:
                    removed += conn.execute(
                        "DELETE FROM events WHERE stream_id = %s AND version <= "
                        "(SELECT max(version) FROM events WHERE stream_id = %s) - %s",
                        (stream_id, stream_id, max_count),
                    ).rowcount
                if max_age is not None:
                    removed += conn.execute(
                        "DELETE FROM events WHERE stream_id = %s AND recorded_at < now() - make_interval(secs => %s)",
                        (stream_id, max_age),
                    ).rowcount
        return removed

    # -- snapshots, checkpoints, transactions, leases ---------------------------------------

    def save_snapshot(self, stream_id: str, version: int, type: str, state: Any) -> None:
        text = encode(state)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO snapshots (stream_id, version, type, state) VALUES (%s, %s, %s, %s::jsonb)"
                " ON CONFLICT (stream_id, version) DO UPDATE SET type = excluded.type, state = excluded.state",
                (stream_id, version, type, text),
            )

    def load_snapshot(self, stream_id: str) -> Snapshot | None:
        rows = self._query(
            "SELECT version, type, state, recorded_at FROM snapshots WHERE stream_id = %s"
            " ORDER BY version DESC LIMIT 1",
            (stream_id,),
        )
        if not rows:
            return None
        version, type_, state, recorded_at = rows[0]
        return Snapshot(stream_id, version, type_, state, recorded_at)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._write() as conn:
            yield _PostgresTransaction(conn)

    def acquire_lease(self, name: str) -> Lease:
        with self._translate():
            conn = self._connect()
            row = conn.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LEASE_NAMESPACE, name)
            ).fetchone()
        if not row or not row[0]:
            conn.close()
            raise LeaseHeld(f"lease {name!r} is held by another session")
        return _PostgresLease(name, conn)


class _PostgresTransaction(Transaction):
    dialect = "postgresql"

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self._conn.execute(_qmark_to_pyformat(sql), tuple(params))
        return cursor.fetchall() if cursor.description else []

    def lock_appends(self) -> None:
        self._conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, APPEND_LOCK))

    def lock(self, name: str) -> None:
        self._conn.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (NAMED_LOCK_NAMESPACE, name)
        )

    def get_checkpoint(self, name: str) -> int:
        row = self._conn.execute(
            "SELECT position FROM checkpoints WHERE name = %s", (name,)
        ).fetchone()
        return int(row[0]) if row else 0

    def set_checkpoint(self, name: str, position: int) -> None:
        self._conn.execute(
            "INSERT INTO checkpoints (name, position) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET"
            " position = excluded.position, updated_at = now()",
            (name, position),
        )


class _PostgresLease(Lease):
    def __init__(self, name: str, conn: psycopg.Connection[Any]) -> None:
        self.name = name
        self._conn: psycopg.Connection[Any] | None = conn

    def check(self) -> None:
        conn = self._conn
        if conn is None:
            raise LeaseLost(f"lease {self.name!r} was released")
        try:
            conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise LeaseLost(f"lease {self.name!r} lost with its session: {exc}") from exc

    def release(self) -> None:
        if self._conn is not None:
            # Unlock explicitly: closing alone frees the lock only once the server notices.
            with contextlib.suppress(psycopg.Error):
                self._conn.execute(
                    "SELECT pg_advisory_unlock(%s, hashtext(%s))", (LEASE_NAMESPACE, self.name)
                )
            self._conn.close()
            self._conn = None
