"""Consumer groups across broker restarts, and bad input on the wire.

- The broker (a `firth serve` child process) is stopped gracefully or SIGKILLed after a group
  committed; a new member of the group, after the restart, reads only what came after the
  committed offsets, with each client library.
- Raw requests a well-behaved client would not send: unknown member ids, stale generations,
  commits to unknown topics, a 10,000-character group id, an oversized one, and a JoinGroup storm
  of 200 members; each gets Kafka's error code and the broker keeps serving.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firth.testing import broker_process, running_broker
from tests.interop.conftest_broker import RawClient, wait_for
from tests.interop.test_groups_clients import (
    CLIENTS,
    Member,
    member_pool,
    new_topic,
    produce,
    start,
)

JOIN_GROUP, SYNC_GROUP, HEARTBEAT, OFFSET_COMMIT, OFFSET_FETCH, API_VERSIONS = 11, 14, 12, 8, 9, 18

members = pytest.fixture(member_pool, name="members")


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, p) for p in range(partitions)]
    )
    result = admin.list_consumer_group_offsets([request])[group].result(15)
    return {tp.partition: tp.offset for tp in result.topic_partitions}


# ---------------------------------------------------------------- restarts


@pytest.mark.parametrize("stop", ["graceful", "sigkill"])
@pytest.mark.parametrize("client", CLIENTS)
def test_group_resumes_from_committed_offsets_after_broker_restart(
    tmp_path: Path, members: list[Member], client: str, stop: str
) -> None:
    with broker_process(tmp_path / "data", group_initial_rebalance_delay_ms=0) as broker:
        try:
            _resume_after_restart(broker, members, client, stop)
        except AssertionError:
            print("broker log:\n" + "\n".join(broker.log_text().splitlines()[-60:]))
            raise


def _resume_after_restart(broker: Any, members: list[Member], client: str, stop: str) -> None:
    topic = new_topic(broker.bootstrap)
    group = f"restart-{client}-{stop}"
    first_batch = produce(broker.bootstrap, topic, 10)
    first = start(members, client, broker.bootstrap, topic, group)
    wait_for(lambda: len(first.consumed()) >= first_batch, 60, "the first batch consumed")
    wait_for(
        lambda: committed_offsets(broker.bootstrap, group, topic, 6) == dict.fromkeys(range(6), 10),
        30,
        "every partition committed at offset 10",
    )
    first.stop()
    if stop == "graceful":
        assert broker.terminate() == 0
    else:
        broker.kill()
    broker.start()
    assert committed_offsets(broker.bootstrap, group, topic, 6) == dict.fromkeys(range(6), 10)
    produce(broker.bootstrap, topic, 10)
    second = start(members, client, broker.bootstrap, topic, group)
    wait_for(lambda: len(second.consumed()) >= first_batch, 60, "the second batch consumed")
    # A lost commit would start the partitions at 0: old offsets would come first.
    reread = [pair for pair in second.consumed() if pair[1] < 10]
    assert reread == []
    assert sorted(second.consumed()) == [(p, o) for p in range(6) for o in range(10, 20)]


# ---------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def broker() -> Iterator[Any]:
    with running_broker(fsync=False, group_initial_rebalance_delay_ms=300) as running:
        yield running


def join_fields(group: str, member_id: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "group_id": group,
        "session_timeout": 10_000,
        "rebalance_timeout": 30_000,
        "member_id": member_id,
        "group_instance_id": None,
        "protocol_type": "consumer",
        "protocols": [{"name": "range", "metadata": b"\x00\x01"}],
        **extra,
    }


def join(client: RawClient, group: str, version: int = 5) -> Any:
    """The two-step join of a lone member; the JoinGroup response of the second step."""
    first = client.request(JOIN_GROUP, version, join_fields(group))
    assert first.error_code == 79  # MEMBER_ID_REQUIRED
    return client.request(JOIN_GROUP, version, join_fields(group, first.member_id))


def test_unknown_members_stale_generations_and_unknown_topics(broker: Any) -> None:
    topic = new_topic(broker.bootstrap, partitions=1)
    with RawClient(broker.bootstrap) as client:
        ghost = client.request(JOIN_GROUP, 5, join_fields("bad-input", "ghost"))
        assert ghost.error_code == 25  # UNKNOWN_MEMBER_ID
        joined = join(client, "bad-input")
        assert joined.error_code == 0 and joined.generation_id == 1
        member = joined.member_id
        synced = client.request(
            SYNC_GROUP,
            3,
            {
                "group_id": "bad-input",
                "generation_id": 1,
                "member_id": member,
                "group_instance_id": None,
                "assignments": [{"member_id": member, "assignment": b"mine"}],
            },
        )
        assert synced.error_code == 0 and synced.assignment == b"mine"
        stale = {"group_id": "bad-input", "generation_id": 0, "member_id": member}
        assert client.request(HEARTBEAT, 1, stale).error_code == 22  # ILLEGAL_GENERATION
        unknown = {"group_id": "bad-input", "generation_id": 1, "member_id": "ghost"}
        assert client.request(HEARTBEAT, 1, unknown).error_code == 25
        commit = client.request(
            OFFSET_COMMIT,
            3,
            {
                "group_id": "bad-input",
                "generation_id_or_member_epoch": 1,
                "member_id": member,
                "retention_time": -1,
                "topics": [
                    {
                        "name": "no-such-topic",
                        "partitions": [{"partition_index": 0, "committed_offset": 5}],
                    },
                    {
                        "name": topic,
                        "partitions": [
                            {
                                "partition_index": 0,
                                "committed_offset": 5,
                                "committed_metadata": "kept",
                            },
                            {"partition_index": 7, "committed_offset": 1},
                        ],
                    },
                ],
            },
        )
        errors = {
            (t.name, p.partition_index): p.error_code for t in commit.topics for p in t.partitions
        }
        assert errors == {("no-such-topic", 0): 3, (topic, 0): 0, (topic, 7): 3}
        fetched = client.request(
            OFFSET_FETCH,
            3,
            {"group_id": "bad-input", "topics": [{"name": topic, "partition_indexes": [0, 1]}]},
        )
        parts = {
            p.partition_index: (p.committed_offset, p.metadata)
            for p in fetched.topics[0].partitions
        }
        assert parts == {0: (5, "kept"), 1: (-1, "")}


def test_long_group_ids(broker: Any) -> None:
    long_id = "g" * 10_000
    with RawClient(broker.bootstrap) as client:
        joined = join(client, long_id)
        assert joined.error_code == 0
        too_long = "g" * 40_000  # only a flexible (compact string) version can carry it
        refused = client.request(JOIN_GROUP, 7, join_fields(too_long, reason=None))
        assert refused.error_code == 24  # INVALID_GROUP_ID
        assert client.request(API_VERSIONS, 0, {}).error_code == 0


def test_join_storm_of_200_members(broker: Any) -> None:
    group = "storm"
    clients = [RawClient(broker.bootstrap, timeout=60) for _ in range(200)]
    try:
        ids = []
        for client in clients:
            first = client.request(JOIN_GROUP, 5, join_fields(group))
            assert first.error_code == 79
            ids.append(first.member_id)
        # Everyone sends the second JoinGroup before anyone reads: the answers come together.
        for client, member_id in zip(clients, ids, strict=True):
            client.send_raw(client.encode_request(JOIN_GROUP, 5, join_fields(group, member_id)))
        answers = [client.read_response(JOIN_GROUP, 5)[1] for client in clients]
        assert {a.error_code for a in answers} == {0}
        assert len({a.generation_id for a in answers}) == 1
        leaders = [a for a in answers if a.members]
        assert len(leaders) == 1 and len(leaders[0].members) == 200
        with RawClient(broker.bootstrap) as probe:
            assert probe.request(API_VERSIONS, 0, {}).error_code == 0
    finally:
        for client in clients:
            client.close()
