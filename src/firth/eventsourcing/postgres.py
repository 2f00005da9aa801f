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

Appends: one call of the server-side function `firth_append` (schema migrations 2-4) as a single
autocommit statement, so one round trip per append. It takes the append lock, reads the stream's
version and the batch's already-stored ids, decides the expected version, inserts, and NOTIFYs;
the lock is held only while the server works and commits, never while this process waits to be
scheduled, which is what limits concurrent writers. Outside a transaction the call is a statement
prepared once per connection and run through psycopg's libpq layer (`pq`) with text parameters,
half the client CPU of a cursor's execute; inside one (a projection appending), psycopg runs it.

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
import functools
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import psycopg.errors
from psycopg import generators, pq
from psycopg.types.json import set_json_loads

from firth.eventsourcing.codec import decode, encode_unchecked
from firth.eventsourcing.errors import (
    EventStoreError,
    LeaseHeld,
    LeaseLost,
    StoreUnavailable,
)
from firth.eventsourcing.notify import signal_for
from firth.eventsourcing.records import ExpectedVersion, RecordedEvent, StreamState, recorded_events
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
from firth.eventsourcing.sql import (
    POSTGRESQL,
    Connection,
    SqlEventStore,
    SqlTransaction,
)
from firth.eventsourcing.store import (
    EncodedEvent,
    Lease,
    PageReader,
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
# three per event. A float8 holds a timestamptz's microseconds exactly until 2106. The time is
# `date_part`, computed in float8, not `extract`, which since PostgreSQL 14 computes a numeric
# (then cast): the numeric was half the server's time for a page (0.74 ms -> 0.27 ms for 500
# events, PostgreSQL 15); both give the same float8 (2,000,000 random times, 1970-2112).
_COLUMNS = (
    "position, stream_id, version, type, data::text, metadata::text, uuid_send(event_id),"
    " date_part('epoch', recorded_at)"
)
# The whole append (lock, checks, insert, notify) is the server-side function of migrations 2-4,
# run as a single autocommit statement: one round trip, its own transaction, and the append lock
# is held only while the server works and commits, never while this process is scheduled.
_APPEND = "SELECT status, version FROM firth_append(%s, %s, %s, %b::uuid[], %s, %s, %s)"
# The same call as a statement prepared once per connection and run through libpq with its
# parameters as text: the ids as one uuid[] literal of 32 hex digits each, the rest as they
# are. A one-event `EventStore.append` cost 107-121 us of client CPU with psycopg's execute of
# `_APPEND`, 68-82 us this way (3 process pairs x 5 x 300 appends, alternating): the cursor,
# the query conversion, the id list's adaptation and the result rows were the larger part.
_APPEND_STATEMENT = b"firth_append_v4"
_APPEND_SQL = b"SELECT status, version FROM firth_append($1, $2, $3, $4::uuid[], $5, $6, $7)"
_UNDEFINED_STATEMENT = b"26000"  # SQLSTATE invalid_sql_statement_name: not prepared (any more)
_IDLE = pq.TransactionStatus.IDLE
_TUPLES_OK, _COMMAND_OK = pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK
_FATAL_ERROR = pq.ExecStatus.FATAL_ERROR
_SQLSTATE = pq.DiagnosticField.SQLSTATE
_EXPECTED_CODES = {
    StreamState.ANY: EXPECT_ANY,
    StreamState.NO_STREAM: EXPECT_NO_STREAM,
    StreamState.STREAM_EXISTS: EXPECT_STREAM_EXISTS,
}


def _json_loads(data: str | bytes) -> Any:
    """jsonb loader: the direct scanner of `codec.decode` (psycopg hands over bytes)."""
    return decode(data if isinstance(data, str) else bytes(data).decode())


class PostgresEventStore(SqlEventStore, dialect=POSTGRESQL):
    """`EventStore` on a PostgreSQL database (`postgresql://user@host:port/db`)."""

    _COLUMNS = _COLUMNS

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
        self._append_prepared: psycopg.Connection[Any] | None = None  # see _run_append
        self._open: _PostgresTransaction | None = None  # a `transaction()` not yet begun, maybe
        self._reader_lock = threading.Lock()
        self._reader: psycopg.Connection[Any] | None = None  # read-ahead's own, made on demand
        with self._lock, self._translate():
            conn = self._connection()
            try:
                info = conn.info
                self._signal = signal_for(f"postgresql:{info.host}:{info.port}/{info.dbname}")
                self._migrate(conn)
            except BaseException:  # refused (a newer schema) or failed: the store is not opened
                self._conn = None
                conn.close()
                raise

    # -- plumbing --------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(
            self.url, autocommit=True, connect_timeout=int(self._connect_timeout)
        )
        set_json_loads(_json_loads, conn)
        return conn

    def _connection(self) -> psycopg.Connection[Any]:
        open_transaction = self._open
        if open_transaction is not None:  # this thread's own `transaction()`: work joins it
            open_transaction.begin()
            return open_transaction._pg
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
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

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
            self._apply_migrations(conn, POSTGRES_MIGRATIONS, "database schema version")

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
        types = encode_unchecked([event.type for event in events])
        data = "[" + ",".join([event.data for event in events]) + "]"
        metadata = "[" + ",".join([event.metadata or "null" for event in events]) + "]"
        try:
            with self._lock, self._translate():
                conn = self._connection()
                if (
                    conn.pgconn.transaction_status == _IDLE
                    and conn.info.encoding == "utf-8"
                    and "\x00" not in stream_id
                ):
                    ids = "{" + ",".join([f"{event.event_id.int:032x}" for event in events]) + "}"
                    params = [stream_id, category, str(code), ids, types, data, metadata]
                    row: Any = self._run_append(conn, [param.encode() for param in params])
                else:  # inside a transaction, another encoding, or to fail as psycopg does
                    id_list = [event.event_id for event in events]
                    args = (stream_id, category, code, id_list, types, data, metadata)
                    row = conn.execute(_APPEND, args).fetchone()
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

    def _run_append(self, conn: psycopg.Connection[Any], params: list[bytes]) -> tuple[bytes, ...]:
        """`firth_append` through libpq (psycopg's `pq`), its statement prepared once per
        connection: a cursor's execute cost twice the client CPU of the call itself (see
        `_APPEND_STATEMENT`). Only outside a transaction (autocommit), where a statement that
        fails leaves nothing behind, so a statement found missing is prepared and run again.
        A failure raises the exception psycopg would have raised, through `conn.wait`, which
        also cancels the statement on Ctrl-C as psycopg's own execute does."""
        pgconn = conn.pgconn
        with conn.lock:
            if self._append_prepared is not conn:
                self._prepare_append(conn)
            pgconn.send_query_prepared(_APPEND_STATEMENT, params)
            result = conn.wait(generators.execute(pgconn))[-1]
            if (
                result.status == _FATAL_ERROR
                and result.error_field(_SQLSTATE) == _UNDEFINED_STATEMENT
            ):  # DEALLOCATE ALL (psycopg's rollback does it) or DISCARD ALL since
                self._prepare_append(conn)
                pgconn.send_query_prepared(_APPEND_STATEMENT, params)
                result = conn.wait(generators.execute(pgconn))[-1]
        if result.status != _TUPLES_OK:
            raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
        return result.get_value(0, 0) or b"", result.get_value(0, 1) or b""

    def _prepare_append(self, conn: psycopg.Connection[Any]) -> None:
        """Prepare `_APPEND_STATEMENT` on `conn` (under `conn.lock`)."""
        self._append_prepared = None
        pgconn = conn.pgconn
        pgconn.send_prepare(_APPEND_STATEMENT, _APPEND_SQL)
        result = conn.wait(generators.execute(pgconn))[-1]
        if result.status != _COMMAND_OK:
            raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
        self._append_prepared = conn

    # -- reads -----------------------------------------------------------------------------

    def _read_rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return self._query(sql, params, binary=True)  # binary: see _COLUMNS

    def _read_all_page(
        self,
        from_position: int,
        types: Sequence[str] | None,
        categories: Sequence[str] | None,
        limit: int,
    ) -> list[RecordedEvent]:
        with self._lock, self._translate():
            rows = _read_all_rows(self._connection(), from_position, types, categories, limit)
        return recorded_events(rows)

    @contextlib.contextmanager
    def _page_reader(self) -> Iterator[PageReader | None]:
        """Read-ahead pages on a second connection, kept for the next catch-up; one read-ahead
        at a time (another one meanwhile reads its pages on the store's connection)."""
        if not self._reader_lock.acquire(blocking=False):
            yield None
            return
        try:
            with self._translate():
                reader = self._reader
                if reader is None or reader.closed or reader.broken:
                    if reader is not None:
                        reader.close()
                    self._reader = reader = self._connect()

            def read_page(
                from_position: int,
                types: Sequence[str] | None,
                categories: Sequence[str] | None,
                limit: int,
            ) -> list[RecordedEvent]:
                with self._translate():
                    rows = _read_all_rows(reader, from_position, types, categories, limit)
                return recorded_events(rows)

            yield read_page
        finally:
            self._reader_lock.release()

    # -- transactions, leases --------------------------------------------------------------

    def _lock_appends(self, conn: Connection) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, APPEND_LOCK))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A transaction begun by its first statement and committed with its last checkpoint
        (see `_PostgresTransaction`); one opened inside another is a savepoint of it."""
        with self._lock, self._translate():
            conn = self._connection()  # begins the enclosing transaction, if there is one
            if conn.pgconn.transaction_status != _IDLE:  # nested: psycopg's savepoint
                outer = self._open  # its kept checkpoints were sent by `_connection`
                if outer is not None:
                    outer._savepoints += 1
                try:
                    with conn.transaction():
                        yield _PostgresTransaction(conn, begun=True, savepoints=1)
                finally:
                    if outer is not None:
                        outer._savepoints -= 1
                return
            tx = self._open = _PostgresTransaction(conn)
            try:
                yield tx
                tx.commit()
            except BaseException:
                tx.rollback()
                raise
            finally:
                self._open = None

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


def _read_all_rows(
    conn: psycopg.Connection[Any],
    from_position: int,
    types: Sequence[str] | None,
    categories: Sequence[str] | None,
    limit: int,
) -> list[tuple[Any, ...]]:
    """The rows of one page of the global order, read on `conn` as binary results (see
    _COLUMNS)."""
    params: list[Any] = [from_position]
    where = "position >= %s"
    if types:
        where += " AND type = ANY(%s)"
        params.append(list(types))
    if categories:
        where += " AND category = ANY(%s)"
        params.append(list(categories))
    params.append(limit)
    return conn.execute(
        f"SELECT {_COLUMNS} FROM events WHERE {where} ORDER BY position LIMIT %s",
        params,
        binary=True,
    ).fetchall()


def _literal(name: str) -> str:
    """`name` as an escape string constant (read the same whatever standard_conforming_strings
    is); names with NUL, which PostgreSQL text cannot hold, never get here."""
    return "E'" + name.replace("\\", "\\\\").replace("'", "''") + "'"


# `Transaction.lock(name)`: the lock of a name, held until the transaction ends.
_LOCK_NAME = "SELECT pg_advisory_xact_lock(%s, hashtext(%s))"


@functools.lru_cache(maxsize=64)
def _lock_sql(name: str) -> str:
    return _LOCK_NAME % (NAMED_LOCK_NAMESPACE, _literal(name))


@functools.lru_cache(maxsize=64)
def _get_checkpoint_sql(statement: str, name: str) -> str:
    """The checkpoint read `statement` (the name its one placeholder) with the name inlined."""
    return statement % (_literal(name),)


@functools.lru_cache(maxsize=64)
def _set_checkpoint_sql(statement: str, name: str) -> tuple[str, str]:
    """The checkpoint upsert `statement` (placeholders: name, position) with the name inlined,
    split around where the position goes; the tail ends the statement."""
    head, tail = (statement % (_literal(name), "\x00")).split("\x00")
    return head, tail + "; "


_LOCK_APPENDS_SQL = f"SELECT pg_advisory_xact_lock({LOCK_NAMESPACE}, {APPEND_LOCK})"


def _simple_query(conn: psycopg.Connection[Any], sql: bytes) -> pq.abc.PGresult:
    """Run `sql` (statements without parameters, in the connection's encoding) as one simple
    query through libpq and return its last result, or raise the error psycopg's execute would raise: a cursor's execute
    cost about twice the client CPU of the round trip itself (60 vs 29 us for `SELECT 1`).
    Through `conn.wait`, as psycopg's execute, so Ctrl-C cancels a statement waiting on a
    lock."""
    pgconn = conn.pgconn
    with conn.lock:
        pgconn.send_query(sql)
        results = conn.wait(generators.execute(pgconn))
    for result in results:
        if result.status == _FATAL_ERROR:
            raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
    return results[-1]


class _PostgresTransaction(SqlTransaction, dialect=POSTGRESQL):
    """A transaction on the store's connection (autocommit mode, so psycopg sends nothing by
    itself), sent in as few round trips as the statements allow. A projection batch is two:
    "BEGIN; lock; read checkpoint" and "set checkpoint; COMMIT", where psycopg's
    `conn.transaction()` took five (BEGIN and COMMIT each a round trip of their own).

    - BEGIN goes with the first statement that has no parameters (the lock, checkpoint read
      and lock-appends statements, built with the name inlined as a literal); a statement
      with parameters (`execute`) needs the extended protocol, one statement per message, so
      BEGIN goes ahead of it on its own. In a simple query, a BEGIN starts an ordinary
      transaction block that stays open after the query; each statement of the query takes
      its own snapshot (READ COMMITTED), as when sent one by one.
    - `set_checkpoint` is kept and sent ahead of the next statement, or with the COMMIT: the
      upsert runs inside the transaction either way, so the checkpoint and the read-model
      changes commit together, and a failing upsert fails the commit.
    - A failure anywhere rolls back with psycopg's `Connection.rollback()`, which also
      forgets statements psycopg prepared in the failed transaction. A transaction that ran
      nothing sends nothing.

    Any other use of the store's connection meanwhile (same thread: the store's lock is held)
    begins the transaction first (`PostgresEventStore._connection`), so it joins it, as with
    psycopg's transaction, and a nested `transaction()` is a psycopg savepoint in it. While a
    savepoint is open, checkpoints are sent at once (by the outer transaction too), so each
    lands inside the savepoint it was set in, rolls back with it and is read back by any
    statement after it. A name holding NUL takes the parameter path, to fail as it always
    did."""

    def __init__(
        self, conn: psycopg.Connection[Any], *, begun: bool = False, savepoints: int = 0
    ) -> None:
        self._conn = self._pg = conn
        self._begun = begun
        self._savepoints = savepoints  # open savepoints it is in: checkpoints are not kept
        self._deferred = ""  # set_checkpoint statements not sent yet, each ending in "; "

    def _send(self, sql: str) -> pq.abc.PGresult:
        """Run what must come first (BEGIN, kept checkpoints), then `sql`, as one simple
        query. The text is encoded before the pending work is taken: a name the connection's
        encoding cannot hold fails with nothing sent and nothing forgotten, so a caller that
        catches that error is still in its transaction (else the kept checkpoints were lost
        and the next statements ran outside any transaction, each committed alone)."""
        prefix = self._deferred if self._begun else "BEGIN; " + self._deferred
        query = (prefix + sql).encode(self._pg.info.encoding)
        self._begun, self._deferred = True, ""
        return _simple_query(self._pg, query)

    def begin(self) -> None:
        """Send what is pending, so a statement with parameters can follow."""
        if not self._begun or self._deferred:
            self._send("")

    def _first_value(self, sql: str) -> bytes | None:
        """The first value (as text) of the last statement of `sql` (no parameters) or None
        without a row, pending work sent first in the same round trip."""
        result = self._send(sql)
        return result.get_value(0, 0) if result.ntuples else None

    def commit(self) -> None:
        """COMMIT; PostgreSQL answers it with ROLLBACK when a statement of the transaction
        failed and the caller caught the error and went on. Nothing of the block was stored
        then, so that is raised rather than passed over: a projection batch whose handler
        swallowed an error must not look committed (its events would be skipped)."""
        if self._begun or self._deferred:
            result = self._send("COMMIT")
            if result.command_status == b"ROLLBACK":
                raise EventStoreError(
                    "the transaction was rolled back, not committed: a statement in it failed"
                    " and its error was caught; nothing of it was stored"
                )

    def rollback(self) -> None:
        # Like psycopg's own transaction: a failed rollback (a lost connection) must not hide
        # the error that caused it; PostgreSQL rolls back a transaction whose session died.
        with contextlib.suppress(psycopg.Error):
            self._pg.rollback()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.begin()
        cursor = self._pg.execute(POSTGRESQL.sql(sql), tuple(params))
        return cursor.fetchall() if cursor.description else []

    def lock_appends(self) -> None:
        self._first_value(_LOCK_APPENDS_SQL)

    def lock(self, name: str) -> None:
        if "\x00" in name:
            self.begin()
            self._pg.execute(_LOCK_NAME, (NAMED_LOCK_NAMESPACE, name))
            return
        self._first_value(_lock_sql(name))

    def get_checkpoint(self, name: str) -> int:
        if "\x00" in name:
            self.begin()
            return super().get_checkpoint(name)
        value = self._first_value(_get_checkpoint_sql(self._sql.get_checkpoint, name))
        return int(value) if value else 0

    def lock_checkpoint(self, name: str) -> int:
        """Both statements in one round trip (a projection batch's first, with its BEGIN)."""
        if "\x00" in name:
            return super().lock_checkpoint(name)
        checkpoint = _get_checkpoint_sql(self._sql.get_checkpoint, name)
        value = self._first_value(_lock_sql(name) + "; " + checkpoint)
        return int(value) if value else 0

    def set_checkpoint(self, name: str, position: int) -> None:
        if "\x00" in name or position.__class__ is not int or self._savepoints:
            self.begin()
            super().set_checkpoint(name, position)
            return
        head, tail = _set_checkpoint_sql(self._sql.set_checkpoint, name)
        self._deferred += head + str(position) + tail


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
