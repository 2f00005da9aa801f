"""`firth events ...`: streams, show, tail (and --follow), errors without tracebacks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from firth.eventsourcing import EventStore, NewEvent


@pytest.fixture
def filled_url(sqlite_url: str) -> str:
    with EventStore.open(sqlite_url) as store:
        store.append(
            "account-alice",
            [NewEvent("Opened", {"owner": "Alice"}), NewEvent("Deposited", {"amount": 5})],
        )
        store.append("order-17", [NewEvent("Placed", {"items": 3})])
    return sqlite_url


def events_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "firth.eventsourcing.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_streams(filled_url: str) -> None:
    result = events_cli("streams", "--store", filled_url)
    assert result.returncode == 0, result.stderr
    lines = [
        line for line in result.stdout.splitlines() if "account-alice" in line or "order-17" in line
    ]
    assert len(lines) == 2
    assert lines[0].split("│")[1:5] == [
        " account-alice ",
        "       2 ",
        "      2 ",
        "             2 ",
    ]


def test_show(filled_url: str) -> None:
    result = events_cli("show", "account-alice", "--store", filled_url, "--backwards")
    assert result.returncode == 0, result.stderr
    assert result.stdout.index("Deposited") < result.stdout.index("Opened")
    assert '{"owner":"Alice"}' in result.stdout
    missing = events_cli("show", "account-nobody", "--store", filled_url)
    assert missing.returncode == 1 and "no events" in missing.stderr


def test_tail_last_lines(filled_url: str) -> None:
    result = events_cli("tail", "-n", "2", "--store", filled_url)
    assert result.returncode == 0, result.stderr
    assert (
        "Deposited" in result.stdout and "Placed" in result.stdout and "Opened" not in result.stdout
    )
    only_orders = events_cli("tail", "--category", "order", "--store", filled_url)
    assert "Placed" in only_orders.stdout and "Deposited" not in only_orders.stdout


def test_tail_follow_prints_new_events(filled_url: str) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "firth.eventsourcing.cli",
            "tail",
            "--follow",
            "--from-position",
            "3",
            "--store",
            filled_url,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert "order-17@1" in process.stdout.readline()
        with EventStore.open(filled_url) as store:
            store.append("order-18", [NewEvent("Placed", {"items": 1})])
        line = process.stdout.readline()
        assert line.startswith("4 order-18@1 Placed")
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 130


def test_store_errors_are_one_line(tmp_path) -> None:
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"not a database at all" * 200)
    result = events_cli("streams", "--store", f"sqlite:///{bad}")
    assert result.returncode == 1
    assert "not an SQLite event store" in result.stderr and "Traceback" not in result.stderr


def test_mounted_in_the_firth_command(filled_url: str) -> None:
    from firth.cli import main

    started = time.monotonic()
    assert main(["events", "streams", "--store", filled_url]) == 0
    assert time.monotonic() - started < 30
