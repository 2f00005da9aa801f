"""The embedded SQLite backend (stdlib sqlite3, WAL journal, one writer at a time).

Writes take SQLite's write lock up front (`BEGIN IMMEDIATE`), so the version check and the
insert of an append see the same stream state, and rowid order is commit order: a reader that
follows positions cannot skip a late commit. Readers never block writers in WAL mode.

Connections: one per store object, shared by its threads under a lock. Other processes open
their own store on the same file; they wait for the write lock up to `busy_timeout` seconds.

Durability: `synchronous=FULL` by default (each commit is on disk when `append` returns);
`sqlite:///path?synchronous=normal` trades the last commits on power loss for speed.

Leases (the outbox relay's single-active guarantee) are `flock` locks on a file beside the
database, which the kernel releases when the holding process dies, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import parse_qs

from firth.eventsourcing.errors import (
    ConcurrencyError,
    EventStoreError,
    LeaseHeld,
    NotAnEventStore,
    StoreUnavailable,
)
from firth.eventsourcing.notify import signal_for
from firth.eventsourcing.records import ExpectedVersion, RecordedEvent, recorded_events
from firth.eventsourcing.schema import MIGRATIONS_TABLE, SQLITE_MIGRATIONS
from firth.eventsourcing.sql import SQLITE, SqlEventStore, SqlTransaction
from firth.eventsourcing.store import (
    EncodedEvent,
    Lease,
    Transaction,
    expected_version_ok,
    idempotent_version,
    refuse,
)

_COLUMNS = "position, stream_id, version, type, data, metadata, event_id, recorded_at"
_INSERT_ROWS = 256
"""Most events per multi-row INSERT statement (4 parameters each, far below SQLite's limit);
a power of two, like every chunk size used."""


@functools.lru_cache(maxsize=16)
def _insert_sql(rows: int) -> str:
    """One INSERT of `rows` events: ?1 stream id, ?2 version before the first, ?3 category,
    ?4 recorded_at, then (event id, type, data, metadata) per event. One statement per chunk
    instead of one per event: per-statement work (AUTOINCREMENT's sqlite_sequence update
    among it) is paid once per chunk."""
    values = ",".join(
        f"(?1,?2+{i},?{4 * i + 1},?{4 * i + 2},?3,?{4 * i + 3},?{4 * i + 4},?4)"
        for i in range(1, rows + 1)
    )
    return (
        "INSERT INTO events (stream_id, version, event_id, type, category, data, metadata,"
        f" recorded_at) VALUES {values}"
    )


# The stream's version and soft-delete flag in one statement (the append's only read).
_STREAM_STATE = (
    "SELECT coalesce(max(version), 0),"
    " coalesce((SELECT deleted FROM stream_metadata WHERE stream_id = ?1), 0)"
    " FROM events WHERE stream_id = ?1"
)
_MEMORY = ":memory:"


_WAL_HEADER = 32  # bytes, then per frame a 24-byte header and one page (sqlite.org/fileformat)
_WAL_FRAME_HEADER = 24
_WAL_CHUNK = 1 << 20


def parse_sqlite_url(url: str) -> tuple[str, dict[str, str]]:
    """`sqlite:///rel/path`, `sqlite:////abs/path`, `sqlite:///:memory:` or a bare path."""
    rest = url
    if url.startswith("sqlite://"):
        rest = url[len("sqlite://") :]
        if not rest.startswith("/"):
            raise NotAnEventStore(
                f"bad SQLite URL {url!r}: use sqlite:///relative or sqlite:////absolute"
            )
        rest = rest[1:]
    path, _, query = rest.partition("?")
    options = {key: values[-1] for key, values in parse_qs(query).items()}
    if not path:
        raise NotAnEventStore(f"bad SQLite URL {url!r}: no file path")
    return path, options


def _in_list(column: str, values: Sequence[str] | None, params: list[Any]) -> str:
    if not values:
        return ""
    params.extend(values)
    return f" AND {column} IN ({','.join('?' * len(values))})"


class SqliteEventStore(SqlEventStore, dialect=SQLITE):
    """`EventStore` on one SQLite database file."""

    _COLUMNS = _COLUMNS

    def __init__(
        self, url: str, *, busy_timeout: float = 30.0, poll_interval: float = 0.05
    ) -> None:
        self.url = url
        self.path, options = parse_sqlite_url(url)
        self.poll_interval = poll_interval
        self._lock = threading.RLock()
        self._memory = self.path == _MEMORY
        key = f"sqlite:{id(self)}" if self._memory else f"sqlite:{os.path.realpath(self.path)}"
        self._signal = signal_for(key)
        self._leases: dict[str, threading.Lock] = {}
        synchronous = options.get("synchronous", "full").upper()
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise NotAnEventStore(f"bad synchronous={synchronous!r} in {url!r}")
        try:
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite database {self.path!r}: {exc}") from exc
        try:
            self._db.execute("PRAGMA schema_version").fetchone()
            if not self._memory:
                mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise NotAnEventStore(f"{self.path!r}: cannot switch to WAL mode (got {mode})")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._migrate()
            if not self._memory and synchronous in ("FULL", "EXTRA"):
                self._preallocate_wal()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise NotAnEventStore(f"{self.path!r} is not an SQLite event store: {exc}") from None
        except EventStoreError:
            self._db.close()
            raise

    def _preallocate_wal(self) -> None:
        """Extend the write-ahead log with zeros to the size it reaches between checkpoints.

        With `synchronous=FULL` every commit ends in an fdatasync of the WAL. While the WAL
        grows, that fdatasync also has to write the file's new size to the file system journal,
        which more than doubles it here (p50 of a one-row commit: 370 us growing, 150-190 us
        once the WAL is reused); SQLite reuses the WAL from its start after a checkpoint but
        deletes it when the last connection closes, so every new process would pay this for
        its first few hundred commits. Zeros past the WAL's end are what SQLite itself leaves
        there (older frames that fail the salt and checksum check end its recovery), so they
        are written under the write lock (no other writer touches the WAL meanwhile), never
        over existing bytes, and synced before any commit uses them. Durability is unchanged:
        each commit still syncs the WAL before it returns.
        """
        db = self._db
        pages = int(db.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
        page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
        if pages <= 0:
            return
        target = _WAL_HEADER + pages * (_WAL_FRAME_HEADER + page_size)
        db.execute("BEGIN IMMEDIATE")
        try:
            # SQLite names the WAL after the database's real path (it follows symlinks)
            fd = os.open(os.path.realpath(self.path) + "-wal", os.O_WRONLY)
        except OSError:  # no WAL file (or not ours to write): nothing to gain, nothing to risk
            db.execute("ROLLBACK")
            return
        try:
            size = os.fstat(fd).st_size
            if size < target:
                zeros = bytes(min(_WAL_CHUNK, target - size))
                while size < target:
                    size += os.pwrite(fd, zeros[: target - size], size)
                os.fdatasync(fd)
        except OSError:
            pass  # a full disk, say: the WAL simply grows as it would have
        finally:
            os.close(fd)
            db.execute("ROLLBACK")

    # -- plumbing --------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding SQLite's write lock from its first statement."""
        with self._lock, self._translate():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        """The choke point where sqlite3 errors become event store errors."""
        try:
            yield
        except sqlite3.IntegrityError:
            raise
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"SQLite {self.path!r}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise EventStoreError(f"SQLite {self.path!r}: {exc}") from exc

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock, self._translate():
            return self._db.execute(sql, params).fetchall()

    def _migrate(self) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            tables = {
                row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if MIGRATIONS_TABLE not in tables:
                if "events" in tables:
                    raise NotAnEventStore(
                        f"{self.path!r} has an events table but no {MIGRATIONS_TABLE}: "
                        "it is not a Firth event store"
                    )
                db.execute(
                    f"CREATE TABLE {MIGRATIONS_TABLE} (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                    " applied_at REAL NOT NULL)"
                )
            self._apply_migrations(db, SQLITE_MIGRATIONS, f"{self.path!r} has schema version")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- appends ---------------------------------------------------------------------------

    def _stored_ids(self, events: list[EncodedEvent]) -> dict[uuid.UUID, tuple[str, int]]:
        ids = [event.event_id.bytes for event in events]
        found: dict[uuid.UUID, tuple[str, int]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._query(
                f"SELECT event_id, stream_id, version FROM events WHERE event_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            found.update({uuid.UUID(bytes=row[0]): (row[1], row[2]) for row in rows})
        return found

    def _append(
        self, stream_id: str, category: str, events: list[EncodedEvent], expected: ExpectedVersion
    ) -> int:
        try:
            with self._write() as db:
                current, deleted = db.execute(_STREAM_STATE, (stream_id,)).fetchone()
                if not expected_version_ok(expected, current, current > 0 and not deleted):
                    raise refuse(stream_id, expected, current)
                now = time.time()
                start, total = 0, len(events)
                while start < total:
                    # Chunks of power-of-two sizes: at most nine distinct statements, all kept
                    # compiled (compiling a 255-row INSERT costs 2 ms; running it, 0.7 ms).
                    size = min(_INSERT_ROWS, 1 << ((total - start).bit_length() - 1))
                    params: list[Any] = [stream_id, current + start, category, now]
                    for event in events[start : start + size]:
                        params += (  # UUID.bytes, without its Python-level property call
                            event.event_id.int.to_bytes(16, "big"),
                            event.type,
                            event.data,
                            event.metadata,
                        )
                    db.execute(_insert_sql(size), params)
                    start += size
                if deleted:
                    db.execute(
                        "UPDATE stream_metadata SET deleted = 0 WHERE stream_id = ?", (stream_id,)
                    )
                return int(current + len(events))
        except sqlite3.IntegrityError as exc:
            version = idempotent_version(stream_id, events, self._stored_ids(events))
            if version is None:
                raise EventStoreError(f"append to {stream_id!r} refused: {exc}") from exc
            return version
        except ConcurrencyError:
            version = idempotent_version(stream_id, events, self._stored_ids(events))
            if version is not None:
                return version
            raise

    # -- reads -----------------------------------------------------------------------------

    def _read_all_page(
        self,
        from_position: int,
        types: Sequence[str] | None,
        categories: Sequence[str] | None,
        limit: int,
    ) -> list[RecordedEvent]:
        params: list[Any] = [from_position]
        where = (
            "position >= ?"
            + _in_list("type", types, params)
            + _in_list("category", categories, params)
        )
        params.append(limit)
        rows = self._query(
            f"SELECT {_COLUMNS} FROM events WHERE {where} ORDER BY position LIMIT ?", params
        )
        return recorded_events(rows)

    # -- transactions, leases --------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._write() as db:
            yield _SqliteTransaction(db)

    def acquire_lease(self, name: str) -> Lease:
        if self._memory:
            lock = self._leases.setdefault(name, threading.Lock())
            if not lock.acquire(blocking=False):
                raise LeaseHeld(f"lease {name!r} is held in this process")
            return _ThreadLease(name, lock)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        path = f"{self.path}.lease-{safe}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LeaseHeld(f"lease {name!r} is held by another process ({path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return _FileLease(name, fd)


class _SqliteTransaction(SqlTransaction, dialect=SQLITE):
    def __init__(self, db: sqlite3.Connection) -> None:
        self._conn = self._db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, params).fetchall()


class _FileLease(Lease):
    def __init__(self, name: str, fd: int) -> None:
        self.name = name
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class _ThreadLease(Lease):
    def __init__(self, name: str, lock: threading.Lock) -> None:
        self.name = name
        self._lock: threading.Lock | None = lock

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
