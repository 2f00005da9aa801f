"""KIP-848 consumer groups (group.protocol=consumer) judged by confluent-kafka / librdkafka.

The same scenarios as the classic-protocol tests (test_groups_clients, test_groups_durability),
with members that are confluent-kafka processes speaking ConsumerGroupHeartbeat and the
coordinator assigning (group.remote.assignor `uniform` or `range`):

- three members over six partitions get 2/2/2 and each message is consumed by one member;
- a SIGKILLed member's partitions move to the others within the session timeout and, with
  commit-after-processing, nothing is lost;
- members that stay keep their partitions while others leave or join (incremental), and no
  partition is ever revoked from a survivor;
- a static member (group.instance.id) that stops and comes back within the session timeout
  gets its partitions back, and the others see no change;
- after a broker restart (graceful or SIGKILL) the group resumes from its committed offsets,
  whether its members are new processes or the ones that were running throughout.

`firth groups` on a consumer group is tested beside the classic one in test_groups_cli.

The session timeout and heartbeat interval are the broker's (`group_consumer_*` settings).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firth.testing import broker_process, running_broker
from tests.interop.conftest_broker import wait_for
from tests.interop.test_groups_clients import (
    TOPIC_PARTITIONS,
    Member,
    each_message_consumed_once_by_its_owner,
    kill_first_and_count,
    member_pool,
    new_topic,
    produce,
    settled_spread,
    spread,
    start,
)
from tests.interop.test_groups_durability import committed_offsets

CLIENT = "confluent-consumer"
SESSION_MS = 6000
HEARTBEAT_MS = 300
BROKER_SETTINGS: dict[str, Any] = {
    "group_consumer_session_timeout_ms": SESSION_MS,
    "group_consumer_heartbeat_interval_ms": HEARTBEAT_MS,
}

members = pytest.fixture(member_pool, name="members")


@pytest.fixture(scope="module")
def broker() -> Iterator[Any]:
    with running_broker(fsync=False, **BROKER_SETTINGS) as running:
        yield running


def trio_of(
    members: list[Member], bootstrap: str, topic: str, group: str, **kwargs: Any
) -> list[Member]:
    return [start(members, CLIENT, bootstrap, topic, group, **kwargs) for _ in range(3)]


def owners_never_overlap(group_members: list[Member]) -> None:
    """No partition was held by two members at once, judged from each member's event log.

    Events of different processes are ordered by when this process read them, which can only
    make a handover look later than it was, never earlier; so an overlap seen here is real
    unless a revocation line was read after the next owner's assignment line.
    """
    timeline = sorted(
        (e["t"], e["e"], index, p)
        for index, member in enumerate(group_members)
        for e in member.snapshot()
        if e["e"] in ("assigned", "revoked")
        for p in e["p"]
    )
    holder: dict[int, int] = {}
    for _t, event, index, partition in timeline:
        if event == "assigned":
            assert holder.get(partition, index) == index, (partition, holder, timeline)
            holder[partition] = index
        elif holder.get(partition) == index:
            del holder[partition]


# ---------------------------------------------------------------- spread and delivery


@pytest.mark.parametrize("assignor", ["uniform", "range"])
def test_three_members_get_2_2_2_and_each_message_is_consumed_once(
    broker: Any, members: list[Member], assignor: str
) -> None:
    topic = new_topic(broker.bootstrap)
    trio = trio_of(members, broker.bootstrap, topic, f"spread-{assignor}", assignor=assignor)
    owned = settled_spread(trio, 60)
    assert sorted(len(o) for o in owned) == [2, 2, 2]
    if assignor == "range":
        # Contiguous ranges, as range assigns them (uniform spreads as members arrive).
        assert sorted(sorted(o) for o in owned) == [[0, 1], [2, 3], [4, 5]]
    produced = produce(broker.bootstrap, topic, 50)
    each_message_consumed_once_by_its_owner(trio, owned, produced)
    owners_never_overlap(trio)


def test_sigkilled_members_partitions_move_and_nothing_is_lost(
    broker: Any, members: list[Member], record_property: Any
) -> None:
    topic = new_topic(broker.bootstrap)
    trio = trio_of(members, broker.bootstrap, topic, "kill", work_s=0.002)
    settled_spread(trio, 60)
    produced = produce(broker.bootstrap, topic, 200)
    moved_after = kill_first_and_count(
        trio, produced, SESSION_MS / 1000, "consumer protocol", record_property
    )
    # The session timeout, plus at most a few heartbeat intervals and this test's polling.
    assert moved_after < SESSION_MS / 1000 + 3
    owners_never_overlap(trio[1:])


# ---------------------------------------------------------------- incremental rebalances


def test_survivors_keep_their_partitions_when_members_leave_and_join(
    broker: Any, members: list[Member]
) -> None:
    topic = new_topic(broker.bootstrap)
    trio = trio_of(members, broker.bootstrap, topic, "incremental", assignor="uniform")
    before = settled_spread(trio, 60)
    assert sorted(len(o) for o in before) == [2, 2, 2]
    moment = time.monotonic()
    trio[0].stop()  # a graceful leave (epoch -1)
    survivors = trio[1:]
    after = wait_for(lambda: spread(survivors), 30, "survivors to own every partition")
    for member, old, new in zip(survivors, before[1:], after, strict=True):
        assert old <= new
        revocations = [e for e in member.membership_events_since(moment) if e["e"] == "revoked"]
        assert all(not e["p"] for e in revocations), revocations
    # A newcomer takes partitions only after their owner revoked them, and each survivor
    # gives up one partition and keeps the rest.
    settled = settled_spread(survivors, 30)
    newcomer = start(members, CLIENT, broker.bootstrap, topic, "incremental", assignor="uniform")
    group = [*survivors, newcomer]
    final = settled_spread(group, 60)
    assert sorted(len(o) for o in final) == [2, 2, 2]
    for old, new in zip(settled, final[:2], strict=True):
        assert new <= old
    owners_never_overlap(group)


# ---------------------------------------------------------------- static membership


def test_static_member_back_within_the_session_timeout_gets_its_partitions_back(
    broker: Any, members: list[Member]
) -> None:
    topic = new_topic(broker.bootstrap)
    group = "static"
    trio = [
        start(members, CLIENT, broker.bootstrap, topic, group, instance=f"static-{i}")
        for i in range(3)
    ]
    before = settled_spread(trio, 60)
    trio[1].stop()  # closing a static member leaves with epoch -2: it keeps its partitions
    moment = time.monotonic()
    again = start(members, CLIENT, broker.bootstrap, topic, group, instance="static-1")
    wait_for(lambda: again.assignment(), 30, "the restarted member's assignment")
    assert time.monotonic() - moment < SESSION_MS / 1000
    assert again.assignment() == before[1]
    for other in (trio[0], trio[2]):
        assert other.membership_events_since(moment) == []


def test_sigkilled_static_member_is_replaced_only_after_its_session_expires(
    broker: Any, members: list[Member]
) -> None:
    """As in Kafka: a new incarnation may not take an instance id whose holder never left
    (UNRELEASED_INSTANCE_ID, fatal for librdkafka); after the session timeout it may."""
    topic = new_topic(broker.bootstrap)
    group = "static-kill"
    trio = [
        start(members, CLIENT, broker.bootstrap, topic, group, instance=f"static-kill-{i}")
        for i in range(3)
    ]
    settled_spread(trio, 60)
    trio[1].kill()
    early = start(members, CLIENT, broker.bootstrap, topic, group, instance="static-kill-1")
    refusal = wait_for(
        lambda: [e for e in early.snapshot() if e["e"] == "error" and e["name"] == "_FATAL"],
        30,
        "the early incarnation's fatal error",
    )
    # librdkafka's text for UNRELEASED_INSTANCE_ID (111).
    assert "instance ID is still used by another member" in refusal[0]["text"]
    assert early.assignment() == set()
    survivors = [trio[0], trio[2]]
    wait_for(lambda: spread(survivors), SESSION_MS / 1000 + 15, "survivors to own every partition")
    late = start(members, CLIENT, broker.bootstrap, topic, group, instance="static-kill-1")
    owned = settled_spread([*survivors, late], 60)
    assert sorted(len(o) for o in owned) == [2, 2, 2]


# ---------------------------------------------------------------- broker restarts


@pytest.mark.parametrize("stop", ["graceful", "sigkill"])
def test_group_resumes_from_committed_offsets_after_broker_restart(
    tmp_path: Path, members: list[Member], stop: str
) -> None:
    with broker_process(tmp_path / "data", **BROKER_SETTINGS) as process:
        try:
            _resume_after_restart(process, members, stop)
        except AssertionError:
            print("broker log:\n" + "\n".join(process.log_text().splitlines()[-60:]))
            raise


def _resume_after_restart(process: Any, members: list[Member], stop: str) -> None:
    bootstrap = process.bootstrap
    topic = new_topic(bootstrap)
    group = f"restart-{stop}"
    first_batch = produce(bootstrap, topic, 10)
    first = start(members, CLIENT, bootstrap, topic, group)
    stays = start(members, CLIENT, bootstrap, topic, f"{group}-stays")
    for member in (first, stays):
        wait_for(lambda m=member: len(m.consumed()) >= first_batch, 60, "the first batch consumed")
    for name in (group, f"{group}-stays"):
        wait_for(
            lambda n=name: committed_offsets(bootstrap, n, topic, 6) == dict.fromkeys(range(6), 10),
            30,
            "every partition committed at offset 10",
        )
    first.stop()
    if stop == "graceful":
        assert process.terminate() == 0
    else:
        process.kill()
    process.start()
    assert committed_offsets(bootstrap, group, topic, 6) == dict.fromkeys(range(6), 10)
    produce(bootstrap, topic, 10)
    second = start(members, CLIENT, bootstrap, topic, group)
    wait_for(lambda: len(second.consumed()) >= first_batch, 60, "the second batch consumed")
    # A lost commit would start the partitions at 0: old offsets would come first.
    assert sorted(second.consumed()) == [(p, o) for p in range(6) for o in range(10, 20)]
    # The member that ran throughout rejoins (the restarted coordinator does not know it) and
    # carries on from the committed offsets: offsets 10-19 once each, nothing before again.
    wait_for(lambda: len(stays.consumed()) >= 2 * first_batch, 60, "the survivor's second batch")
    later = Counter(pair for pair in stays.consumed() if pair[1] >= 10)
    assert sorted(later) == [(p, o) for p in range(TOPIC_PARTITIONS) for o in range(10, 20)]
    assert Counter(pair for pair in stays.consumed() if pair[1] < 10).most_common(1)[0][1] == 1


def test_regex_subscription_follows_matching_topics(broker: Any) -> None:
    from confluent_kafka import Consumer
    from confluent_kafka.admin import AdminClient, NewTopic

    prefix = f"rx{time.monotonic_ns()}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for name in (f"{prefix}-a", f"{prefix}-b", f"other{prefix}"):
        admin.create_topics([NewTopic(name, 2, 1)])[name].result(15)
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": f"{prefix}-group",
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([f"^{prefix}-.*"])

        def assigned() -> set[tuple[str, int]] | None:
            consumer.poll(0.2)
            owned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
            return owned if len(owned) == 4 else None

        owned = wait_for(assigned, 30, "the matching topics' partitions")
        assert owned == {(f"{prefix}-{t}", p) for t in "ab" for p in range(2)}
    finally:
        consumer.close()
