"""Firth's event store side by side with the Python `eventsourcing` library, same backend, same disk.

Rows (each measured for both, in one run, the two sides' samples interleaved so that a burst of
load on the shared machine hits both alike):

- single-event append, p50/p99 µs, store level: `EventStore.append` of one event with its
  expected version vs the library's `ApplicationRecorder.insert_events` of one already
  serialised `StoredEvent` (Firth's time includes JSON encoding; the library's has none);
- single-event save, p50/p99 µs, aggregate level: `Repository.save` vs `Application.save` of an
  aggregate with one new event (both serialise, both check the version);
- batched append, events/s, store level: 1,000 events per append, as above (Firth encodes
  JSON inside the timing, the library is handed serialised state);
- batched save, events/s, aggregate level: an aggregate with 1,000 new events saved at once
  (both sides serialise);
- replay of a 10,000-event stream into an aggregate (no snapshot), ms, best of 3;
- projection catch-up, events/s: read the whole global order, decode into domain events,
  and record a checkpoint every 500 events (Firth: `ProjectionRunner`; the library:
  `select_notifications` pages, its mapper, `insert_tracking` per page); three catch-ups per
  side, interleaved, each under a new projection name, median;
- PostgreSQL only: 4 writer processes appending single events to their own streams, events/s.

Fairness: same backend, same disk, same durability. SQLite: both in WAL mode; the run prints
each side's `synchronous` as read from its own writing connection (both FULL by default: an
fsync per commit). `--firth-synchronous normal` runs Firth with `synchronous=NORMAL` as well,
for comparison with a library configured that way; it is never Firth's default. PostgreSQL: one
server (fsync on, synchronous_commit on), one database per side.

Each run uses fresh databases; `--runs N` (default 3) repeats everything and reports the
median of each row with the range of the ratio across runs, and the load average around each
run (the development machine is shared; compare rows within a run).

    python bench/eventstore.py [--backend sqlite|postgresql|both] [--dir PATH] [--postgres URL]
                               [--runs N] [--quick] [--firth-synchronous full|normal]

SQLite files go in a temporary folder beside the current directory (the project's disk, not a
tmpfs). Without --postgres a throwaway durable PostgreSQL (fsync on) is started in that folder,
with the tests' helper.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from firth.eventsourcing import EventStore, NewEvent, RecordedEvent, Transaction
from firth.eventsourcing.aggregate import Aggregate, DomainEvent, applies
from firth.eventsourcing.projections import Projection, ProjectionRunner
from firth.eventsourcing.repository import Repository

ROOT = Path(__file__).resolve().parents[1]

# -- Firth's side: an aggregate with the same shape as the library's ----------------------------


@dataclass(frozen=True)
class Opened(DomainEvent):
    owner: str


@dataclass(frozen=True)
class Deposited(DomainEvent):
    amount: int


class Account(Aggregate):
    category = "account"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.balance = 0

    @applies(Opened)
    def _opened(self, event: Opened) -> None:
        self.balance = 0

    @applies(Deposited)
    def _deposited(self, event: Deposited) -> None:
        self.balance += event.amount


class Counting(Projection):
    name = "bench"

    def __init__(self) -> None:
        self.count = 0

    def handle(self, event: RecordedEvent, tx: Transaction) -> None:
        Account.decode_event(event.type, event.data, event.stream_id, event.version)
        self.count += 1


# -- the library's side ------------------------------------------------------------------------


def library_app(env: dict[str, str]) -> Any:
    from eventsourcing.application import Application

    return Application(env=env)


def library_account_class() -> Any:
    from eventsourcing.domain import Aggregate as LibAggregate
    from eventsourcing.domain import event

    class LibAccount(LibAggregate):
        @event("Opened")
        def __init__(self, owner: str) -> None:
            self.balance = 0

        @event("Deposited")
        def deposit(self, amount: int) -> None:
            self.balance += amount

    return LibAccount


LibAccount = library_account_class()


def library_template(app: Any) -> tuple[str, bytes]:
    """(topic, state) of a real Deposited event, reused for store-level inserts."""
    account = LibAccount("template")
    account.deposit(1)
    stored = app.mapper.to_stored_event(account.collect_events()[-1])
    return stored.topic, stored.state


# -- measuring ---------------------------------------------------------------------------------


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2] * 1e6, ordered[
        min(len(ordered) - 1, int(len(ordered) * 0.99))
    ] * 1e6


def timed(function: Callable[[], Any]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


@dataclass
class Row:
    backend: str
    measure: str
    firth: float
    library: float
    unit: str
    higher_is_better: bool

    @property
    def advantage(self) -> float:
        if self.higher_is_better:
            return self.firth / self.library
        return self.library / self.firth


def durability(store: EventStore, app: Any) -> str:
    """Each side's durability settings, read from its own writing connection."""
    if store.dialect == "sqlite":
        firth_db = store._db  # type: ignore[attr-defined]
        firth = [firth_db.execute(f"PRAGMA {name}").fetchone()[0] for name in PRAGMAS]
        with app.recorder.datastore.transaction(commit=True) as cursor:
            library = []
            for name in PRAGMAS:
                cursor.execute(f"PRAGMA {name}")
                library.append(cursor.fetchone()[0])
        return (
            f"firth journal_mode={firth[0]} synchronous={SYNCHRONOUS[firth[1]]}; "
            f"eventsourcing journal_mode={library[0]} synchronous={SYNCHRONOUS[library[1]]}"
        )
    with store.transaction() as tx:
        settings = [tx.execute(f"SHOW {name}")[0][0] for name in PG_SETTINGS]
    return "one server for both: " + ", ".join(
        f"{name}={value}" for name, value in zip(PG_SETTINGS, settings, strict=True)
    )


