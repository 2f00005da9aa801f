"""Consumer groups judged by the stock clients: confluent-kafka, kafka-python and aiokafka.

Every group member is its own process (the same client library in each), started from this
module's `member_main` and reporting what happens to it as JSON lines on stdout: assignments,
revocations and each message it processed (before committing it). The tests read those reports
to check how partitions were spread, that nothing was lost and what was delivered twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firth.testing import running_broker
from tests.interop.conftest_broker import wait_for

CLIENTS = ["confluent", "kafka-python", "aiokafka"]
SESSION_MS = 3000
HEARTBEAT_MS = 300
TOPIC_PARTITIONS = 6
ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- the member process


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"e": event, **fields}), flush=True)


def incremental(cfg: dict[str, Any]) -> bool:
    """Does the member get partitions added and taken away (rather than all replaced)?"""
    return cfg["assignor"] == "cooperative-sticky" or cfg["client"] == "confluent-consumer"


def _run_confluent(cfg: dict[str, Any], stopping: threading.Event) -> None:
    from confluent_kafka import Consumer

    conf = {
        "bootstrap.servers": cfg["bootstrap"],
        "group.id": cfg["group"],
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    if cfg["client"] == "confluent-consumer":
        # KIP-848: the coordinator sets session timeout and heartbeat interval and assigns.
        conf["group.protocol"] = "consumer"
        if cfg["assignor"] is not None:
            conf["group.remote.assignor"] = cfg["assignor"]
    else:
        conf["session.timeout.ms"] = cfg["session_ms"]
        conf["heartbeat.interval.ms"] = HEARTBEAT_MS
        conf["partition.assignment.strategy"] = cfg["assignor"]
    if cfg.get("instance"):
        conf["group.instance.id"] = cfg["instance"]
    consumer = Consumer(conf)

    def on_assign(c, partitions):  # type: ignore[no-untyped-def]
        _emit("assigned", p=[tp.partition for tp in partitions])
        if incremental(cfg):
            c.incremental_assign(partitions)
        else:
            c.assign(partitions)

    def on_revoke(c, partitions):  # type: ignore[no-untyped-def]
        _emit("revoked", p=[tp.partition for tp in partitions])
        if incremental(cfg):
            c.incremental_unassign(partitions)
        else:
            c.unassign()

    consumer.subscribe([cfg["topic"]], on_assign=on_assign, on_revoke=on_revoke)
    _emit("started")
    while not stopping.is_set():
        msg = consumer.poll(0.1)
        if msg is not None and msg.error():
            error = msg.error()
            _emit("error", name=error.name(), text=error.str())
        if msg is None or msg.error():
            continue
        _emit("msg", p=msg.partition(), o=msg.offset())
        time.sleep(cfg["work_s"])
        consumer.commit(message=msg, asynchronous=False)
    consumer.close()


def _run_kafka_python(cfg: dict[str, Any], stopping: threading.Event) -> None:
    from kafka import ConsumerRebalanceListener, KafkaConsumer

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):  # type: ignore[no-untyped-def]
            _emit("revoked", p=[tp.partition for tp in revoked])

        def on_partitions_assigned(self, assigned):  # type: ignore[no-untyped-def]
            _emit("assigned", p=[tp.partition for tp in assigned])

    extra = {"group_instance_id": cfg["instance"]} if cfg.get("instance") else {}
    consumer = KafkaConsumer(
        bootstrap_servers=cfg["bootstrap"],
        group_id=cfg["group"],
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=cfg["session_ms"],
        heartbeat_interval_ms=HEARTBEAT_MS,
        **extra,
    )
    consumer.subscribe([cfg["topic"]], listener=Listener())
    _emit("started")
    while not stopping.is_set():
        # Not shorter: kafka-python 3.0.12 loses a rebalance it was leading when poll() times
        # out while its JoinGroup is in flight (the join task completes in the background and
        # no later poll applies its assignment), against any broker.
        batches = consumer.poll(timeout_ms=1000)
        for records in batches.values():
            for record in records:
                _emit("msg", p=record.partition, o=record.offset)
                time.sleep(cfg["work_s"])
        if batches:
            consumer.commit()
    consumer.close()


def _run_aiokafka(cfg: dict[str, Any], stopping: threading.Event) -> None:
    import asyncio

    from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener

    class Listener(ConsumerRebalanceListener):
        async def on_partitions_revoked(self, revoked):  # type: ignore[no-untyped-def]
            _emit("revoked", p=[tp.partition for tp in revoked])

        async def on_partitions_assigned(self, assigned):  # type: ignore[no-untyped-def]
            _emit("assigned", p=[tp.partition for tp in assigned])

    async def main() -> None:
        extra = {"group_instance_id": cfg["instance"]} if cfg.get("instance") else {}
        consumer = AIOKafkaConsumer(
            bootstrap_servers=cfg["bootstrap"],
            group_id=cfg["group"],
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=cfg["session_ms"],
            heartbeat_interval_ms=HEARTBEAT_MS,
            **extra,
        )
        await consumer.start()
        consumer.subscribe([cfg["topic"]], listener=Listener())
        _emit("started")
        while not stopping.is_set():
            batches = await consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for record in records:
                    _emit("msg", p=record.partition, o=record.offset)
                    await asyncio.sleep(cfg["work_s"])
            if batches:
                await consumer.commit()
        await consumer.stop()

    asyncio.run(main())


def member_main() -> None:
    """Entry point of a member process: one JSON config argument."""
    cfg = json.loads(sys.argv[1])
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if os.environ.get("GROUPS_MEMBER_DEBUG"):
        logging.getLogger("kafka.coordinator").setLevel(logging.DEBUG)
        logging.getLogger("kafka.consumer").setLevel(logging.DEBUG)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    runner = {
        "confluent": _run_confluent,
        "confluent-consumer": _run_confluent,
        "kafka-python": _run_kafka_python,
        "aiokafka": _run_aiokafka,
    }[cfg["client"]]
    runner(cfg, stopping)
    _emit("closed")


# ---------------------------------------------------------------- the test side


class Member:
    """A member process and the events it reported."""

    def __init__(self, **cfg: Any) -> None:
        self.cfg = cfg
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the member)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from tests.interop.test_groups_clients import member_main; member_main()",
                json.dumps(cfg),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            event["t"] = time.monotonic()
            with self.lock:
                self.events.append(event)

    def report(self) -> str:
        """What the member said on stderr and its last events, for a failing test's output."""
        self.stderr.seek(0)
        log = self.stderr.read().decode(errors="replace").splitlines()[-60:]
        events = [e for e in self.snapshot() if e["e"] != "msg"][-10:]
        return f"member {self.cfg}: {len(self.consumed())} consumed, events {events}\n" + "\n".join(
            log
        )

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.events)

    def assignment(self) -> set[int]:
        owned: set[int] = set()
        eager = not incremental(self.cfg)
        for event in self.snapshot():
            if event["e"] == "assigned":
                if eager:
                    owned = set(event["p"])
                else:
                    owned |= set(event["p"])
            elif event["e"] == "revoked":
                owned -= set(event["p"])
        return owned

    def consumed(self) -> list[tuple[int, int]]:
        return [(e["p"], e["o"]) for e in self.snapshot() if e["e"] == "msg"]

    def membership_events_since(self, moment: float) -> list[dict[str, Any]]:
        return [e for e in self.snapshot() if e["e"] in ("assigned", "revoked") and e["t"] > moment]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="module")
