"""What the SQLite and PostgreSQL backends share: the SQL they both run, written once.

A `Dialect` is the small value that holds where the two databases differ for these statements:
the placeholder (`?` or `%s`), how a stored time is written (SQLite: the client's unix seconds,
passed as a parameter; PostgreSQL: the server's `now()`), the LIMIT that means none, how a
stored JSON value and time come back (SQLite: text and seconds; PostgreSQL: already decoded),
and the max-age cutoff of a stream read (the client's clock on both, as seconds or a datetime).
Statements are written with `?` and translated once per dialect, when first used.

`SqlEventStore` implements on top of it the `EventStore` methods whose logic is the same on
both: stream metadata, scavenging, snapshots, stream listing, schema version and migrations, a
page of a stream. `SqlTransaction` does the same for checkpoints. What differs for real stays
in the backends: connections, error translation, the append and the read_all page (each tuned
to its database), leases. A backend provides `_query` (a read under its connection lock,
`_lock`), `_write` (a write transaction), both translating database errors, and `_COLUMNS`
(what a page of events selects); it names its dialect where it subclasses.

Not shared on purpose: a snapshot saved again at the same version also takes the new time on
SQLite (INSERT OR REPLACE) but keeps its first time on PostgreSQL, as each backend always did.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from firth.eventsourcing.codec import decode, encode
from firth.eventsourcing.records import (
    RecordedEvent,
    Snapshot,
    StreamInfo,
    StreamMetadata,
    recorded_events,
)
from firth.eventsourcing.schema import MIGRATIONS_TABLE, Migration, pending_migrations
from firth.eventsourcing.store import EventStore, Transaction


class Cursor(Protocol):
    """What the shared code uses of a sqlite3 or psycopg cursor."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What the shared code uses of a sqlite3 or psycopg connection."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Cursor: ...


def _no_params() -> tuple[Any, ...]:
    return ()


def _unix_now() -> tuple[Any, ...]:
    return (time.time(),)


def _unchanged(value: Any) -> Any:
    return value


