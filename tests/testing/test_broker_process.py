"""firth.testing.broker_process: `firth serve` as a subprocess that tests kill, stop and restart.

These also test `firth serve` itself: it answers Kafka clients, and SIGTERM stops it gracefully
(exit code 0) within its shutdown timeout.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from firth.testing import BrokerStartError, broker_process


def produce_acked(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    errors: list[object] = []
    for value in values:
        producer.produce(topic, value, on_delivery=lambda e, _: errors.append(e) if e else None)
    assert producer.flush(30) == 0
    assert errors == []


def read_partition(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "t", "enable.auto.commit": False}
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        values: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(values) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                values.append(message.value())
        return values
    finally:
        consumer.close()


def test_serve_answers_and_sigterm_stops_it_gracefully(tmp_path: Path) -> None:
    with broker_process(tmp_path, shutdown_timeout_s=5) as broker:
        assert broker.running()
        host, port = broker.bootstrap.rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        metadata = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10)
        assert [b.port for b in metadata.brokers.values()] == [int(port)]
        produce_acked(broker.bootstrap, "graceful", [b"a", b"b"])
        started = time.monotonic()
        assert broker.terminate(timeout=30) == 0
        assert time.monotonic() - started < 5 + 2  # within the shutdown timeout, plus exit
        assert not broker.running()
        with pytest.raises(OSError), socket.create_connection((host, int(port)), 1):
            pass
        assert "Kafka listener on" in broker.log_text()
        assert "Traceback" not in broker.log_text()


def test_kill_and_restart_on_the_same_port_keeps_acknowledged_data(tmp_path: Path) -> None:
    with broker_process(tmp_path) as broker:
        first_address = broker.bootstrap
        values = [f"m{i}".encode() for i in range(100)]
        produce_acked(broker.bootstrap, "durable", values)
        first_pid = broker.pid
        broker.kill()
        assert broker.returncode == -9
        broker.restart()
        assert broker.pid != first_pid
        assert broker.bootstrap == first_address
        assert read_partition(broker.bootstrap, "durable", len(values)) == values
        broker.restart()  # a graceful stop, then a start
        assert read_partition(broker.bootstrap, "durable", len(values)) == values


def test_overrides_are_passed_as_settings(tmp_path: Path) -> None:
    with broker_process(tmp_path, num_partitions=3, fsync=False) as broker:
        produce_acked(broker.bootstrap, "three", [b"x"])
        topics = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10)
        assert len(topics.topics["three"].partitions) == 3
        assert "fsync is OFF" in broker.log_text()


def test_a_broker_that_cannot_start_is_reported_with_its_log(tmp_path: Path) -> None:
    with broker_process(tmp_path) as first:
        assert first.running()
        with (
            pytest.raises(BrokerStartError, match="in use by another Firth process"),
            broker_process(tmp_path),
        ):
            pass


def test_invalid_override_fails_in_the_caller(tmp_path: Path) -> None:
    from firth.config import ConfigError

    with (
        pytest.raises(ConfigError, match="num_partitions"),
        broker_process(tmp_path, num_partitions=0),
    ):
        pass
