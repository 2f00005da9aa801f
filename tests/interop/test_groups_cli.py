"""``firth groups list|describe|reset-offsets|delete`` against a live broker and real consumers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from firth.cli import main
from firth.testing import running_broker
from tests.interop.conftest_broker import wait_for
from tests.interop.test_groups_clients import new_topic, produce


@pytest.fixture(scope="module")
def broker() -> Iterator[Any]:
    with running_broker(
        fsync=False, group_initial_rebalance_delay_ms=0, group_consumer_heartbeat_interval_ms=300
    ) as running:
        yield running


def groups(capsys: pytest.CaptureFixture[str], broker: Any, *words: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["groups", *words, "--bootstrap", broker.bootstrap, "--timeout", "10"])
    return code, capsys.readouterr().out


def as_json(capsys: pytest.CaptureFixture[str], broker: Any, *words: str) -> Any:
    code, out = groups(capsys, broker, *words, "--json")
    assert code == 0, out
    return json.loads(out)


def commit(broker: Any, group: str, offsets: dict[tuple[str, int], int]) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
    )
    admin.alter_consumer_group_offsets([request])[group].result(10)


def test_describe_lag_is_produced_minus_committed(
    broker: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = new_topic(broker.bootstrap, partitions=3)
    produce(broker.bootstrap, topic, 10, partitions=3)
    commit(broker, "lagging", {(topic, 0): 4, (topic, 1): 10, (topic, 2): 0})
    described = as_json(capsys, broker, "describe", "lagging")
    assert described["state"] == "EMPTY"
    lag = {
        row["partition"]: (row["committed"], row["log_end"], row["lag"])
        for row in described["partitions"]
    }
    assert lag == {0: (4, 10, 6), 1: (10, 10, 0), 2: (0, 10, 10)}
    assert described["total_lag"] == 16
    listed = as_json(capsys, broker, "list")
    assert {"group": "lagging", "state": "EMPTY", "type": "simple"} in listed
    code, table = groups(capsys, broker, "describe", "lagging")
    assert code == 0 and "total lag 16" in table


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_describe_a_live_group_then_reset_and_delete(
    broker: Any, capsys: pytest.CaptureFixture[str], protocol: str
) -> None:
    """The same commands on a classic group and on a KIP-848 (`group.protocol=consumer`) one."""
    group = f"live-{protocol}"
    topic = new_topic(broker.bootstrap, partitions=2)
    produce(broker.bootstrap, topic, 10, partitions=2)
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": group,
            "group.protocol": protocol,
            "client.id": "cli-test-consumer",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    try:
        while seen < 7:
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                seen += 1
                consumer.commit(message=message, asynchronous=False)
        described = as_json(capsys, broker, "describe", group)
        assert described["state"] == "STABLE"
        (member,) = described["members"]
        assert member["client_id"] == "cli-test-consumer"
        assert member["host"].lstrip("/") == "127.0.0.1"
        assert sorted(member["partitions"]) == [f"{topic}-0", f"{topic}-1"]
        rows = described["partitions"]
        assert sum(row["committed"] or 0 for row in rows) == 7
        for row in rows:  # a partition without a commit has no lag to report, as in Kafka
            expected = None if row["committed"] is None else 10 - row["committed"]
            assert (row["log_end"], row["lag"]) == (10, expected)
        assert described["total_lag"] == sum(
            10 - r["committed"] for r in rows if r["committed"] is not None
        )
        listed = as_json(capsys, broker, "list")
        assert {"group": group, "state": "STABLE", "type": "consumer"} in listed
        # Resetting is refused while the member is there, and so is deleting.
        code, _ = groups(capsys, broker, "reset-offsets", group, "--to-earliest")
        assert code == 1
        code, _ = groups(capsys, broker, "delete", group)
        assert code == 1
    finally:
        consumer.close()
    wait_for(
        lambda: as_json(capsys, broker, "describe", group)["state"] == "EMPTY", 10, "empty group"
    )
    reset = as_json(capsys, broker, "reset-offsets", group, "--to-earliest")
    assert {r["new"] for r in reset["partitions"]} == {0}
    reset = as_json(capsys, broker, "reset-offsets", group, "--shift-by", "3")
    assert {r["new"] for r in reset["partitions"]} == {3}
    reset = as_json(capsys, broker, "reset-offsets", group, "--shift-by", "-99")
    assert {r["new"] for r in reset["partitions"]} == {0}
    dry = as_json(capsys, broker, "reset-offsets", group, "--to-latest", "--dry-run")
    assert {r["new"] for r in dry["partitions"]} == {10} and dry["applied"] is False
    assert {
        row["committed"] for row in as_json(capsys, broker, "describe", group)["partitions"]
    } == {0}
    future = as_json(capsys, broker, "reset-offsets", group, "--to-datetime", "2999-01-01T00:00:00")
    assert {r["new"] for r in future["partitions"]} == {10}
    past = as_json(capsys, broker, "reset-offsets", group, "--to-datetime", "2000-01-01")
    assert {r["new"] for r in past["partitions"]} == {0}
    code, out = groups(capsys, broker, "delete", group)
    assert code == 0 and f"deleted group {group}" in out
    assert group not in {g["group"] for g in as_json(capsys, broker, "list")}


def test_bad_datetime_is_a_usage_error(broker: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = groups(capsys, broker, "reset-offsets", "any", "--to-datetime", "yesterday")
    assert code == 2


def test_unknown_groups_are_reported(broker: Any, capsys: pytest.CaptureFixture[str]) -> None:
    for words in (("describe", "nope"), ("delete", "nope")):
        capsys.readouterr()
        code = main(["groups", *words, "--bootstrap", broker.bootstrap, "--timeout", "10"])
        assert code == 1
        assert "'nope' does not exist" in capsys.readouterr().err
