"""bench/eventstore.py and bench/eventstore_floors.py, in the default run so they cannot rot.

Each script runs once, tiny, on SQLite in a temporary folder (PostgreSQL rows need a durable
server and belong to real runs). The test checks that every row is measured and printed, not
any rate.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run(script: str, *args: str, folder: Path) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--backend", "sqlite", "--dir", str(folder), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_eventstore_bench_measures_every_sqlite_row(tmp_path: Path) -> None:
    out = run("eventstore.py", "--runs", "1", "--quick", folder=tmp_path)
    for row in (
        "append 1 event, store level, p50",
        "save 1 event, aggregate level, p99",
        "batched append, store level",
        "batched save, aggregate level",
        "replay 10,000-event stream",
        "projection catch-up",
    ):
        assert row in out, out
    assert "synchronous=FULL" in out  # both sides' durability is read back and printed
    assert list(tmp_path.iterdir()) == []  # its databases are removed


def test_floors_bench_prints_each_bare_operation_against_the_budget(tmp_path: Path) -> None:
    out = run("eventstore_floors.py", "--samples", "5", folder=tmp_path)
    for row in (
        "append 1 event, store level, p50",
        "batched append, store level",
        "batched save, aggregate level",
        "save 1 event, aggregate level, p50",
        "append 1 event, store level, p99",
        "1 row + commit, no index",
        "1 row + commit, 2 unique indexes",
        "1 row + commit, Firth's table, 4 indexes",
        "disk: 4 KiB pwrite + fdatasync",
        "1,000 rows + commit, Firth's table, 4 indexes",
    ):
        assert row in out, out
    assert list(tmp_path.iterdir()) == []
