"""The outbox relay against a Firth broker (firth.testing.running_broker), on both backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, TopicPartition

from firth.eventsourcing import EventStore, LeaseHeld, NewEvent
from firth.eventsourcing.outbox import OutboxRelay, header, partition_for
from firth.testing import running_broker


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    with running_broker(fsync=False) as broker:
        yield broker.bootstrap


_topics = iter(range(1, 10_000))


@pytest.fixture
def topic() -> str:
    return f"outbox-{os.getpid()}-{next(_topics)}"


def high_watermarks(bootstrap: str, topic: str, partitions: int = 1) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "probe"})
    try:
        return [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        ]
    finally:
        consumer.close()


def read_topic(bootstrap: str, topic: str, partitions: int = 1) -> dict[int, list]:  # type: ignore[type-arg]
    """Every record of every partition, in offset order."""
    ends = high_watermarks(bootstrap, topic, partitions)
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False}
    )
    records: dict[int, list] = {p: [] for p in range(partitions)}  # type: ignore[type-arg]
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        deadline = time.monotonic() + 60
        while any(len(records[p]) < ends[p] for p in range(partitions)):
            assert time.monotonic() < deadline, "could not read the whole topic"
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            records[message.partition()].append(message)
    finally:
        consumer.close()
    return records


def positions(messages: list) -> list[int]:  # type: ignore[type-arg]
    return [int(header(m.headers(), "position")) for m in messages]  # type: ignore[arg-type]


def fill(store: EventStore, count: int, streams: int = 7) -> None:
    done = 0
    while done < count:
        size = min(250, count - done)
        store.append(
            f"order-{done % streams}", [NewEvent("Placed", {"n": done + i}) for i in range(size)]
        )
        done += size


def test_relay_publishes_every_event_in_global_order(
    store: EventStore, bootstrap: str, topic: str
) -> None:
    store.append("account-1", [NewEvent("Opened", {"owner": "Ann"}, {"correlation": "c1"})])
    fill(store, 300)
    stats = OutboxRelay(store, bootstrap, topic).run(until_caught_up=True)
    assert stats.published == 301 and stats.last_position == 301
    (messages,) = read_topic(bootstrap, topic).values()
    assert positions(messages) == list(range(1, 302))
    stored = list(store.read_all())
    for message, event in zip(messages, stored, strict=True):
        assert message.key() == event.stream_id.encode()
        assert json.loads(message.value()) == event.data
        assert header(message.headers(), "event-type") == event.type.encode()
        assert header(message.headers(), "event-id") == str(event.event_id).encode()
        assert header(message.headers(), "stream-version") == str(event.version).encode()
    assert json.loads(header(messages[0].headers(), "metadata") or b"") == {"correlation": "c1"}
    assert store.get_checkpoint(f"outbox:{topic}") == 301
    # A second run publishes nothing again.
    assert OutboxRelay(store, bootstrap, topic).run(until_caught_up=True).published == 0
    assert high_watermarks(bootstrap, topic) == [301]


def test_relay_resumes_per_partition_on_a_multi_partition_topic(
    store: EventStore, bootstrap: str, topic: str
) -> None:
    fill(store, 200, streams=11)
    OutboxRelay(store, bootstrap, topic, partitions=3).run(until_caught_up=True)
    fill(store, 200, streams=11)
    second = OutboxRelay(store, bootstrap, topic).run(until_caught_up=True)
    assert second.published == 200
    assert second.skipped > 0  # events between the partitions' ends were re-read, not re-sent
    records = read_topic(bootstrap, topic, 3)
    seen = sorted(p for messages in records.values() for p in positions(messages))
    assert seen == list(range(1, 401))
    by_position = {e.position: e for e in store.read_all()}
    for partition, messages in records.items():
        assert positions(messages) == sorted(positions(messages))
        assert all(partition_for(m.key().decode(), 3) == partition for m in messages)
        assert all(
            by_position[p].stream_id == m.key().decode()
            for p, m in zip(positions(messages), messages, strict=True)
        )


def test_only_one_relay_at_a_time(store: EventStore, bootstrap: str, topic: str) -> None:
    fill(store, 10)
    with EventStore.open(store.url) as other, other.acquire_lease(f"outbox:{topic}"):
        with pytest.raises(LeaseHeld):
            OutboxRelay(store, bootstrap, topic).run(until_caught_up=True)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "firth.eventsourcing.cli",
                "relay",
                "--store",
                store.url,
                "--to",
                bootstrap,
                "--topic",
                topic,
                "--until-caught-up",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1
        assert "lease" in result.stderr and "Traceback" not in result.stderr
    assert OutboxRelay(store, bootstrap, topic).run(until_caught_up=True).published == 10


def start_relay(url: str, bootstrap: str, topic: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "firth.eventsourcing.cli",
            "relay",
            "--store",
            url,
            "--to",
            bootstrap,
            "--topic",
            topic,
            "--standby",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for_watermark(probe: Consumer, topic: str, at_least: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            high = probe.get_watermark_offsets(TopicPartition(topic, 0), timeout=5)[1]
        except Exception:  # the relay has not created the topic yet
            high = 0
        if high >= at_least:
            return int(high)
        assert time.monotonic() < deadline, (
            f"the topic never reached {at_least} records (at {high})"
        )
        time.sleep(0.005)


def test_sigkill_mid_publish_then_restart_publishes_each_event_once(
    store: EventStore, bootstrap: str, topic: str
) -> None:
    fill(store, 6000)
    stop_writing = threading.Event()

    def writer() -> None:  # keeps appending while the relays run and die
        with EventStore.open(store.url) as own:
            batch = 0
            while not stop_writing.is_set():
                own.append(
                    f"live-{batch % 5}", [NewEvent("Live", {"b": batch, "i": i}) for i in range(10)]
                )
                batch += 1

    live = threading.Thread(target=writer)
    live.start()
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": "probe"})
    killed = []
    try:
        for threshold in (1500, 4500):
            relay = start_relay(store.url, bootstrap, topic)
            try:
                wait_for_watermark(probe, topic, threshold)
            finally:
                relay.send_signal(signal.SIGKILL)
                relay.wait(10)
            killed.append(
                (
                    probe.get_watermark_offsets(TopicPartition(topic, 0), timeout=5)[1],
                    store.head_position(),
                )
            )
    finally:
        stop_writing.set()
        live.join(60)
        probe.close()
    for published, stored in killed:
        assert published < stored, "the relay had published everything before it was killed"
    total = store.head_position()
    assert total > 6000
    final = start_relay(store.url, bootstrap, topic, "--until-caught-up")
    assert final.wait(120) == 0
    (messages,) = read_topic(bootstrap, topic).values()
    assert positions(messages) == list(range(1, total + 1))
    stored_ids = {e.position: e.event_id for e in store.read_all()}
    assert all(
        header(m.headers(), "event-id") == str(stored_ids[p]).encode()
        for p, m in zip(positions(messages), messages, strict=True)
    )


def test_unreachable_kafka_is_a_one_line_error(sqlite_url: str) -> None:
    with EventStore.open(sqlite_url) as store:
        fill(store, 3)
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "firth.eventsourcing.cli",
            "relay",
            "--store",
            sqlite_url,
            "--to",
            "127.0.0.1:1",
            "--topic",
            "t",
            "--timeout",
            "2",
            "--until-caught-up",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "relay to t at 127.0.0.1:1" in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 30


@pytest.mark.postgres
def test_relay_stops_when_its_postgresql_lease_is_lost(
    pg_url: str, bootstrap: str, topic: str
) -> None:
    import psycopg

    from firth.eventsourcing import LeaseLost

    with EventStore.open(pg_url) as store:
        fill(store, 5)
        relay = OutboxRelay(store, bootstrap, topic)
        outcome: list[BaseException | None] = []

        def run() -> None:
            try:
                relay.run(threading.Event())
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        with psycopg.connect(pg_url, autocommit=True) as admin:
            deadline = time.monotonic() + 30
            while relay.stats.last_position < 5:
                assert time.monotonic() < deadline and thread.is_alive(), "the relay did not start"
                time.sleep(0.01)
            (terminated,) = admin.execute(
                "SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.pid <> pg_backend_pid()"
            ).fetchone()
            assert terminated == 1
        thread.join(30)
        assert not thread.is_alive()
        assert isinstance(outcome[0], LeaseLost)
