"""Concurrent writers in separate processes (spawn), on both backends."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from collections import defaultdict

import pytest

from firth.eventsourcing import EventStore

from . import es_workers

ctx = multiprocessing.get_context("spawn")


def run_processes(target, url: str, count: int, *args):  # type: ignore[no-untyped-def]
    go = ctx.Event()
    results = ctx.Queue()
    processes = [
        ctx.Process(target=target, args=(url, writer, *args, go, results))
        for writer in range(count)
    ]
    for process in processes:
        process.start()
    return processes, go, results


def collect(processes, results, count: int, timeout: float = 120):  # type: ignore[no-untyped-def]
    gathered = [results.get(timeout=timeout) for _ in range(count)]
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    return dict(gathered)


def test_same_stream_exactly_one_writer_wins_each_version(store_url: str) -> None:
    writers, versions = 4, 25
    EventStore.open(store_url).close()  # create the schema before the race
    processes, go, results = run_processes(es_workers.contend, store_url, writers, versions)
    go.set()
    outcomes = collect(processes, results, writers)

    winners: dict[int, list[int]] = defaultdict(list)
    for writer, attempts in outcomes.items():
        assert [version for _, version, _ in attempts] == list(range(versions))
        for result, version, actual in attempts:
            if result == "won":
                winners[version].append(writer)
                assert actual == version + 1
            else:
                assert actual > version  # refused only because someone else got there first
    assert {version: len(names) for version, names in winners.items()} == dict.fromkeys(
        range(versions), 1
    )
    with EventStore.open(store_url) as store:
        stored = list(store.read_stream("race-1"))
        assert [e.version for e in stored] == list(range(1, versions + 1))
        assert [e.data["writer"] for e in stored] == [winners[v][0] for v in range(versions)]


def test_reader_follows_global_order_while_writers_append(store_url: str) -> None:
    writers, per_writer = 4, 150
    total = writers * per_writer
    with EventStore.open(store_url) as store:
        subscription = store.subscribe(poll_interval=0.01)
        processes, go, results = run_processes(
            es_workers.write_streams, store_url, writers, per_writer
        )
        go.set()
        seen = []
        deadline = time.monotonic() + 120
        while len(seen) < total:
            assert time.monotonic() < deadline, f"reader saw only {len(seen)} of {total}"
            event = subscription.next(timeout=1)
            if event is not None:
                seen.append(event)
        assert collect(processes, results, writers) == dict.fromkeys(range(writers), per_writer)
        assert subscription.next(timeout=0.2) is None
        stored = list(store.read_all())

    positions = [e.position for e in seen]
    assert positions == sorted(set(positions))  # never repeats, never goes back
    assert [(e.position, e.event_id) for e in seen] == [(e.position, e.event_id) for e in stored]
    for writer in range(writers):  # each writer's events arrive in the order it wrote them
        assert [e.data["n"] for e in seen if e.data["writer"] == writer] == list(range(per_writer))
    per_stream: dict[str, list[int]] = defaultdict(list)
    for event in seen:
        per_stream[event.stream_id].append(event.version)
    assert all(versions == list(range(1, len(versions) + 1)) for versions in per_stream.values())


@pytest.mark.postgres
def test_postgresql_subscribers_wake_on_other_processes_appends(pg_url: str) -> None:
    """With LISTEN/NOTIFY a subscriber sees another process's append long before its poll."""
    with EventStore.open(pg_url) as store:
        subscription = store.subscribe(poll_interval=60)
        assert subscription.next(timeout=0.5) is None  # caught up; the listener is running
        started = time.monotonic()
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from firth.eventsourcing import EventStore, NewEvent;"
                "EventStore.open(sys.argv[1]).append('remote-1', [NewEvent('Remote', {})])",
                pg_url,
            ],
            check=True,
            timeout=60,
        )
        event = subscription.next(timeout=20)
        assert event is not None and event.type == "Remote"
        assert time.monotonic() - started < 20  # the 60 s poll never came into it
        subscription.close()
