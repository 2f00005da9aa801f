"""What the database itself costs for the bare operation behind each row of `bench/eventstore.py`.

Issue 5 asks for 3x the `eventsourcing` library on every row. For a row where a third of the
library's time is less than what SQLite or PostgreSQL need to do the bare operation on this
disk (no Firth code at all), 3x cannot be reached at equal durability. This script measures,
in one run and interleaved sample by sample, the library's operation (as `bench/eventstore.py`
does) next to these floors:

- the disk: a 4 KiB overwrite of a preallocated file and its `fdatasync`;
- SQLite (WAL, `synchronous=FULL`, the database made by `EventStore.open`, so the same schema,
  pragmas and pre-extended WAL as Firth): one pre-built row INSERTed and committed, and 1,000
  pre-built rows per commit, into a table with no secondary index, a table with the indexes
  the issue's schema needs (UNIQUE(stream, version) and a unique event id, for idempotent
  appends) and Firth's `events` table (those plus the category and type indexes of `read_all`);
- PostgreSQL (one durable server, `fsync=on`, `synchronous_commit=on`): a `SELECT 1` round
  trip, the same single and batched INSERTs (the batch as one statement over arrays, the way
  Firth sends it, with the JSON parsed into JSONB), and 4 writer processes doing one-row
  INSERTs bare and under a transaction-scoped advisory lock held through the commit (what a
  gap-free global order costs: both Firth and the library serialise appends through their
  commits).

Every floor row is a pre-built row and a hand-written statement: no JSON encoding, no event
ids generated, no expected-version check. The time-ordered ids make the unique index as cheap
as it can be. The table prints the library's figure, the 3x budget derived from it, each floor
and the floor as a share of the budget (over 100%: the bare operation alone exceeds it).

    python bench/eventstore_floors.py [--backend sqlite|postgresql|both] [--dir PATH]
                                      [--postgres URL] [--samples N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eventstore import (  # the main benchmark's library side, reused as is
    ROOT,
    LibAccount,
    concurrent_writers,
    library_app,
    library_template,
    library_writer,
    percentiles,
    postgres_setup,
    sqlite_setup,
    timed,
)

from firth.eventsourcing import EventStore

BATCH = 1000
DATA = '{"amount": 1}'


@dataclass
class Floor:
    backend: str
    row: str
    unit: str
    library: float
    floors: list[tuple[str, float]]
    higher_is_better: bool

    @property
    def budget(self) -> float:
        """What Firth would need for 3x the library."""
        return self.library * 3 if self.higher_is_better else self.library / 3


_issued = 0  # ids this process has made: the low bits of the next one


def ordered_ids(count: int) -> list[uuid.UUID]:
    """Time-ordered (UUIDv7-shaped) ids, appended at the unique index's right edge: the
    millisecond, then this process's id and a counter, so no two are ever the same."""
    global _issued
    first, _issued = _issued, _issued + count
    base = time.time_ns() // 1_000_000 << 80 | 0x7 << 76 | 0x8 << 60 | (os.getpid() & 0xFFFF) << 40
    return [uuid.UUID(int=base | (first + index) % (1 << 40)) for index in range(count)]


def interleaved(functions: Sequence[Callable[[], Any]], samples: int) -> list[list[float]]:
    """Each function timed `samples` times, one of each in turn."""
    times: list[list[float]] = [[] for _ in functions]
    for _ in range(samples):
        for function, bucket in zip(functions, times, strict=True):
            bucket.append(timed(function))
    return times


def p50(samples: list[float]) -> float:
    return percentiles(samples)[0]


def p99(samples: list[float]) -> float:
    return percentiles(samples)[1]


# -- the disk ----------------------------------------------------------------------------------


def disk_sync(folder: Path) -> Callable[[], None]:
    """A 4 KiB overwrite at the start of a preallocated file, then fdatasync."""
    path = folder / "sync-probe"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.write(fd, b"\0" * (1 << 20))
    os.fsync(fd)
    page = b"x" * 4096

    def sync() -> None:
        os.pwrite(fd, page, 0)
        os.fdatasync(fd)

    return sync


# -- SQLite ------------------------------------------------------------------------------------

SQLITE_BARE = """CREATE TABLE {name} (
    position INTEGER PRIMARY KEY AUTOINCREMENT, stream_id TEXT NOT NULL,
    version INTEGER NOT NULL, event_id BLOB NOT NULL {unique}, type TEXT NOT NULL,
    category TEXT NOT NULL, data TEXT NOT NULL, metadata TEXT, recorded_at REAL NOT NULL
    {stream_version})"""