PRAGMAS = ("journal_mode", "synchronous")
SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
PG_SETTINGS = ("fsync", "synchronous_commit", "wal_sync_method", "full_page_writes")


def bench_backend(
    backend: str, firth_url: str, lib_env: dict[str, str], quick: bool
) -> tuple[list[Row], str]:
    singles = 100 if quick else 400
    batches = 5 if quick else 20
    rows: list[Row] = []
    store = EventStore.open(firth_url)
    app = library_app(lib_env)
    settings = durability(store, app)
    topic, state = library_template(app)
    from eventsourcing.persistence import StoredEvent, Tracking

    # single-event append, store level (samples interleaved)
    firth_samples, lib_samples = [], []
    originator = uuid.uuid4()
    for version in range(singles):
        event = [NewEvent("Deposited", {"amount": 1})]
        firth_samples.append(timed(partial(store.append, "single-1", event, version)))
        stored = [StoredEvent(originator, version + 1, topic, state)]
        lib_samples.append(timed(partial(app.recorder.insert_events, stored)))
    (f50, f99), (l50, l99) = percentiles(firth_samples), percentiles(lib_samples)
    rows += [
        Row(backend, "append 1 event, store level, p50", f50, l50, "µs", False),
        Row(backend, "append 1 event, store level, p99", f99, l99, "µs", False),
    ]

    # single-event save, aggregate level
    accounts = Repository(store, Account)
    account = Account("agg")
    account.trigger(Opened("x"))
    accounts.save(account)
    lib_account = LibAccount("x")
    app.save(lib_account)
    firth_samples, lib_samples = [], []
    for _ in range(singles):
        account.trigger(Deposited(1))
        firth_samples.append(timed(lambda: accounts.save(account)))
        lib_account.deposit(1)
        lib_samples.append(timed(lambda: app.save(lib_account)))
    (f50, f99), (l50, l99) = percentiles(firth_samples), percentiles(lib_samples)
    rows += [
        Row(backend, "save 1 event, aggregate level, p50", f50, l50, "µs", False),
        Row(backend, "save 1 event, aggregate level, p99", f99, l99, "µs", False),
    ]

    # batched append, store level
    firth_time = lib_time = 0.0
    for batch in range(batches):
        events = [NewEvent("Deposited", {"amount": 1}) for _ in range(1000)]
        firth_time += timed(partial(store.append, f"batch-{batch}", events))
        originator = uuid.uuid4()
        stored = [StoredEvent(originator, v, topic, state) for v in range(1, 1001)]
        lib_time += timed(partial(app.recorder.insert_events, stored))
    total = batches * 1000
    rows.append(
        Row(
            backend,
            "batched append, store level (1,000/append)",
            total / firth_time,
            total / lib_time,
            "events/s",
            True,
        )
    )

    # batched save, aggregate level: both sides serialise the 1,000 events
    firth_time = lib_time = 0.0
    for batch in range(batches):
        big = Account(f"big-{batch}")
        big.trigger(Opened("x"))
        for _ in range(999):
            big.trigger(Deposited(1))
        firth_time += timed(partial(accounts.save, big))
        lib_big = LibAccount("x")
        for _ in range(999):
            lib_big.deposit(1)
        lib_time += timed(partial(app.save, lib_big))
    rows.append(
        Row(
            backend,
            "batched save, aggregate level (1,000/save)",
            total / firth_time,
            total / lib_time,
            "events/s",
            True,
        )
    )

    # replay of a 10,000-event stream
    long = Account("long")
    long.trigger(Opened("x"))
    for _ in range(9999):
        long.trigger(Deposited(1))
    accounts.save(long)
    lib_long = LibAccount("x")
    for _ in range(9999):
        lib_long.deposit(1)
    app.save(lib_long)
    loader = Repository(store, Account, use_snapshots=False)
    firth_replays, lib_replays = [], []
    for _ in range(3):
        firth_replays.append(timed(lambda: loader.load("long")))
        lib_replays.append(timed(lambda: app.repository.get(lib_long.id)))
    assert loader.load("long").balance == app.repository.get(lib_long.id).balance == 9999
    rows.append(
        Row(
            backend,
            "replay 10,000-event stream",
            min(firth_replays) * 1e3,
            min(lib_replays) * 1e3,
            "ms",
            False,
        )
    )

    # projection catch-up: three catch-ups per side, interleaved, each from position 1 under a
    # new projection (tracking) name; the row takes each side's median
    tracking = app.factory.tracking_recorder()

    def library_catch_up(name: str) -> int:
        count, start = 0, 1
        while True:
            page = app.recorder.select_notifications(start, 500)
            if not page:
                return count
            for notification in page:
                app.mapper.to_domain_event(notification)
                count += 1
            tracking.insert_tracking(Tracking(name, page[-1].id))
            start = page[-1].id + 1

    firth_rates, lib_rates = [], []
    counts: set[int] = set()
    for attempt in range(3):
        counting = Counting()
        counting.name = f"bench-{attempt}"
        runner = ProjectionRunner(store, counting)
        started = time.perf_counter()
        runner_count = runner.run_until_caught_up()
        firth_rates.append(runner_count / (time.perf_counter() - started))
        started = time.perf_counter()
        lib_count = library_catch_up(f"bench-{attempt}")
        lib_rates.append(lib_count / (time.perf_counter() - started))
        counts |= {runner_count, counting.count, lib_count}
    assert len(counts) == 1, counts
    rows.append(
        Row(
            backend,
            f"projection catch-up ({counts.pop():,} events)",
            statistics.median(firth_rates),
            statistics.median(lib_rates),
            "events/s",
            True,
        )
    )
    store.close()
    app.close()
    return rows, settings