def broker() -> Iterator[Any]:
    with running_broker(fsync=False, group_initial_rebalance_delay_ms=300) as running:
        yield running


def member_pool() -> Iterator[list[Member]]:
    """Members a test starts; stopped (and their reports printed) when it ends."""
    started: list[Member] = []
    yield started
    for member in started:
        member.stop()
        print(member.report())  # shown only when the test fails


members = pytest.fixture(member_pool, name="members")


_topic_counter = iter(range(10**6))


def new_topic(bootstrap: str, partitions: int = TOPIC_PARTITIONS) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"groups-{os.getpid()}-{next(_topic_counter)}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(15)
    return name


def produce(
    bootstrap: str, topic: str, per_partition: int, partitions: int = TOPIC_PARTITIONS
) -> int:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(per_partition):
        for p in range(partitions):
            producer.produce(topic, value=b"m%d" % i, partition=p)
    assert producer.flush(30) == 0
    return per_partition * partitions


def start(
    members: list[Member],
    client: str,
    bootstrap: str,
    topic: str,
    group: str,
    *,
    assignor: str | None = "range",
    instance: str | None = None,
    session_ms: int = SESSION_MS,
    work_s: float = 0.0,
) -> Member:
    member = Member(
        client=client,
        bootstrap=bootstrap,
        topic=topic,
        group=group,
        assignor=assignor,
        instance=instance,
        session_ms=session_ms,
        work_s=work_s,
    )
    members.append(member)
    return member


def spread(group_members: list[Member]) -> list[set[int]] | None:
    """Each member's partitions, once every member has some and together they cover the topic
    without overlap; else None (a member still starting up owns nothing yet)."""
    owned = [m.assignment() for m in group_members]
    union = set().union(*owned)
    if (
        all(owned)
        and union == set(range(TOPIC_PARTITIONS))
        and sum(len(o) for o in owned) == TOPIC_PARTITIONS
    ):
        return owned
    return None


def settled_spread(
    group_members: list[Member], timeout: float, quiet_s: float = 1.5
) -> list[set[int]]:
    """The spread once it is complete and no member saw a membership event for `quiet_s`."""

    def check() -> list[set[int]] | None:
        owned = spread(group_members)
        if owned is None:
            return None
        last = max((e["t"] for m in group_members for e in m.membership_events_since(0)), default=0)
        return owned if time.monotonic() - last > quiet_s else None

    return wait_for(check, timeout, "a complete, quiet partition spread")  # type: ignore[no-any-return]


# ---------------------------------------------------------------- tests


