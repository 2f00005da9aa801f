"""Consumer-group benchmarks (marked `bench`, excluded from the default run); each prints a row.

    python -m pytest tests/interop/test_groups_bench.py -m bench -s

- Time to join 50 members: 50 connections doing the two-step join at once, until every member
  has its SyncGroup answer.
- SIGKILL to Stable: three confluent-kafka members (session.timeout.ms 6000); one is killed; the
  time until DescribeGroups shows the other two Stable in a new generation.

The OffsetCommit rate has its own home, `bench/group_commits.py` (the broker in its own process,
requests/s and offsets/s at 1 and 10 partitions per request, broker CPU per request).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from firth.testing import running_broker
from tests.interop.conftest_broker import RawClient, wait_for
from tests.interop.test_groups_clients import Member, new_topic, settled_spread, start
from tests.interop.test_groups_durability import join_fields

pytestmark = pytest.mark.bench

JOIN_GROUP, SYNC_GROUP = 11, 14


@pytest.fixture(scope="module")
def broker() -> Iterator[Any]:
    with running_broker(fsync=True, group_initial_rebalance_delay_ms=0) as running:
        yield running


def test_time_to_join_50_members(broker: Any) -> None:
    count = 50
    clients = [RawClient(broker.bootstrap, timeout=60) for _ in range(count)]
    try:
        started = time.monotonic()
        ids = []
        for client in clients:
            client.send_raw(client.encode_request(JOIN_GROUP, 5, join_fields("bench-join")))
        for client in clients:
            ids.append(client.read_response(JOIN_GROUP, 5)[1].member_id)
        for client, member_id in zip(clients, ids, strict=True):
            client.send_raw(
                client.encode_request(JOIN_GROUP, 5, join_fields("bench-join", member_id))
            )
        answers = [client.read_response(JOIN_GROUP, 5)[1] for client in clients]
        leader = next(a for a in answers if a.members)
        for client, answer in zip(clients, answers, strict=True):
            client.send_raw(
                client.encode_request(
                    SYNC_GROUP,
                    3,
                    {
                        "group_id": "bench-join",
                        "generation_id": answer.generation_id,
                        "member_id": answer.member_id,
                        "group_instance_id": None,
                        "assignments": [
                            {"member_id": a.member_id, "assignment": b"x"} for a in answers
                        ]
                        if answer is leader
                        else [],
                    },
                )
            )
        synced = [client.read_response(SYNC_GROUP, 3)[1] for client in clients]
        elapsed = time.monotonic() - started
        assert {s.error_code for s in synced} == {0}
        print(
            f"\njoin {count} members (two-step join + sync, initial delay 0): {elapsed * 1000:.0f} ms"
        )
    finally:
        for client in clients:
            client.close()


def test_sigkill_to_stable(broker: Any) -> None:
    from confluent_kafka.admin import AdminClient

    topic = new_topic(broker.bootstrap)
    members: list[Member] = []
    try:
        trio = [
            start(members, "confluent", broker.bootstrap, topic, "bench-kill", session_ms=6000)
            for _ in range(3)
        ]
        settled_spread(trio, 60)
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})

        def stable_with_two() -> bool:
            described = admin.describe_consumer_groups(["bench-kill"])["bench-kill"].result(10)
            return described.state.name == "STABLE" and len(described.members) == 2

        trio[0].kill()
        killed = time.monotonic()
        wait_for(stable_with_two, 30, "the group Stable with two members", interval=0.05)
        elapsed = time.monotonic() - killed
        print(f"\nSIGKILL to Stable (session.timeout.ms 6000): {elapsed:.2f} s")
        assert elapsed < 6.0 + 1.0
    finally:
        for member in members:
            member.stop()
