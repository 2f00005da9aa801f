"""Queue store compaction that fails part way: nothing it opened stays open, nothing is lost.

Each step compaction takes (opening the new log, building and appending its batches, writing,
fsyncing and renaming files, the commit's unlink, closing the old log) is made to fail, one
call at a time: a dry run counts how often compaction calls each of them, then a fresh store
is compacted once per call with that call raising. After each failure the store must still
take a message and close with no file descriptor left open, and reopening it must give back
every live message with its delivery state (from the old generation when the failure came
before the commit, from the new one after). A queue whose compaction fails goes on: the ack
that triggered it succeeds, and a later check compacts.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from firth.amqp.codec import AmqpPropertiesCodec
from firth.broker.queues import QueuedMessage, VirtualHost
from firth.broker.queues import store as store_module
from firth.broker.queues.store import DELIVERED, RETURNED, SETTLED, QueueStore
from firth.log import Log

STEPS: dict[str, tuple[object, str]] = {
    "Log.open": (Log, "open"),
    "build_batch": (store_module, "build_batch"),
    "Log.append": (Log, "append"),
    "Log.flush": (Log, "flush"),
    "os.mkdir": (os, "mkdir"),
    "os.open": (os, "open"),
    "os.write": (os, "write"),
    "os.fsync": (os, "fsync"),
    "os.rename": (os, "rename"),
    "os.replace": (os, "replace"),
    "os.unlink": (os, "unlink"),
}
"""What compaction calls that can fail; the `os` ones also fail inside the log's own steps
(its segment files, index saves, checkpoints, the old log's close)."""

EXPECTED = [(b"m4", 1, True), (b"m5", 2, True), (b"after", 0, False)]
"""m4 was delivered and not settled (a reopen counts one return), m5 came back twice."""


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def stored(body: bytes) -> QueuedMessage:
    return QueuedMessage("ex", "rk", b"\x10\x00\x02", body, persistent=True)


def store_ready_to_compact(directory: Path) -> tuple[QueueStore, list[QueuedMessage]]:
    """Six messages, four settled, m4 out with a consumer, m5 returned twice; all written."""
    store = QueueStore(directory, fsync=True)
    store.open()
    messages = [stored(f"m{i}".encode()) for i in range(6)]
    for message in messages:
        store.append(message)
    store.write_pending()
    for message in messages[:4]:
        store.note(SETTLED, message)
    messages[4].seq = 99
    store.note(DELIVERED, messages[4])
    messages[5].returns = 2
    messages[5].redelivered = True
    store.note(RETURNED, messages[5])
    store.write_pending()
    return store, messages[4:]


def wrap_steps(
    monkeypatch: pytest.MonkeyPatch, wrapper: Callable[[str, Callable[..., Any]], Any]
) -> None:
    for step, (owner, name) in STEPS.items():
        monkeypatch.setattr(owner, name, wrapper(step, getattr(owner, name)))


def count_calls(directory: Path) -> dict[str, int]:
    """How often a compaction that succeeds calls each step."""
    store, live = store_ready_to_compact(directory)
    counts = dict.fromkeys(STEPS, 0)

    def counting(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return real(*args, **kwargs)

        return call

    with pytest.MonkeyPatch.context() as monkeypatch:
        wrap_steps(monkeypatch, counting)
        store.compact(live, frozenset({99}))
    store.close()
    return counts


def compact_failing_at(store: QueueStore, live: list[QueuedMessage], step: str, nth: int) -> bool:
    """Compact with the `nth` call (from 0) of `step` raising; whether compaction raised (it
    passes on every failure but those of tidying up, as deleting the old generation)."""
    calls = 0

    def failing(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            if name == step:
                calls += 1
                if calls == nth + 1:
                    raise OSError(errno.EIO, f"injected: {step} call {nth}")
            return real(*args, **kwargs)

        return call

    with pytest.MonkeyPatch.context() as monkeypatch:
        wrap_steps(monkeypatch, failing)
        try:
            store.compact(live, frozenset({99}))
        except Exception as error:
            chain = [error, error.__cause__, error.__context__]
            assert any(f"injected: {step} call {nth}" in str(e) for e in chain), error
            return True
    return False


def test_the_dry_run_calls_every_step(tmp_path: Path) -> None:
    counts = count_calls(tmp_path / "q")
    assert all(counts.values()), counts


@pytest.mark.parametrize("step", list(STEPS))
def test_a_failed_compaction_leaks_nothing_and_loses_nothing(tmp_path: Path, step: str) -> None:
    raised = 0
    for nth in range(count_calls(tmp_path / "dry-run")[step]):
        directory = tmp_path / f"{step}-{nth}"
        before = open_fds()
        store, live = store_ready_to_compact(directory)
        raised += compact_failing_at(store, live, step, nth)

        store.append(stored(b"after"))  # still usable, whichever generation it is on
        store.write_pending()
        store.close()
        assert open_fds() == before, f"{step} call {nth} left a descriptor open"

        again = QueueStore(directory, fsync=True)
        loaded = again.open()
        assert [(m.body, m.returns, m.redelivered) for m in loaded] == EXPECTED, (step, nth)
        assert [p.name for p in directory.iterdir()] == [f"gen-{again.generation:08d}"]
        again.close()
    assert raised, f"no failure of {step} reached the caller"


def test_an_ack_that_triggers_a_failing_compaction_still_settles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(store_module, "COMPACT_BYTES", 1000)
    monkeypatch.setattr(store_module, "COMPACT_CHECK_EVERY", 1)
    attempts = 0
    real_copy = store_module._copy_messages

    def full_disk_once(*args: Any) -> list[int]:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise OSError(errno.ENOSPC, "injected: no space left")
        return real_copy(*args)

    monkeypatch.setattr(store_module, "_copy_messages", full_disk_once)

    async def check() -> None:
        vhost = VirtualHost(tmp_path, AmqpPropertiesCodec(), fsync=False)
        queue = vhost.declare_queue("q", owner=None, durable=True)
        for i in range(40):
            queue.publish(stored(f"{i:02d}".encode() * 20))
        vhost.write_pending()
        for _ in range(30):
            got = queue.get(no_ack=False)
            assert got is not None
            queue.ack(got)  # the first compaction attempt fails inside one of these
        assert attempts >= 2
        assert queue.store is not None and queue.store.generation > 0  # a later one passed
        vhost.close()
        reopened = VirtualHost(tmp_path, AmqpPropertiesCodec(), fsync=False)
        reopened.load()
        again = reopened.queues["q"]
        bodies = []
        while (got := again.get(no_ack=True)) is not None:
            bodies.append(got.body[:2])
        assert bodies == [f"{i:02d}".encode() for i in range(30, 40)]
        reopened.close()

    with caplog.at_level(logging.WARNING, logger="firth.broker.queues.queue"):
        asyncio.run(check())
    assert "compaction of queue 'q' failed" in caplog.text
    assert "injected: no space left" in caplog.text