def each_message_consumed_once_by_its_owner(
    trio: list[Member], owned: list[set[int]], produced: int
) -> None:
    """Every produced message is consumed exactly once, each by the member owning its
    partition in `owned` (the spread the group settled on)."""
    wait_for(lambda: sum(len(m.consumed()) for m in trio) >= produced, 60, "every message consumed")
    consumed = Counter(pair for m in trio for pair in m.consumed())
    assert len(consumed) == produced
    assert set(consumed.values()) == {1}
    for member, partitions in zip(trio, owned, strict=True):
        assert {p for p, _ in member.consumed()} <= partitions


def kill_first_and_count(
    trio: list[Member], produced: int, session_s: float, label: str, record_property: Any
) -> float:
    """SIGKILL the first member mid-stream, wait until the others own every partition and
    every message was consumed by someone; assert nothing was lost and only what the victim
    had not committed came twice. Returns the seconds from the kill to the move."""
    wait_for(lambda: len(trio[0].consumed()) >= 20, 60, "the victim to be mid-stream")
    trio[0].kill()
    killed_at = time.monotonic()
    survivors = trio[1:]
    wait_for(lambda: spread(survivors), session_s + 15, "survivors to own every partition")
    moved_after = time.monotonic() - killed_at
    wait_for(
        lambda: len({pair for m in trio for pair in m.consumed()}) >= produced,
        60,
        "every message consumed by someone",
    )
    consumed = Counter(pair for m in trio for pair in m.consumed())
    redelivered = sum(consumed.values()) - len(consumed)
    record_property("redeliveries", redelivered)
    record_property("seconds_to_move", round(moved_after, 2))
    print(f"{label}: partitions moved {moved_after:.2f}s after the kill, {redelivered} redelivered")
    assert len(consumed) == produced  # nothing lost
    # Only what the victim processed but had not committed can come twice.
    assert redelivered <= len(trio[0].consumed())
    return moved_after


@pytest.mark.parametrize("client", CLIENTS)
def test_range_spreads_2_2_2_and_each_message_is_consumed_once(
    broker: Any, members: list[Member], client: str
) -> None:
    topic = new_topic(broker.bootstrap)
    group = f"spread-{client}"
    trio = [start(members, client, broker.bootstrap, topic, group) for _ in range(3)]
    owned = settled_spread(trio, 60)
    assert sorted(len(o) for o in owned) == [2, 2, 2]
    produced = produce(broker.bootstrap, topic, 50)
    each_message_consumed_once_by_its_owner(trio, owned, produced)


@pytest.mark.parametrize("client", CLIENTS)
def test_sigkilled_members_partitions_move_and_nothing_is_lost(
    broker: Any, members: list[Member], client: str, record_property: Any
) -> None:
    topic = new_topic(broker.bootstrap)
    group = f"kill-{client}"
    trio = [start(members, client, broker.bootstrap, topic, group, work_s=0.002) for _ in range(3)]
    settled_spread(trio, 60)
    produced = produce(broker.bootstrap, topic, 200)
    moved_after = kill_first_and_count(trio, produced, SESSION_MS / 1000, client, record_property)
    assert moved_after < SESSION_MS / 1000 + 10


def test_cooperative_sticky_survivors_keep_their_partitions(
    broker: Any, members: list[Member]
) -> None:
    topic = new_topic(broker.bootstrap)
    group = "coop"
    trio = [
        start(members, "confluent", broker.bootstrap, topic, group, assignor="cooperative-sticky")
        for _ in range(3)
    ]
    before = settled_spread(trio, 60)
    assert sorted(len(o) for o in before) == [2, 2, 2]
    moment = time.monotonic()
    trio[0].stop()  # a graceful leave; the survivors rebalance incrementally
    survivors = trio[1:]
    after = wait_for(lambda: spread(survivors), 30, "survivors to own every partition")
    for member, old, new in zip(survivors, before[1:], after, strict=True):
        assert old <= new
        revocations = [e for e in member.membership_events_since(moment) if e["e"] == "revoked"]
        assert all(not e["p"] for e in revocations), revocations


@pytest.mark.parametrize("client", CLIENTS)
def test_static_member_restart_gets_its_partitions_back_without_rebalance(
    broker: Any, members: list[Member], client: str
) -> None:
    topic = new_topic(broker.bootstrap)
    group = f"static-{client}"
    session_ms = 15_000
    trio = [
        start(
            members,
            client,
            broker.bootstrap,
            topic,
            group,
            instance=f"{client}-{i}",
            session_ms=session_ms,
        )
        for i in range(3)
    ]
    before = settled_spread(trio, 60)
    trio[1].kill()
    moment = time.monotonic()
    again = start(
        members,
        client,
        broker.bootstrap,
        topic,
        group,
        instance=f"{client}-1",
        session_ms=session_ms,
    )
    wait_for(lambda: again.assignment(), 30, "the restarted member's assignment")
    assert again.assignment() == before[1]
    for other in (trio[0], trio[2]):
        assert other.membership_events_since(moment) == []
    assert time.monotonic() - moment < session_ms / 1000