SQLITE_INSERT = (
    "INSERT INTO {name} (stream_id, version, event_id, type, category, data, metadata,"
    " recorded_at) VALUES (?, ?, ?, 'Deposited', 'floor', ?, NULL, ?)"
)
# table name -> what it stands for; `events` is Firth's own table, made by EventStore.open
SQLITE_TABLES = {
    "no_index": "no index",
    "required": "2 unique indexes",  # UNIQUE(stream, version), UNIQUE(event id): the minimum
    "events": "Firth's table, 4 indexes",  # those two, (category, position), (type, position)
}


class SqliteFloor:
    """Bare INSERTs on a database Firth created, through one plain sqlite3 connection."""

    def __init__(self, url: str) -> None:
        self.store = EventStore.open(url)
        self.db = self.store._db  # type: ignore[attr-defined]
        self.db.execute(SQLITE_BARE.format(name="no_index", unique="", stream_version=""))
        self.db.execute(
            SQLITE_BARE.format(
                name="required", unique="UNIQUE", stream_version=", UNIQUE (stream_id, version)"
            )
        )
        self.versions: dict[tuple[str, str], int] = {}

    def rows(self, table: str, stream: str, count: int) -> list[tuple[Any, ...]]:
        start = self.versions.get((table, stream), 0)
        self.versions[table, stream] = start + count
        now = time.time()
        return [
            (stream, start + offset + 1, event_id.bytes, DATA, now)
            for offset, event_id in enumerate(ordered_ids(count))
        ]

    def insert(self, table: str, stream: str, count: int) -> Callable[[], None]:
        """A function committing `count` fresh pre-built rows; rows are built before timing."""
        statement = SQLITE_INSERT.format(name=table)
        pending: list[list[tuple[Any, ...]]] = []

        def prepare() -> None:
            pending.append(self.rows(table, stream, count))

        def run() -> None:
            rows = pending.pop()
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(statement, rows)
            self.db.execute("COMMIT")

        run.prepare = prepare  # type: ignore[attr-defined]
        return run

    def close(self) -> None:
        self.store.close()


# -- PostgreSQL ----------------------------------------------------------------------------------

PG_BARE = """CREATE TABLE {name} (
    position BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, stream_id TEXT NOT NULL,
    version BIGINT NOT NULL, event_id UUID NOT NULL {unique}, type TEXT NOT NULL,
    category TEXT NOT NULL, data JSONB NOT NULL, metadata JSONB,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now() {stream_version})"""
PG_INSERT = (
    "INSERT INTO {name} (stream_id, version, event_id, type, category, data)"
    " SELECT %s, %s + u.ord, u.id, 'Deposited', 'floor', u.data"
    " FROM ROWS FROM (unnest(%s::uuid[]), jsonb_array_elements(%s::jsonb))"
    " WITH ORDINALITY AS u(id, data, ord)"
)


class PostgresFloor:
    """Bare INSERTs on a database Firth created, through one plain psycopg connection."""

    def __init__(self, url: str) -> None:
        import psycopg

        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS bench_floor")
            admin.execute("CREATE DATABASE bench_floor")
        self.url = url.rsplit("/", 1)[0] + "/bench_floor"
        self.store = EventStore.open(self.url)
        self.conn = psycopg.connect(self.url, autocommit=True)
        self.conn.execute(PG_BARE.format(name="no_index", unique="", stream_version=""))
        self.conn.execute(
            PG_BARE.format(
                name="required", unique="UNIQUE", stream_version=", UNIQUE (stream_id, version)"
            )
        )
        self.versions: dict[tuple[str, str], int] = {}

    def insert(self, table: str, stream: str, count: int) -> Callable[[], None]:
        statement = PG_INSERT.format(name=table)
        pending: list[tuple[Any, ...]] = []

        def prepare() -> None:
            start = self.versions.get((table, stream), 0)
            self.versions[table, stream] = start + count
            data = "[" + ",".join([DATA] * count) + "]"
            pending.append((stream, start, ordered_ids(count), data))

        def run() -> None:
            self.conn.execute(statement, pending.pop(), prepare=True)

        run.prepare = prepare  # type: ignore[attr-defined]
        return run

    def select_one(self) -> None:
        self.conn.execute("SELECT 1", prepare=True)

    def close(self) -> None:
        self.conn.close()
        self.store.close()


