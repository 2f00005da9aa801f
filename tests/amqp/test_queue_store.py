"""Durable queues on disk and the virtual host around them.

``QueueStore``: messages stored as record batches come back after reopening, settled ones do
not, delivered ones come back redelivered with their delivery counts, a torn journal tail is
ignored, and a fully settled queue starts a new generation. ``VirtualHost``: definitions
survive a reload, exclusive and server-named queues, and dead-lettering through the AMQP codec
(x-death entries, cycle dropping).
"""

from __future__ import annotations

import asyncio
import datetime
import shutil
from pathlib import Path
from typing import Any

import pika.spec
import pytest

from firth.amqp.codec import AmqpPropertiesCodec, scan_publish
from firth.broker.queues import (
    QueueAccessRefused,
    QueuedMessage,
    QueueNotFound,
    QueuePreconditionFailed,
    ResourceLocked,
    VirtualHost,
)
from firth.broker.queues import store as store_module
from firth.broker.queues.store import DELIVERED, RETURNED, SETTLED, QueueStore


def stored(body: bytes, **kwargs: Any) -> QueuedMessage:
    return QueuedMessage("ex", "rk", b"\x10\x00\x02", body, persistent=True, **kwargs)


def test_store_reopens_live_messages_with_their_state(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "q", fsync=False)
    assert store.open() == []
    messages = [stored(f"m{i}".encode(), timestamp=i, expires_at=-1, priority=i) for i in range(4)]
    for message in messages:
        store.append(message)
    store.note(SETTLED, messages[0])
    store.note(DELIVERED, messages[1])
    messages[2].returns = 3
    store.note(RETURNED, messages[2])
    store.write_journal()
    store.close()

    again = QueueStore(tmp_path / "q", fsync=False)
    loaded = again.open()
    assert [m.body for m in loaded] == [b"m1", b"m2", b"m3"]
    # m1 was in flight (delivered, never settled or returned): that counts as a return
    assert [(m.redelivered, m.returns) for m in loaded] == [(True, 1), (True, 3), (False, 0)]
    head = loaded[0]
    assert (head.exchange, head.routing_key, head.properties, head.priority) == (
        "ex",
        "rk",
        b"\x10\x00\x02",
        1,
    )
    again.close()


def test_torn_journal_tail_is_ignored(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "q", fsync=False)
    store.open()
    first, second = stored(b"a"), stored(b"b")
    store.append(first)
    store.append(second)
    store.note(SETTLED, first)
    store.write_journal()
    store.close()
    journal = next((tmp_path / "q").glob("gen-*/journal"))
    with journal.open("ab") as handle:
        handle.write(b"\x01\x00\x00")  # a crash mid-entry
    again = QueueStore(tmp_path / "q", fsync=False)
    assert [m.body for m in again.open()] == [b"b"]
    again.close()


def test_compaction_keeps_live_messages_and_their_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "COMPACT_BYTES", 100)
    monkeypatch.setattr(store_module, "COMPACT_CHECK_EVERY", 1)
    store = QueueStore(tmp_path / "q", fsync=False)
    store.open()
    messages = [stored(f"m{i}".encode() * 20) for i in range(6)]
    for message in messages:
        store.append(message)
    store.write_pending()
    for message in messages[:4]:
        store.note(SETTLED, message)
    messages[5].returns = 2
    messages[5].redelivered = True
    assert store.wants_compaction()
    messages[4].seq = 99
    store.compact(messages[4:], frozenset({99}))  # m4 is out with a consumer
    assert [p.name for p in (tmp_path / "q").iterdir()] == ["gen-00000001"]
    assert [m.offset for m in messages[4:]] == [0, 1]
    store.append(stored(b"after"))
    store.write_pending()
    # a crash now (what is on disk, copied): m4 was in flight (counts a return), m5 keeps
    # its state
    shutil.copytree(tmp_path / "q", tmp_path / "crash")
    crashed = QueueStore(tmp_path / "crash", fsync=False)
    assert [(m.body[:2], m.returns, m.redelivered) for m in crashed.open()] == [
        (b"m4", 1, True),
        (b"m5", 2, True),
        (b"af", 0, False),
    ]
    crashed.close()
    store.note(SETTLED, messages[4])  # settles at its new offset
    store.close()
    again = QueueStore(tmp_path / "q", fsync=False)
    loaded = again.open()
    assert [(m.body[:2], m.returns, m.redelivered) for m in loaded] == [
        (b"m5", 2, True),
        (b"af", 0, False),
    ]
    again.close()


