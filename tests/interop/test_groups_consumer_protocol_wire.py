"""KIP-848 requests a well-behaved client would not send, on the wire: Kafka's error codes.

ConsumerGroupHeartbeat from unknown members, with fenced epochs, invalid fields or an unknown
assignor; OffsetCommit v9 with stale member epochs; a static instance id still in use; group
ids used by the other protocol (both ways); long group ids; and a heartbeat storm of 200
members. Each gets Kafka's error code and the broker keeps serving.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from firth.testing import running_broker
from tests.interop.conftest_broker import RawClient
from tests.interop.test_groups_clients import new_topic
from tests.interop.test_groups_durability import join, join_fields

HEARTBEAT, DESCRIBE, OFFSET_COMMIT, OFFSET_FETCH, API_VERSIONS = 68, 69, 8, 9, 18
DESCRIBE_GROUPS, LIST_GROUPS = 15, 16
V = 1

NONE, INCONSISTENT_GROUP_PROTOCOL, INVALID_GROUP_ID, UNKNOWN_MEMBER_ID = 0, 23, 24, 25
INVALID_REQUEST, GROUP_ID_NOT_FOUND, FENCED_INSTANCE_ID = 42, 69, 82
FENCED_MEMBER_EPOCH, UNRELEASED_INSTANCE_ID, UNSUPPORTED_ASSIGNOR = 110, 111, 112
STALE_MEMBER_EPOCH = 113


@pytest.fixture(scope="module")
def broker() -> Iterator[Any]:
    with running_broker(fsync=False, group_consumer_heartbeat_interval_ms=250) as running:
        yield running


def beat(
    client: RawClient,
    group: str,
    member: str,
    epoch: int,
    topics: list[str] | None = None,
    owned: list[tuple[uuid.UUID, list[int]]] | None = None,
    **extra: Any,
) -> Any:
    fields: dict[str, Any] = {
        "group_id": group,
        "member_id": member,
        "member_epoch": epoch,
        "rebalance_timeout": extra.pop("rebalance_timeout", 30_000 if epoch == 0 else -1),
        "subscribed_topic_names": topics,
        "topic_partitions": (
            None if owned is None else [{"topic_id": t, "partitions": p} for t, p in owned]
        ),
        **extra,
    }
    return client.request(HEARTBEAT, V, fields)


def joined(client: RawClient, group: str, member: str, topic: str, **extra: Any) -> Any:
    answer = beat(client, group, member, 0, [topic], [], **extra)
    assert answer.error_code == NONE, answer
    assert answer.member_id == member and answer.member_epoch > 0
    assert answer.heartbeat_interval.total_seconds() == 0.25
    return answer


def partitions(answer: Any) -> list[int]:
    return sorted(p for t in answer.assignment.topic_partitions for p in t.partitions)


def commit(client: RawClient, group: str, member: str, epoch: int, topic: str) -> int:
    answer = client.request(
        OFFSET_COMMIT,
        9,
        {
            "group_id": group,
            "generation_id_or_member_epoch": epoch,
            "member_id": member,
            "group_instance_id": None,
            "topics": [
                {"name": topic, "partitions": [{"partition_index": 0, "committed_offset": 1}]}
            ],
        },
    )
    return int(answer.topics[0].partitions[0].error_code)


def fetch(
    client: RawClient, group: str, member: str | None, epoch: int, topic: str
) -> tuple[int, int]:
    """OffsetFetch v9 of partition 0: (the group's error code, the committed offset)."""
    answer = client.request(
        OFFSET_FETCH,
        9,
        {
            "groups": [
                {
                    "group_id": group,
                    "member_id": member,
                    "member_epoch": epoch,
                    "topics": [{"name": topic, "partition_indexes": [0]}],
                }
            ],
            "require_stable": False,
        },
    )
    (result,) = answer.groups
    return int(result.error_code), result.topics[0].partitions[0].committed_offset


def test_unknown_members_fenced_epochs_and_stale_commits(broker: Any) -> None:
    topic = new_topic(broker.bootstrap, partitions=2)
    with RawClient(broker.bootstrap) as client:
        assert partitions(joined(client, "wire", "m0", topic)) == [0, 1]
        first = joined(client, "wire", "m1", topic)
        # m0 still holds both partitions: m1 gets its share once m0 has revoked it.
        assert partitions(first) == []
        epoch = first.member_epoch
        assert epoch == 2
        assert beat(client, "wire", "ghost", epoch).error_code == UNKNOWN_MEMBER_ID
        assert beat(client, "wire", "m1", epoch + 5).error_code == FENCED_MEMBER_EPOCH
        assert beat(client, "wire", "m1", epoch - 1).error_code == FENCED_MEMBER_EPOCH
        steady = beat(client, "wire", "m1", epoch)
        assert (steady.error_code, steady.member_epoch, steady.assignment) == (NONE, epoch, None)
        # Unknown group, non-zero epoch: the coordinator does not know the member.
        assert beat(client, "nowhere", "m1", 3).error_code == UNKNOWN_MEMBER_ID
        # OffsetCommit v9 carries the member epoch.
        assert commit(client, "wire", "m1", epoch, topic) == NONE
        assert commit(client, "wire", "m1", epoch - 1, topic) == STALE_MEMBER_EPOCH
        assert commit(client, "wire", "m1", epoch + 1, topic) == STALE_MEMBER_EPOCH
        assert commit(client, "wire", "ghost", epoch, topic) == UNKNOWN_MEMBER_ID
        assert commit(client, "wire", "", -1, topic) == UNKNOWN_MEMBER_ID  # group has members
        # OffsetFetch v9 names the member too; without a member it is an admin's fetch.
        assert fetch(client, "wire", "m1", epoch, topic) == (NONE, 1)
        assert fetch(client, "wire", "m1", epoch + 1, topic) == (STALE_MEMBER_EPOCH, -1)
        assert fetch(client, "wire", "ghost", epoch, topic) == (UNKNOWN_MEMBER_ID, -1)
        assert fetch(client, "wire", None, -1, topic) == (NONE, 1)
        # Leaving: epoch -1 answers -1; the member is then unknown.
        for member in ("m0", "m1"):
            left = beat(client, "wire", member, -1)
            assert (left.error_code, left.member_epoch) == (NONE, -1)
        assert beat(client, "wire", "m1", epoch).error_code == UNKNOWN_MEMBER_ID
        assert commit(client, "wire", "", -1, topic) == NONE  # an empty group takes admin commits


def test_invalid_heartbeats(broker: Any) -> None:
    topic = new_topic(broker.bootstrap, partitions=1)
    with RawClient(broker.bootstrap) as client:
        cases = [
            beat(client, "invalid", "m", 0, None, []),  # no subscription when joining
            beat(client, "invalid", "m", 0, [topic], None),  # owned partitions must be []
            beat(client, "invalid", "m", 0, [topic], [], rebalance_timeout=-1),
            beat(client, "invalid", "", 0, [topic], []),  # v1: the client names itself
            beat(client, "invalid", "m", -3, [topic], []),
            beat(client, "invalid", "m", 0, [topic], [], instance_id=""),
            beat(client, "invalid", "m", -2),  # a static leave without an instance id
        ]
        assert [c.error_code for c in cases] == [INVALID_REQUEST] * len(cases)
        assert all(c.error_message for c in cases)
        unknown = beat(client, "invalid", "m", 0, [topic], [], server_assignor="sticky")
        assert unknown.error_code == UNSUPPORTED_ASSIGNOR
        assert beat(client, "", "m", 0, [topic], []).error_code == INVALID_GROUP_ID
        assert client.request(API_VERSIONS, 0, {}).error_code == NONE


def test_static_members_instance_ids(broker: Any) -> None:
    topic = new_topic(broker.bootstrap, partitions=2)
    with RawClient(broker.bootstrap) as client:
        first = joined(client, "static-wire", "s1", topic, instance_id="i1")
        taken = beat(client, "static-wire", "s2", 0, [topic], [], instance_id="i1")
        assert taken.error_code == UNRELEASED_INSTANCE_ID
        impostor = beat(client, "static-wire", "s2", first.member_epoch, instance_id="i1")
        assert impostor.error_code == FENCED_INSTANCE_ID
        away = beat(client, "static-wire", "s1", -2, instance_id="i1")
        assert (away.error_code, away.member_epoch) == (NONE, -2)
        back = joined(client, "static-wire", "s2", topic, instance_id="i1")
        assert partitions(back) == partitions(first) == [0, 1]
        assert back.member_epoch == first.member_epoch  # no rebalance: the same epoch
        assert beat(client, "static-wire", "s1", first.member_epoch).error_code == UNKNOWN_MEMBER_ID


def test_a_group_id_speaks_one_protocol(broker: Any) -> None:
    topic = new_topic(broker.bootstrap, partitions=1)
    with RawClient(broker.bootstrap) as client:
        assert join(client, "classic-only").error_code == NONE
        refused = beat(client, "classic-only", "m", 0, [topic], [])
        assert refused.error_code == GROUP_ID_NOT_FOUND
        described = client.request(DESCRIBE, 0, {"group_ids": ["classic-only", "none"]})
        assert [g.error_code for g in described.groups] == [GROUP_ID_NOT_FOUND] * 2
        joined(client, "consumer-only", "m", topic)
        classic = client.request(11, 5, join_fields("consumer-only"))
        assert classic.error_code == INCONSISTENT_GROUP_PROTOCOL
        (group,) = client.request(DESCRIBE, 1, {"group_ids": ["consumer-only"]}).groups
        assert (group.error_code, group.group_state, group.assignor_name) == (
            NONE,
            "Stable",
            "uniform",
        )
        (member,) = group.members
        assert member.member_id == "m" and member.member_type == 1
        # The classic DescribeGroups does not describe it (Kafka: Dead; from v6 an error).
        (classic,) = client.request(DESCRIBE_GROUPS, 5, {"groups": ["consumer-only"]}).groups
        assert (classic.error_code, classic.group_state) == (NONE, "Dead")
        (v6,) = client.request(DESCRIBE_GROUPS, 6, {"groups": ["consumer-only"]}).groups
        assert v6.error_code == GROUP_ID_NOT_FOUND
        assert [p.topic_name for p in member.assignment.topic_partitions] == [topic]
        listed = client.request(LIST_GROUPS, 5, {"states_filter": [], "types_filter": []})
        types = {g.group_id: g.group_type for g in listed.groups}
        assert types["consumer-only"] == "consumer" and types["classic-only"] == "classic"
        # Once empty, a consumer group's id may be taken over by the classic protocol.
        assert beat(client, "consumer-only", "m", -1).error_code == NONE
        assert join(client, "consumer-only").error_code == NONE


def test_long_group_ids(broker: Any) -> None:
    topic = new_topic(broker.bootstrap, partitions=1)
    with RawClient(broker.bootstrap) as client:
        joined(client, "k" * 10_000, "m", topic)
        assert beat(client, "k" * 40_000, "m", 0, [topic], []).error_code == INVALID_GROUP_ID


def test_heartbeat_storm_of_200_members(broker: Any) -> None:
    topic = new_topic(broker.bootstrap, partitions=6)
    clients = [RawClient(broker.bootstrap, timeout=60) for _ in range(20)]
    try:
        answers = [joined(clients[i % 20], "hb-storm", f"m{i}", topic) for i in range(200)]
        epochs = {a.member_id: a.member_epoch for a in answers}
        # Members that were assigned partitions before later joins must give some back first;
        # after everyone acknowledges, six members own one partition each.
        owned: dict[str, list[int]] = {a.member_id: partitions(a) for a in answers}
        for _ in range(3):
            for i in range(200):
                member = f"m{i}"
                answer = beat(
                    clients[i % 20],
                    "hb-storm",
                    member,
                    epochs[member],
                    owned=[(answers[0].assignment.topic_partitions[0].topic_id, owned[member])]
                    if answers[0].assignment.topic_partitions
                    else [],
                )
                assert answer.error_code == NONE
                epochs[member] = answer.member_epoch
                if answer.assignment is not None:
                    owned[member] = partitions(answer)
        holders = sorted(p for parts in owned.values() for p in parts)
        assert holders == list(range(6))
        with RawClient(broker.bootstrap) as probe:
            assert probe.request(API_VERSIONS, 0, {}).error_code == NONE
    finally:
        for client in clients:
            client.close()