def pg_writer(config: tuple[str, str], seconds: float, go: Any, counts: Any) -> None:
    """One of 4 processes doing one-row INSERTs (autocommit) for `seconds`; a statement with
    parameters gets this process's own stream, the next version and a new time-ordered id."""
    import psycopg

    url, statement = config
    stream = f"writer-{uuid.uuid4()}"
    with psycopg.connect(url, autocommit=True) as conn:
        go.wait()
        deadline = time.monotonic() + seconds
        count = 0
        while time.monotonic() < deadline:
            if "%s" in statement:
                conn.execute(statement, (stream, count + 1, ordered_ids(1)[0]), prepare=True)
            else:
                conn.execute(statement, prepare=True)
            count += 1
    counts.put(count)


PG_WRITER_TABLE = "CREATE TABLE writers (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, x INT)"
PG_WRITER_BARE = "INSERT INTO writers (x) VALUES (1)"
PG_WRITER_LOCKED = (
    "WITH locked AS (SELECT pg_advisory_xact_lock(1)) INSERT INTO writers (x) SELECT 1 FROM locked"
)
# One event row into Firth's own table (its four indexes, JSONB data), under the same lock.
PG_WRITER_EVENTS_LOCKED = (
    "WITH locked AS (SELECT pg_advisory_xact_lock(1))"
    " INSERT INTO events (stream_id, version, event_id, type, category, data)"
    " SELECT %s, %s, %s, 'Deposited', 'writer', '{\"amount\": 1}'::jsonb FROM locked"
)


# -- the rows ----------------------------------------------------------------------------------


def timed_prepared(functions: Sequence[Callable[[], Any]], samples: int) -> list[list[float]]:
    """Like `interleaved`, each function's `prepare` run (untimed) before its sample."""
    times: list[list[float]] = [[] for _ in functions]
    for _ in range(samples):
        for function, bucket in zip(functions, times, strict=True):
            prepare = getattr(function, "prepare", None)
            if prepare is not None:
                prepare()
            bucket.append(timed(function))
    return times


