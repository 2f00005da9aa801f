"""Restart: a graceful stop and a start on the same data folder lose nothing.

What must come back after SIGTERM and start: the topics and their partition counts, the topic
configs set with IncrementalAlterConfigs, every record, each partition's log start offset (moved
by retention before the stop) and log end offset, and the idempotent producers' sequence state,
so a retried batch from before the restart is answered with its original offset instead of
being written again. The SIGTERMed process must exit 0 within its shutdown timeout, even with an
idle connection and a long-polling fetch open.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from firth.testing import broker_process

from .conftest_broker import (
    ConnectionClosed,
    RawClient,
    alter_topic_configs,
    create_topic,
    describe_topic_configs,
    encode_request,
    fetch_fields,
    init_producer_id,
    list_offsets,
    produce_fields,
    produce_raw,
    read_partition,
    topic_partition_counts,
    values_batch,
    wait_for,
)

SHUTDOWN_TIMEOUT_S = 5.0
# `firth.app.run` exits 1 when the graceful stop overruns shutdown_timeout_s, so exit code 0
# proves the stop kept its bound; the wall-clock bound on the whole process adds a margin for
# interpreter teardown on a loaded machine.
EXIT_MARGIN_S = 5.0
FETCH_VERSION = 11

# topic -> (partitions, configs set after creation with IncrementalAlterConfigs)
TOPICS: dict[str, tuple[int, dict[str, str]]] = {
    "keep-three": (3, {"retention.ms": "86400000", "max.message.bytes": "200000"}),
    "keep-one": (1, {"segment.bytes": "2048", "retention.bytes": "4096"}),
    "keep-plain": (2, {}),
}


def _snapshot(bootstrap: str) -> dict[str, Any]:
    """Everything a restart must keep, as plain values."""
    counts = topic_partition_counts(bootstrap)
    state: dict[str, Any] = {"partitions": {name: counts.get(name) for name in TOPICS}}
    state["configs"] = {name: describe_topic_configs(bootstrap, name) for name in TOPICS}
    offsets = {}
    data = {}
    with RawClient(bootstrap) as client:
        for name, (partitions, _) in TOPICS.items():
            for partition in range(partitions):
                offsets[(name, partition)] = list_offsets(client, name, partition)
                data[(name, partition)] = read_partition(bootstrap, name, partition)
    state["offsets"] = offsets
    state["data"] = data
    return state


@pytest.mark.timeout(120)
def test_graceful_restart_keeps_topics_configs_data_and_offsets(tmp_path: Path) -> None:
    with broker_process(
        tmp_path / "data",
        shutdown_timeout_s=SHUTDOWN_TIMEOUT_S,
        retention_check_interval_ms=100,
        auto_create_topics=False,
    ) as broker:
        for name, (partitions, configs) in TOPICS.items():
            create_topic(broker.bootstrap, name, partitions)
            if configs:
                alter_topic_configs(broker.bootstrap, name, configs)

        with RawClient(broker.bootstrap) as client:
            for i in range(60):
                name = "keep-three" if i % 2 else "keep-plain"
                partition = i % TOPICS[name][0]
                error, _ = produce_raw(
                    client, name, partition, values_batch([f"{name}-{i}".encode()] * 2)
                )
                assert error == 0
            # 100-byte records in 2 KiB segments with 4 KiB retention: retention must delete
            # the oldest segments, moving the log start offset.
            for i in range(80):
                error, _ = produce_raw(
                    client, "keep-one", 0, values_batch([f"one-{i}-".encode().ljust(100, b".")])
                )
                assert error == 0
            wait_for(
                lambda: list_offsets(client, "keep-one", 0)[0] > 0,
                20,
                "retention to move keep-one's log start offset",
            )
            # Retention passes run every 100 ms; one that ran while the records were still
            # arriving may have left segments a later pass deletes. Wait until the start offset
            # has held for five passes (the fixpoint) so the restart is compared with it.
            seen: dict[str, float] = {}

            def retention_settled() -> bool:
                start = list_offsets(client, "keep-one", 0)[0]
                now = time.monotonic()
                if seen.get("start") != start:
                    seen.update(start=start, since=now)
                return now - seen["since"] >= 0.5

            wait_for(retention_settled, 20, "keep-one's log start offset to settle")

        before = _snapshot(broker.bootstrap)
        assert before["partitions"] == {name: p for name, (p, _) in TOPICS.items()}
        for name, (_, configs) in TOPICS.items():
            for key, value in configs.items():
                assert before["configs"][name][key] == value, (name, key)
        start, end = before["offsets"][("keep-one", 0)]
        assert 0 < start < end == 80
        assert [v for _, v in before["data"][("keep-one", 0)]][-1].startswith(b"one-79-")

        # An idle connection and a fetch long-polling for data that will never come: the
        # graceful stop must not wait for either beyond its bound.
        idle = RawClient(broker.bootstrap)
        poller = RawClient(broker.bootstrap)
        poller.send_raw(
            poller.encode_request(1, FETCH_VERSION, fetch_fields("keep-one", 0, end, 60_000))
        )
        wait_for(lambda: poller.unread_by_peer() == 0, 10, "the broker to read the fetch")
        started = time.monotonic()
        code = broker.terminate(timeout=SHUTDOWN_TIMEOUT_S + 10)
        elapsed = time.monotonic() - started
        assert code == 0, broker.log_text()[-3000:]
        assert elapsed < SHUTDOWN_TIMEOUT_S + EXIT_MARGIN_S, f"the process took {elapsed:.2f}s"
        assert idle.wait_closed(5)
        idle.close()
        # The parked fetch was an in-flight request: it is answered (empty) before the close.
        _, fetched = poller.read_response(1, FETCH_VERSION)
        assert int(fetched.error_code) == 0
        assert poller.wait_closed(5)
        poller.close()
        assert "stopped cleanly" in broker.log_text()

        broker.start()
        after = _snapshot(broker.bootstrap)
        assert after["partitions"] == before["partitions"]
        assert after["configs"] == before["configs"]
        assert after["offsets"] == before["offsets"]
        assert after["data"] == before["data"]

        # The logs carry on where they stopped.
        with RawClient(broker.bootstrap) as client:
            error, base_offset = produce_raw(client, "keep-one", 0, values_batch([b"after"]))
            assert (error, base_offset) == (0, end)
            error, _ = produce_raw(client, "keep-three", 0, values_batch([b"x" * 300_000]))
            assert error == 10, "max.message.bytes set before the restart no longer applies"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_idempotent_producer_state_survives_restart(tmp_path: Path, stop: str) -> None:
    with broker_process(tmp_path / "data", shutdown_timeout_s=SHUTDOWN_TIMEOUT_S) as broker:
        create_topic(broker.bootstrap, "idem", 1)
        with RawClient(broker.bootstrap) as client:
            producer_id, epoch = init_producer_id(client)

            def idempotent(values: list[bytes], sequence: int) -> bytes:
                return values_batch(
                    values,
                    producer_id=producer_id,
                    producer_epoch=epoch,
                    base_sequence=sequence,
                )

            first = idempotent([b"a0", b"a1", b"a2"], 0)
            second = idempotent([b"b0", b"b1"], 3)
            assert produce_raw(client, "idem", 0, first) == (0, 0)
            assert produce_raw(client, "idem", 0, values_batch([b"plain"])) == (0, 3)
            assert produce_raw(client, "idem", 0, second) == (0, 4)
            assert produce_raw(client, "idem", 0, second) == (0, 4), "duplicate before restart"
            assert list_offsets(client, "idem", 0) == (0, 6)

        if stop == "sigterm":
            assert broker.terminate(timeout=SHUTDOWN_TIMEOUT_S + 10) == 0
        else:
            broker.kill()
        broker.start()

        with RawClient(broker.bootstrap) as client:
            # The exact bytes sent before the restart: same producer id, epoch and sequences.
            assert produce_raw(client, "idem", 0, second) == (0, 4)
            assert produce_raw(client, "idem", 0, first) == (0, 0)
            assert list_offsets(client, "idem", 0) == (0, 6), "a duplicate was stored again"
            # The sequence carries on from the state before the restart...
            assert produce_raw(client, "idem", 0, idempotent([b"c0"], 5)) == (0, 6)
            # ...and a gap is still refused.
            error, _ = produce_raw(client, "idem", 0, idempotent([b"gap"], 9))
            assert error == 45  # OUT_OF_ORDER_SEQUENCE_NUMBER
            # Producer ids are never handed out twice, across restarts too.
            new_id, _ = init_producer_id(client)
            assert new_id != producer_id

        stored = [value for _, value in read_partition(broker.bootstrap, "idem", 0)]
        assert stored == [b"a0", b"a1", b"a2", b"plain", b"b0", b"b1", b"c0"]


@pytest.mark.timeout(120)
def test_acknowledged_admin_changes_survive_sigkill(tmp_path: Path) -> None:
    """Topic metadata is durable once the admin request is answered, not only at a clean stop."""
    from confluent_kafka.admin import AdminClient, NewPartitions

    with broker_process(tmp_path / "data", auto_create_topics=False) as broker:
        create_topic(broker.bootstrap, "admin-a", 2, {"retention.ms": "123456"})
        alter_topic_configs(broker.bootstrap, "admin-a", {"segment.bytes": "65536"})
        create_topic(broker.bootstrap, "admin-b", 3)
        with RawClient(broker.bootstrap) as client:
            assert produce_raw(client, "admin-b", 2, values_batch([b"old-b"])) == (0, 0)
        broker.kill()
        broker.start()

        assert topic_partition_counts(broker.bootstrap) == {"admin-a": 2, "admin-b": 3}
        configs = describe_topic_configs(broker.bootstrap, "admin-a")
        assert (configs["retention.ms"], configs["segment.bytes"]) == ("123456", "65536")

        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.delete_topics(["admin-b"])["admin-b"].result(30)
        admin.create_partitions([NewPartitions("admin-a", 4)])["admin-a"].result(30)
        broker.kill()
        broker.start()

        assert topic_partition_counts(broker.bootstrap) == {"admin-a": 4}
        # A topic created again under a deleted one's name starts empty.
        create_topic(broker.bootstrap, "admin-b", 3)
        with RawClient(broker.bootstrap) as client:
            assert [list_offsets(client, "admin-b", p) for p in range(3)] == [(0, 0)] * 3


@pytest.mark.timeout(120)
def test_sigterm_during_a_pipelined_burst_keeps_every_answered_write(tmp_path: Path) -> None:
    """SIGTERM while acks=all produce requests stream in: the process exits 0 within its bound,
    every write it answered is stored at the answered offset, and what is stored is a prefix of
    the burst, in order, each write once."""
    burst = 6000
    with broker_process(tmp_path / "data", shutdown_timeout_s=SHUTDOWN_TIMEOUT_S) as broker:
        create_topic(broker.bootstrap, "burst", 1)
        frames = b"".join(
            encode_request(0, 7, produce_fields("burst", 0, values_batch([f"ok-{i}".encode()])), i)
            for i in range(burst)
        )
        client = RawClient(broker.bootstrap)

        def send() -> None:
            try:
                client.send_raw(frames)
            except OSError:
                pass  # the broker closed the connection while we were still sending

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        answered: dict[int, int] = {}  # request index -> base offset
        signalled_at = 0.0
        try:
            while True:
                index, response = client.read_response(0, 7)
                part = response.responses[0].partition_responses[0]
                assert int(part.error_code) == 0, f"request {index} answered {part}"
                answered[index] = int(part.base_offset)
                if len(answered) == 100:
                    signalled_at = time.monotonic()
                    os.kill(broker.pid, signal.SIGTERM)
        except ConnectionClosed:
            pass
        finally:
            client.close()
            sender.join(10)
        assert signalled_at, "the burst ended before the stop began"
        # A second SIGTERM would force the exit; wait for the first to complete.
        wait_for(
            lambda: not broker.running(),
            SHUTDOWN_TIMEOUT_S + EXIT_MARGIN_S,
            "the process to exit after SIGTERM",
        )
        assert broker.returncode == 0, broker.log_text()[-3000:]
        assert sorted(answered) == list(range(len(answered))), "responses out of order"

        broker.start()
        stored = read_partition(broker.bootstrap, "burst", 0)
        values = [value for _, value in stored]
        assert values == [f"ok-{i}".encode() for i in range(len(values))]
        assert len(values) >= len(answered)
        for index, offset in answered.items():
            assert stored[offset] == (offset, f"ok-{index}".encode())