def _from_unix(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _unix_cutoff(max_age: float) -> float:
    return time.time() - max_age


def _utc_cutoff(max_age: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=max_age)


@dataclass(frozen=True, slots=True)
class Dialect:
    """Where the SQL of the shared methods differs between the databases (see the module)."""

    name: str
    placeholder: str  # "?" or "%s"
    now: str  # the SQL of a stored time of now
    now_params: Callable[[], tuple[Any, ...]]  # the parameters `now` takes
    age: str  # the SQL of an interval of `?` seconds, subtracted from `now`
    no_limit: Any  # the LIMIT parameter that means no limit
    load_json: Callable[[Any], Any]  # a JSON column's value as returned, to Python
    load_time: Callable[[Any], datetime]  # a time column's value as returned, to a datetime
    cutoff: Callable[[float], Any]  # the oldest `recorded_at` a max-age of so many seconds shows
    save_snapshot: str  # the upsert of a snapshot (?: stream, version, type, state; then now)

    def sql(self, text: str) -> str:
        """`text`, written with `?` placeholders, in this dialect."""
        if self.placeholder == "?":
            return text
        return text.replace("%", "%%").replace("?", self.placeholder)


SQLITE = Dialect(
    name="sqlite",
    placeholder="?",
    now="?",
    now_params=_unix_now,
    age="?",
    no_limit=-1,
    load_json=decode,
    load_time=_from_unix,
    cutoff=_unix_cutoff,
    # A snapshot saved again at the same version replaces the row, its time too.
    save_snapshot="INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?, ?)",
)

POSTGRESQL = Dialect(
    name="postgresql",
    placeholder="%s",
    now="now()",
    now_params=_no_params,
    age="make_interval(secs => %s)",
    no_limit=None,
    load_json=_unchanged,
    load_time=_unchanged,
    cutoff=_utc_cutoff,
    # A snapshot saved again at the same version keeps the time it was first saved.
    save_snapshot="INSERT INTO snapshots (stream_id, version, type, state) VALUES (%s, %s, %s, %s::jsonb)"
    " ON CONFLICT (stream_id, version) DO UPDATE SET type = excluded.type, state = excluded.state",
)


@dataclass(frozen=True, slots=True)
class Statements:
    """The shared statements, in one dialect."""

    stream_version: str
    head_position: str
    schema_version: str
    applied_version: str
    record_migration: str
    get_metadata: str
    set_metadata: str
    metadata_to_scavenge: str
    delete_truncated: str
    delete_over_count: str
    delete_expired: str
    load_snapshot: str
    list_streams: str
    get_checkpoint: str
    set_checkpoint: str

    @classmethod
    @functools.cache
    def of(cls, dialect: Dialect) -> Statements:
        sql, now = dialect.sql, dialect.now
        return cls(
            stream_version=sql("SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ?"),
            head_position="SELECT coalesce(max(position), 0) FROM events",
            schema_version=f"SELECT max(version) FROM {MIGRATIONS_TABLE}",
            applied_version=f"SELECT coalesce(max(version), 0) FROM {MIGRATIONS_TABLE}",
            record_migration=sql(
                f"INSERT INTO {MIGRATIONS_TABLE} (version, name, applied_at) VALUES (?, ?, "
            )
            + f"{now})",
            get_metadata=sql(
                "SELECT max_age, max_count, truncate_before, deleted FROM stream_metadata"
                " WHERE stream_id = ?"
            ),
            set_metadata=sql(
                "INSERT INTO stream_metadata VALUES (?, ?, ?, ?, ?) ON CONFLICT (stream_id)"
                " DO UPDATE SET max_age = excluded.max_age, max_count = excluded.max_count,"
                " truncate_before = excluded.truncate_before, deleted = excluded.deleted"
            ),
            metadata_to_scavenge=(
                "SELECT stream_id, max_age, max_count, truncate_before FROM stream_metadata"
            ),
            delete_truncated=sql("DELETE FROM events WHERE stream_id = ? AND version < ?"),
            delete_over_count=sql(
                "DELETE FROM events WHERE stream_id = ? AND version <= "
                "(SELECT max(version) FROM events WHERE stream_id = ?) - ?"
            ),
            delete_expired=sql("DELETE FROM events WHERE stream_id = ? AND recorded_at < ")
            + f"{now} - {dialect.age}",
            load_snapshot=sql(
                "SELECT version, type, state, recorded_at FROM snapshots WHERE stream_id = ?"
                " ORDER BY version DESC LIMIT 1"
            ),
            list_streams=sql(
                "SELECT stream_id, max(version), count(*), max(position), max(recorded_at)"
                " FROM events GROUP BY stream_id ORDER BY max(position) LIMIT ?"
            ),
            get_checkpoint=sql("SELECT position FROM checkpoints WHERE name = ?"),
            set_checkpoint=sql(
                "INSERT INTO checkpoints (name, position, updated_at) VALUES (?, ?, "
            )
            + f"{now}) ON CONFLICT (name) DO UPDATE SET position = excluded.position,"
            " updated_at = excluded.updated_at",
        )


class SqlEventStore(EventStore):
    """The `EventStore` methods both SQL backends run alike (see the module). A backend names
    its dialect where it subclasses: `class SqliteEventStore(SqlEventStore, dialect=SQLITE)`."""

    _dialect: Dialect
    _sql: Statements
    _COLUMNS: str  # what a page of events selects, for `recorded_events` to decode
    _lock: threading.RLock  # the backend's connection lock

    def __init_subclass__(cls, *, dialect: Dialect, **options: Any) -> None:
        super().__init_subclass__(**options)
        cls.dialect, cls._dialect, cls._sql = dialect.name, dialect, Statements.of(dialect)

    @abc.abstractmethod
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run one read statement and return its rows."""

    @abc.abstractmethod
    def _write(self) -> contextlib.AbstractContextManager[Connection]:
        """A write transaction (committed on normal exit, rolled back on an exception)."""

    def _lock_appends(self, conn: Connection) -> None:
        """Exclude appends until the write transaction ends (SQLite: already so)."""
        return None

    # -- schema ----------------------------------------------------------------------------

    def _apply_migrations(
        self, conn: Connection, migrations: Sequence[Migration], where: str
    ) -> None:
        """Inside the caller's transaction: apply the migrations the database lacks, each
        recorded; refuse (NotAnEventStore) a database newer than `migrations`."""
        applied = conn.execute(self._sql.applied_version).fetchone()[0]
        for migration in pending_migrations(migrations, applied, where):
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                self._sql.record_migration,
                (migration.version, migration.name, *self._dialect.now_params()),
            )

    def schema_version(self) -> int:
        return int(self._query(self._sql.schema_version)[0][0])

    # -- reads -----------------------------------------------------------------------------

    def stream_version(self, stream_id: str) -> int:
        return int(self._query(self._sql.stream_version, (stream_id,))[0][0])

    def head_position(self) -> int:
        return int(self._query(self._sql.head_position)[0][0])

    def _read_rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """The rows of a page of events (`_COLUMNS`), as the backend's decoding wants them."""
        return self._query(sql, params)

    def _read_stream_page(
        self, stream_id: str, from_version: int, backwards: bool, limit: int
    ) -> list[RecordedEvent]:
        # Under the connection lock: the metadata read first is the page's.
        with self._lock:
            sql, params = self._stream_page_query(stream_id, from_version, backwards, limit)
            rows = self._read_rows(sql, params)
        return recorded_events(rows)

    def _stream_page_query(
        self, stream_id: str, from_version: int, backwards: bool, limit: int
    ) -> tuple[str, list[Any]]:
        """The statement and parameters of one page of a stream's visible events."""
        metadata = self.get_stream_metadata(stream_id)
        lowest = 1
        if metadata.truncate_before:
            lowest = max(lowest, metadata.truncate_before)
        if metadata.max_count is not None:
            lowest = max(lowest, self.stream_version(stream_id) - metadata.max_count + 1)
        p = self._dialect.placeholder
        params: list[Any] = [stream_id]
        if backwards:
            where = f"version <= {p} AND version >= {p}"
            params += [from_version, lowest]
        else:
            where = f"version >= {p}"
            params.append(max(from_version, lowest))
        if metadata.max_age is not None:
            where += f" AND recorded_at >= {p}"
            params.append(self._dialect.cutoff(metadata.max_age))
        order = "DESC" if backwards else "ASC"
        params.append(limit)
        sql = (
            f"SELECT {self._COLUMNS} FROM events WHERE stream_id = {p} AND {where}"
            f" ORDER BY version {order} LIMIT {p}"
        )
        return sql, params

    def list_streams(self, limit: int | None = None) -> list[StreamInfo]:
        rows = self._query(
            self._sql.list_streams, (self._dialect.no_limit if limit is None else limit,)
        )
        load_time = self._dialect.load_time
        return [StreamInfo(row[0], row[1], row[2], row[3], load_time(row[4])) for row in rows]

    # -- metadata --------------------------------------------------------------------------

    def get_stream_metadata(self, stream_id: str) -> StreamMetadata:
        rows = self._query(self._sql.get_metadata, (stream_id,))
        if not rows:
            return StreamMetadata()
        max_age, max_count, truncate_before, deleted = rows[0]
        return StreamMetadata(max_age, max_count, truncate_before, bool(deleted))

    def set_stream_metadata(self, stream_id: str, metadata: StreamMetadata) -> None:
        with self._write() as conn:
            conn.execute(
                self._sql.set_metadata,
                (
                    stream_id,
                    metadata.max_age,
                    metadata.max_count,
                    metadata.truncate_before,
                    metadata.deleted,
                ),
            )

    def scavenge(self) -> int:
        sql = self._sql
        removed = 0
        with self._write() as conn:
            self._lock_appends(conn)
            rows = conn.execute(sql.metadata_to_scavenge).fetchall()
            for stream_id, max_age, max_count, truncate_before in rows:
                if truncate_before:
                    removed += conn.execute(
                        sql.delete_truncated, (stream_id, truncate_before)
                    ).rowcount
                if max_count is not None:
                    removed += conn.execute(
                        sql.delete_over_count, (stream_id, stream_id, max_count)
                    ).rowcount
                if max_age is not None:
                    removed += conn.execute(
                        sql.delete_expired, (stream_id, *self._dialect.now_params(), max_age)
                    ).rowcount
        return removed

    # -- snapshots -------------------------------------------------------------------------

    def save_snapshot(self, stream_id: str, version: int, type: str, state: Any) -> None:
        text = encode(state)
        with self._write() as conn:
            conn.execute(
                self._dialect.save_snapshot,
                (stream_id, version, type, text, *self._dialect.now_params()),
            )

    def load_snapshot(self, stream_id: str) -> Snapshot | None:
        rows = self._query(self._sql.load_snapshot, (stream_id,))
        if not rows:
            return None
        version, type_, state, recorded_at = rows[0]
        dialect = self._dialect
        return Snapshot(
            stream_id, version, type_, dialect.load_json(state), dialect.load_time(recorded_at)
        )


class SqlTransaction(Transaction):
    """Checkpoints in a transaction of either SQL backend (subclassed like `SqlEventStore`)."""

    _dialect: Dialect
    _sql: Statements
    _conn: Connection

    def __init_subclass__(cls, *, dialect: Dialect, **options: Any) -> None:
        super().__init_subclass__(**options)
        cls.dialect, cls._dialect, cls._sql = dialect.name, dialect, Statements.of(dialect)

    def get_checkpoint(self, name: str) -> int:
        row = self._conn.execute(self._sql.get_checkpoint, (name,)).fetchone()
        return int(row[0]) if row else 0

    def set_checkpoint(self, name: str, position: int) -> None:
        self._conn.execute(self._sql.set_checkpoint, (name, position, *self._dialect.now_params()))