def backend_floors(
    backend: str, floor: SqliteFloor | PostgresFloor, app: Any, samples: int, folder: Path
) -> list[Floor]:
    """The single-event and batched rows, store level (pre-serialised `StoredEvent`s, as the
    main benchmark gives the library) and aggregate level (`Application.save`), each against
    the same bare operations measured in the same interleaved loop."""
    from eventsourcing.persistence import StoredEvent

    topic, state = library_template(app)
    originator = uuid.uuid4()
    versions = iter(range(1, 10**9))
    account = LibAccount("floor")
    app.save(account)

    def library_single() -> None:
        app.recorder.insert_events([StoredEvent(originator, next(versions), topic, state)])

    def library_save() -> None:
        app.save(account)

    library_save.prepare = lambda: account.deposit(1)  # type: ignore[attr-defined]

    tables = list(SQLITE_TABLES)
    singles: list[Callable[[], Any]] = [library_single, library_save]
    singles += [floor.insert(table, f"single-{table}", 1) for table in tables]
    if isinstance(floor, PostgresFloor):
        singles.append(floor.select_one)
    else:
        singles.append(disk_sync(folder))
    times = timed_prepared(singles, samples)
    last = (
        "SELECT 1 round trip"
        if isinstance(floor, PostgresFloor)
        else "disk: 4 KiB pwrite + fdatasync"
    )
    names = [f"1 row + commit, {SQLITE_TABLES[table]}" for table in tables] + [last]
    rows = []
    for quantile, pick in (("p50", p50), ("p99", p99)):
        floors = [(name, pick(sample)) for name, sample in zip(names, times[2:], strict=True)]
        rows += [
            Floor(
                backend,
                f"append 1 event, store level, {quantile}",
                "µs",
                pick(times[0]),
                floors,
                False,
            ),
            Floor(
                backend,
                f"save 1 event, aggregate level, {quantile}",
                "µs",
                pick(times[1]),
                floors,
                False,
            ),
        ]

    batch_stored: list[list[Any]] = []
    batch_aggregates: list[Any] = []

    def prepare_library_batch() -> None:
        batch_originator = uuid.uuid4()
        batch_stored.append(
            [StoredEvent(batch_originator, v, topic, state) for v in range(1, BATCH + 1)]
        )

    def library_batch() -> None:
        app.recorder.insert_events(batch_stored.pop())

    def prepare_library_batch_save() -> None:
        big = LibAccount("floor")  # its creation event plus 999 deposits: 1,000 new events
        for _ in range(BATCH - 1):
            big.deposit(1)
        batch_aggregates.append(big)

    def library_batch_save() -> None:
        app.save(batch_aggregates.pop())

    library_batch.prepare = prepare_library_batch  # type: ignore[attr-defined]
    library_batch_save.prepare = prepare_library_batch_save  # type: ignore[attr-defined]
    batches: list[Callable[[], Any]] = [library_batch, library_batch_save]
    batches += [floor.insert(table, f"batch-{table}", BATCH) for table in tables]
    times = timed_prepared(batches, max(5, samples // 20))
    rates = [BATCH * len(sample) / sum(sample) for sample in times]
    batch_floors = [
        (f"1,000 rows + commit, {SQLITE_TABLES[table]}", rate)
        for table, rate in zip(tables, rates[2:], strict=True)
    ]
    rows += [
        Floor(backend, "batched append, store level", "events/s", rates[0], batch_floors, True),
        Floor(backend, "batched save, aggregate level", "events/s", rates[1], batch_floors, True),
    ]
    return rows


def writer_floors(url: str, env: dict[str, str], seconds: float) -> Floor:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(PG_WRITER_TABLE)
    library = concurrent_writers(library_writer, env, 4, seconds)
    bare = concurrent_writers(pg_writer, (url, PG_WRITER_BARE), 4, seconds)
    locked = concurrent_writers(pg_writer, (url, PG_WRITER_LOCKED), 4, seconds)
    events = concurrent_writers(pg_writer, (url, PG_WRITER_EVENTS_LOCKED), 4, seconds)
    return Floor(
        "postgresql",
        "4 writer processes, 1 event per append",
        "events/s",
        library,
        [
            ("1 row + commit, no index", bare),
            ("the same, advisory lock through commit", locked),
            ("1 event row into Firth's table, same lock", events),
        ],
        True,
    )


def render(console: Console, floors: list[Floor], samples: int) -> None:
    table = Table(
        title=f"event store floors: the bare operation vs 3x the library ({samples} samples)"
    )
    for column in (
        "backend",
        "row",
        "unit",
        "eventsourcing",
        "3x budget",
        "bare operation",
        "bare",
        "of budget",
    ):
        table.add_column(
            column,
            justify="left" if column in ("backend", "row", "bare operation") else "right",
            no_wrap=True,
        )
    for floor in floors:
        for index, (name, value) in enumerate(floor.floors):
            share = floor.budget / value if floor.higher_is_better else value / floor.budget
            first = index == 0
            table.add_row(
                floor.backend if first else "",
                floor.row if first else "",
                floor.unit if first else "",
                f"{floor.library:,.0f}" if first else "",
                f"{floor.budget:,.0f}" if first else "",
                name,
                f"{value:,.1f}",
                f"{share:.0%}",
            )
    console.print(table)
    console.print(
        "'of budget': the bare operation as a share of the 3x budget (time for latency rows,"
        " budget rate / bare rate for throughput rows); over 100% means the database alone"
        " takes longer than the budget allows."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--dir", default=None, help="folder for SQLite files and the PostgreSQL")
    parser.add_argument("--postgres", default=None, help="URL of a PostgreSQL ('postgres' db)")
    parser.add_argument("--samples", type=int, default=400, help="samples per single-event row")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="firth-bench-floors-", dir=args.dir or os.getcwd()))
    server = None
    floors: list[Floor] = []
    console = Console(width=180)
    before = os.getloadavg()[0]
    try:
        if args.backend in ("sqlite", "both"):
            url, env = sqlite_setup(folder, "full")
            sqlite_floor, app = SqliteFloor(url), library_app(env)
            floors += backend_floors("sqlite", sqlite_floor, app, args.samples, folder)
            sqlite_floor.close()
            app.close()
        if args.backend in ("postgresql", "both"):
            pg_url = args.postgres
            if pg_url is None:
                sys.path.insert(0, str(ROOT))
                from tests.eventsourcing import es_pg

                os.chmod(folder, 0o755)  # the server runs unprivileged when we are root
                server = es_pg.start(durable=True, parent=str(folder))
                pg_url = server.url()
            firth_url, env = postgres_setup(pg_url)
            pg_floor, app = PostgresFloor(firth_url), library_app(env)
            floors += backend_floors("postgresql", pg_floor, app, args.samples, folder)
            app.close()
            floors.append(writer_floors(pg_floor.url, env, 4.0))
            pg_floor.close()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    console.print(f"load average {before:.1f} -> {os.getloadavg()[0]:.1f}")
    render(console, floors, args.samples)


if __name__ == "__main__":
    main()