# -- PostgreSQL: 4 concurrent writer processes ----------------------------------------------------


def firth_writer(url: str, seconds: float, go: Any, counts: Any) -> None:
    with EventStore.open(url) as store:
        stream = f"writer-{uuid.uuid4()}"
        go.wait()
        deadline = time.monotonic() + seconds
        count = 0
        while time.monotonic() < deadline:
            store.append(stream, [NewEvent("Deposited", {"amount": 1})], count)
            count += 1
    counts.put(count)


def library_writer(env: dict[str, str], seconds: float, go: Any, counts: Any) -> None:
    from eventsourcing.persistence import StoredEvent

    # The tables exist already; four processes creating them at once race in the catalog.
    app = library_app({**env, "CREATE_TABLE": "no"})
    topic, state = library_template(app)
    originator = uuid.uuid4()
    go.wait()
    deadline = time.monotonic() + seconds
    count = 0
    while time.monotonic() < deadline:
        count += 1
        app.recorder.insert_events([StoredEvent(originator, count, topic, state)])
    app.close()
    counts.put(count)


def concurrent_writers(
    target: Callable[..., None], config: Any, writers: int, seconds: float
) -> float:
    ctx = multiprocessing.get_context("spawn")
    go, counts = ctx.Event(), ctx.Queue()
    processes = [
        ctx.Process(target=target, args=(config, seconds, go, counts)) for _ in range(writers)
    ]
    for process in processes:
        process.start()
    time.sleep(2.0)  # let every process import and connect before the clock starts
    go.set()
    total = sum(counts.get(timeout=seconds + 60) for _ in processes)
    for process in processes:
        process.join(30)
    return total / seconds


# -- main --------------------------------------------------------------------------------------


def sqlite_setup(folder: Path, synchronous: str) -> tuple[str, dict[str, str]]:
    query = "" if synchronous == "full" else f"?synchronous={synchronous}"
    return (
        f"sqlite:///{folder}/firth.db{query}",
        {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(folder / "library.db")},
    )