def test_unfinished_compaction_is_discarded(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "q", fsync=False)
    store.open()
    store.append(stored(b"kept"))
    store.close()
    half = tmp_path / "q" / "gen-00000001"
    (half / "log").mkdir(parents=True)
    (half / store_module.COMPACTING).touch()
    again = QueueStore(tmp_path / "q", fsync=False)
    assert [m.body for m in again.open()] == [b"kept"]
    assert not half.exists()
    again.close()


def test_queue_compacts_while_consumers_hold_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A queue that is never empty still drops its settled messages from disk."""
    monkeypatch.setattr(store_module, "COMPACT_BYTES", 2000)
    monkeypatch.setattr(store_module, "COMPACT_CHECK_EVERY", 1)

    async def check() -> None:
        vhost = VirtualHost(tmp_path, AmqpPropertiesCodec(), fsync=False)
        queue = vhost.declare_queue("q", owner=None, durable=True)
        held = []
        for round_ in range(30):
            for i in range(5):
                queue.publish(stored(f"{round_}-{i}".encode() * 10, timestamp=vhost.now_ms()))
            await asyncio.sleep(0)  # the turn's batch is written
            for _ in range(4):
                got = queue.get(no_ack=False)
                assert got is not None
                queue.ack(got)
            got = queue.get(no_ack=False)
            assert got is not None
            held.append(got)  # one unacked per round
        assert queue.store is not None and queue.store.generation > 0
        for message in held[:10]:
            queue.ack(message)
        for message in held[10:]:
            queue.reject(message, True)
        vhost.close()
        reopened = VirtualHost(tmp_path, AmqpPropertiesCodec(), fsync=False)
        reopened.load()
        again = reopened.queues["q"]
        bodies = []
        while (got := again.get(no_ack=True)) is not None:
            bodies.append((got.body.split(b"-")[0], got.redelivered))
        assert bodies == [(str(r).encode(), True) for r in range(10, 30)]
        reopened.close()

    run(check)


# -- the virtual host ------------------------------------------------------------------------


def run(coroutine_function: Any) -> Any:
    return asyncio.run(coroutine_function())


def test_definitions_and_messages_survive_a_reload(tmp_path: Path) -> None:
    async def first() -> None:
        vhost = VirtualHost(tmp_path, AmqpPropertiesCodec(), fsync=False)
        vhost.declare_exchange(
            "x",
            "topic",
            durable=True,
            auto_delete=False,
            internal=False,
            arguments={},
            passive=False,
        )
        vhost.declare_exchange(
            "t",
            "fanout",
            durable=False,
            auto_delete=False,
            internal=False,
            arguments={},
            passive=False,
        )
        vhost.declare_queue("d", owner=None, durable=True, arguments={"x-max-length": 5})
        vhost.declare_queue("transient", owner=None)
        vhost.bind_queue("d", "x", "a.*", {}, None)
        vhost.bind_queue("transient", "x", "#", {}, None)
        refused, waits = vhost.enqueue({"d"}, stored(b"kept"))
        assert not refused and len(waits) == 1
        vhost.close()

    async def second() -> None:
        vhost = VirtualHost(tmp_path, AmqpPropertiesCodec(), fsync=False)
        vhost.load()
        assert set(vhost.queues) == {"d"}
        assert "x" in vhost.router.exchanges and "t" not in vhost.router.exchanges
        assert vhost.queues["d"].raw_arguments == {"x-max-length": 5}
        assert vhost.router.route("x", "a.b") == {"d"}
        got = vhost.queues["d"].get(no_ack=True)
        assert got is not None and got.body == b"kept"
        vhost.close()

    run(first)
    run(second)


def test_declare_rules(tmp_path: Path) -> None:
    async def check() -> None:
        vhost = VirtualHost(tmp_path, AmqpPropertiesCodec(), fsync=False)
        owner, other = object(), object()
        named = vhost.declare_queue("", owner=owner, exclusive=True)
        assert named.name.startswith("amq.gen-")
        with pytest.raises(ResourceLocked):
            vhost.declare_queue(named.name, owner=other, passive=True)
        with pytest.raises(QueueAccessRefused):
            vhost.declare_queue("amq.mine", owner=owner)
        with pytest.raises(QueueNotFound):
            vhost.declare_queue("missing", owner=owner, passive=True)
        vhost.declare_queue("q", owner=owner, arguments={"x-message-ttl": 5})
        with pytest.raises(QueuePreconditionFailed):
            vhost.declare_queue("q", owner=owner, arguments={"x-message-ttl": 6})
        with pytest.raises(QueuePreconditionFailed):
            vhost.declare_queue("q", owner=owner, durable=True, arguments={"x-message-ttl": 5})
        vhost.owner_gone(owner)
        assert named.name not in vhost.queues and "q" in vhost.queues
        vhost.close()

    run(check)


def _props(**kwargs: Any) -> bytes:
    return b"".join(pika.spec.BasicProperties(**kwargs).encode())


def _decoded(raw: bytes) -> pika.spec.BasicProperties:
    properties = pika.spec.BasicProperties()
    properties.decode(raw)
    return properties


def test_dead_letter_headers_follow_rabbitmq() -> None:
    codec = AmqpPropertiesCodec()
    raw = _props(headers={"app": "kept"}, expiration="50")
    first, deaths = codec.dead_letter(
        raw, queue="q1", reason="expired", exchange="ex", routing_keys=["k"], time_s=1_700_000_000
    )
    assert deaths == [("q1", "expired")]
    properties = _decoded(first)
    assert properties.expiration is None and properties.headers["app"] == "kept"
    [entry] = properties.headers["x-death"]
    assert entry["count"] == 1 and entry["original-expiration"] == "50"
    assert entry["time"] == datetime.datetime.fromtimestamp(1_700_000_000, datetime.UTC)
    second, _ = codec.dead_letter(
        first, queue="q2", reason="rejected", exchange="dlx", routing_keys=["k"], time_s=1
    )
    third, deaths = codec.dead_letter(
        second, queue="q1", reason="expired", exchange="dlx", routing_keys=["k"], time_s=2
    )
    assert deaths == [("q1", "expired"), ("q2", "rejected")]
    headers = _decoded(third).headers
    assert [d["count"] for d in headers["x-death"]] == [2, 1]
    assert headers["x-first-death-queue"] == "q1" and headers["x-last-death-queue"] == "q1"
    assert headers["x-last-death-exchange"] == "dlx"


def test_dead_letter_cycle_without_rejection_is_dropped(tmp_path: Path) -> None:
    async def check() -> None:
        vhost = VirtualHost(tmp_path, AmqpPropertiesCodec(), fsync=False)
        dl = {"x-dead-letter-exchange": "", "x-message-ttl": 0}
        a = vhost.declare_queue("a", owner=None, arguments={**dl, "x-dead-letter-routing-key": "b"})
        vhost.declare_queue("b", owner=None, arguments={**dl, "x-dead-letter-routing-key": "a"})
        message = QueuedMessage("", "a", _props(), b"loop", timestamp=vhost.now_ms() - 10)
        a.publish(message)
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert vhost.queues["a"].ready_count == 0 and vhost.queues["b"].ready_count == 0
        vhost.close()

    run(check)


def test_scan_publish_reads_only_what_it_needs() -> None:
    info = scan_publish(
        _props(
            content_type="t",
            headers={"big": "x" * 1000},
            delivery_mode=2,
            priority=7,
            reply_to="r",
            expiration="100",
            user_id="guest",
        )
    )
    assert (info.delivery_mode, info.priority, info.reply_to, info.expiration, info.user_id) == (
        2,
        7,
        "r",
        "100",
        "guest",
    )
    plain = scan_publish(_props())
    assert (plain.delivery_mode, plain.expiration) == (0, None)
