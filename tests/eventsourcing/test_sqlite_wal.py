"""The SQLite store extends its write-ahead log with zeros when it opens (so that commits
overwrite the file instead of growing it): the extension must be there, and must not cost a
committed event when the process dies without closing."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from firth.eventsourcing import EventStore, NewEvent

WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from firth.eventsourcing import EventStore, NewEvent
    store = EventStore.open(f"sqlite:///{sys.argv[1]}")
    for version in range(int(sys.argv[2])):
        store.append("account-1", [NewEvent("Deposited", {"n": version})], version)
    print(os.path.getsize(sys.argv[1] + "-wal"), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no close: no checkpoint, the WAL stays as it is
    """
)


def wal_target(path: Path) -> int:
    with sqlite3.connect(path) as db:
        pages = db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    return 32 + pages * (24 + page_size)


def test_opening_extends_the_wal_to_a_checkpoint_interval(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with EventStore.open(f"sqlite:///{path}") as store:
        assert os.path.getsize(f"{path}-wal") >= wal_target(path)
        store.append("account-1", [NewEvent("Opened", {})])
        assert [e.type for e in store.read_stream("account-1")] == ["Opened"]


def test_commits_survive_a_killed_process_with_a_preallocated_wal(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    done = subprocess.run(
        [sys.executable, "-c", WRITER, str(path), "40"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -9, done.stderr
    assert int(done.stdout) >= wal_target(path)  # the zeros were there while it committed
    with EventStore.open(f"sqlite:///{path}") as store:
        events = list(store.read_stream("account-1"))
        assert [e.version for e in events] == list(range(1, 41))
        assert [e.data["n"] for e in events] == list(range(40))
        store.append("account-1", [NewEvent("Deposited", {"n": 40})], 40)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM events").fetchone() == (41,)


def test_synchronous_normal_leaves_the_wal_alone(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with EventStore.open(f"sqlite:///{path}?synchronous=normal"):
        assert os.path.getsize(f"{path}-wal") < wal_target(path)


def test_a_symlinked_database_gets_its_real_wal_extended(tmp_path: Path) -> None:
    real = tmp_path / "real.db"
    link = tmp_path / "link.db"
    with EventStore.open(f"sqlite:///{real}"):
        pass
    link.symlink_to(real)
    with EventStore.open(f"sqlite:///{link}") as store:
        store.append("account-1", [NewEvent("Opened", {})])
        assert os.path.getsize(f"{real}-wal") >= wal_target(real)
        assert not os.path.exists(f"{link}-wal")