def postgres_setup(url: str) -> tuple[str, dict[str, str]]:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    with psycopg.connect(url, autocommit=True) as conn:
        for name in ("bench_firth", "bench_library"):
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
    info = conninfo_to_dict(url)
    base = url.rsplit("/", 1)[0]
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": "bench_library",
        "POSTGRES_HOST": str(info.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(info.get("port", 5432)),
        "POSTGRES_USER": str(info.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(info.get("password", "")),
    }
    return f"{base}/bench_firth", env


def one_run(args: argparse.Namespace, folder: Path, pg_url: str | None) -> tuple[list[Row], str]:
    """Every row once, on fresh databases; returns the rows and the settings line(s)."""
    rows: list[Row] = []
    notes: list[str] = []
    if args.backend in ("sqlite", "both"):
        run_folder = Path(tempfile.mkdtemp(prefix="run-", dir=folder))
        firth_url, env = sqlite_setup(run_folder, args.firth_synchronous)
        sqlite_rows, settings = bench_backend("sqlite", firth_url, env, args.quick)
        rows += sqlite_rows
        notes.append(f"sqlite: {settings}")
        shutil.rmtree(run_folder, ignore_errors=True)
    if pg_url is not None:
        firth_url, env = postgres_setup(pg_url)
        pg_rows, settings = bench_backend("postgresql", firth_url, env, args.quick)
        rows += pg_rows
        notes.append(f"postgresql: {settings}")
        seconds = 2.0 if args.quick else 4.0
        firth_rate = concurrent_writers(firth_writer, firth_url, 4, seconds)
        lib_rate = concurrent_writers(library_writer, env, 4, seconds)
        rows.append(
            Row(
                "postgresql",
                "4 writer processes, 1 event/append",
                firth_rate,
                lib_rate,
                "events/s",
                True,
            )
        )
    return rows, "; ".join(notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--dir", default=None, help="folder for SQLite files and the throwaway PostgreSQL"
    )
    parser.add_argument(
        "--postgres", default=None, help="URL of a PostgreSQL to use (its 'postgres' database)"
    )
    parser.add_argument("--runs", type=int, default=3, help="full runs; rows report the median")
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument(
        "--firth-synchronous",
        choices=["full", "normal"],
        default="full",
        help="Firth's SQLite synchronous setting (default FULL, Firth's durable default)",
    )
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="firth-bench-es-", dir=args.dir or os.getcwd()))
    server = None
    runs: list[list[Row]] = []
    console = Console(width=150)
    try:
        pg_url = None
        if args.backend in ("postgresql", "both"):
            pg_url = args.postgres
            if pg_url is None:
                sys.path.insert(0, str(ROOT))
                from tests.eventsourcing import es_pg

                os.chmod(folder, 0o755)  # the server runs as an unprivileged user when we are root
                server = es_pg.start(durable=True, parent=str(folder))
                pg_url = server.url()
        for number in range(1, args.runs + 1):
            before = os.getloadavg()[0]
            rows, settings = one_run(args, folder, pg_url)
            runs.append(rows)
            console.print(
                f"run {number}/{args.runs}: load average {before:.1f} -> {os.getloadavg()[0]:.1f};"
                f" {settings}"
            )
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)

    table = Table(
        title=f"event store: Firth vs eventsourcing {_library_version()},"
        f" median of {len(runs)} run(s)"
    )
    for column in ("backend", "measure", "unit", "firth", "eventsourcing", "firth advantage"):
        table.add_column(column, justify="left" if column in ("backend", "measure") else "right")
    for index, row in enumerate(runs[0]):
        samples = [run[index] for run in runs]
        firth = statistics.median(sample.firth for sample in samples)
        library = statistics.median(sample.library for sample in samples)
        median = Row(row.backend, row.measure, firth, library, row.unit, row.higher_is_better)
        ratios = sorted(sample.advantage for sample in samples)
        spread = f" ({ratios[0]:.1f}–{ratios[-1]:.1f})" if len(ratios) > 1 else ""
        table.add_row(
            row.backend,
            row.measure,
            row.unit,
            f"{firth:,.1f}",
            f"{library:,.1f}",
            f"{median.advantage:.1f}×{spread}",
        )
    console.print(table)


def _library_version() -> str:
    from importlib.metadata import version

    return version("eventsourcing")


if __name__ == "__main__":
    main()
