"""firth.testing.running_broker: an in-process broker on a free port with a throwaway data folder."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from firth.testing import BrokerStartError, running_broker


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    failures: list[object] = []
    for value in values:
        producer.produce(
            topic, value, on_delivery=lambda error, _: failures.append(error) if error else None
        )
    assert producer.flush(30) == 0
    assert failures == []


def read_all(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "t", "enable.auto.commit": False}
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        values: list[bytes] = []
        for _ in range(200):
            if len(values) >= expected:
                break
            message = consumer.poll(0.1)
            if message is not None and message.error() is None:
                values.append(message.value())
        return values
    finally:
        consumer.close()


def test_broker_answers_on_loopback_and_cleans_up() -> None:
    with running_broker() as broker:
        assert broker.bootstrap == f"127.0.0.1:{broker.kafka_port}"
        assert broker.kafka_port != 0
        assert broker.config.kafka_listen == "127.0.0.1:0"
        assert broker.config.fsync is True
        assert broker.config.group_initial_rebalance_delay_ms == 0
        assert broker.data_dir.is_dir()
        produce(broker.bootstrap, "hello", [b"one", b"two"])
        assert read_all(broker.bootstrap, "hello", 2) == [b"one", b"two"]
        folder = broker.data_dir
    assert not folder.exists()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", broker.kafka_port), 1):
        pass


def test_config_overrides_reach_the_broker() -> None:
    with running_broker(num_partitions=3, auto_create_topics=True) as broker:
        assert broker.config.num_partitions == 3
        produce(broker.bootstrap, "three", [b"x"])
        metadata = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10)
        assert len(metadata.topics["three"].partitions) == 3


def test_given_data_dir_is_kept_and_reopened(tmp_path: Path) -> None:
    with running_broker(data_dir=tmp_path) as broker:
        assert broker.data_dir == tmp_path
        produce(broker.bootstrap, "kept", [b"a", b"b", b"c"])
    assert any(tmp_path.iterdir())
    with running_broker(data_dir=tmp_path) as again:
        assert read_all(again.bootstrap, "kept", 3) == [b"a", b"b", b"c"]


def test_two_brokers_run_side_by_side_on_different_ports() -> None:
    with running_broker() as first, running_broker() as second:
        assert first.kafka_port != second.kafka_port
        assert first.data_dir != second.data_dir
        produce(first.bootstrap, "only-first", [b"1"])
        topics = AdminClient({"bootstrap.servers": second.bootstrap}).list_topics(timeout=10).topics
        assert "only-first" not in topics


def test_stop_early_then_leave_the_block() -> None:
    with running_broker() as broker:
        broker.stop()
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", broker.kafka_port), 1):
            pass
        broker.stop()  # idempotent


def test_start_failure_is_raised_in_the_caller(tmp_path: Path) -> None:
    with (
        running_broker(data_dir=tmp_path),
        pytest.raises(BrokerStartError, match="in use"),
        running_broker(data_dir=tmp_path),
    ):
        pass


def test_bad_override_is_a_config_error() -> None:
    from firth.config import ConfigError

    with pytest.raises(ConfigError, match="num_partitions"), running_broker(num_partitions=0):
        pass
