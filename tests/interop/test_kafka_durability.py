"""Durability: a SIGKILLed broker keeps every message it acknowledged with acks=all.

A producer in another process (confluent-kafka, acks=all, idempotence on) sends a numbered
stream to a 3-partition topic at a steady rate until told to stop, and writes each acknowledged
(partition, offset, value) to a file, flushing every line, as the delivery reports arrive. The
broker is killed with SIGKILL mid-stream and restarted on the same data folder; the producer
carries on (its retries, then the backlog built up while the broker was down); the broker is
killed and restarted once more; after more acknowledgements the producer is told to stop and
flushes. Then every partition is read from the beginning: each acknowledged message must be at
its acknowledged offset, and each partition must hold its share of the stream in order with
nothing written twice. The topic's segments are small, so the stream rolls many of them and
recovery has several segments per partition to check.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from firth.testing import broker_process

from .conftest_broker import create_topic, read_partition, wait_for

TOPIC = "durable"
PARTITIONS = 3
RATE = 4_000  # messages per second the producer enqueues
ACKS_BETWEEN_KILLS = 2_000
KILLS = 2
SEGMENT_BYTES = 32 * 1024

PRODUCER = """
import sys, time
from confluent_kafka import Producer

import os

bootstrap, topic, rate, partitions, ack_path, stop_path = sys.argv[1:]
rate, partitions = float(rate), int(partitions)
producer = Producer({
    "bootstrap.servers": bootstrap,
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 5,
    "message.timeout.ms": 120000,
    "reconnect.backoff.ms": 20,
    "reconnect.backoff.max.ms": 250,
    "retry.backoff.ms": 20,
})
out = open(ack_path, "w")

def on_delivery(err, msg):
    if err is not None:
        out.write(f"ERR {msg.partition()} {msg.value().decode()} {err}\\n")
    else:
        out.write(f"{msg.partition()} {msg.offset()} {msg.value().decode()}\\n")
    out.flush()

start = time.monotonic()
sent = 0
while not os.path.exists(stop_path):
    due = start + sent / rate
    while time.monotonic() < due:
        producer.poll(0.002)
    producer.produce(topic, value=str(sent).encode(), partition=sent % partitions,
                     on_delivery=on_delivery)
    producer.poll(0)
    sent += 1
left = producer.flush(150)
out.close()
print(f"sent {sent}")
sys.exit(0 if left == 0 else 3)
"""


def _ack_lines(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    # The last line may be half-written; only newline-terminated lines count.
    return text.split("\n")[:-1]


def _acked_at_least(path: Path, count: int) -> Callable[[], bool]:
    return lambda: len(_ack_lines(path)) >= count


@pytest.mark.timeout(240)
def test_acknowledged_messages_survive_two_sigkills(tmp_path: Path) -> None:
    ack_path = tmp_path / "acks.txt"
    stop_path = tmp_path / "stop"
    script = tmp_path / "producer.py"
    script.write_text(PRODUCER)
    with broker_process(tmp_path / "data", num_partitions=PARTITIONS) as broker:
        # Small segments: the stream rolls many of them, so the kills land near rolls and
        # recovery walks several segments per partition.
        create_topic(broker.bootstrap, TOPIC, PARTITIONS, {"segment.bytes": str(SEGMENT_BYTES)})
        producer = subprocess.Popen(
            [
                sys.executable,
                str(script),
                broker.bootstrap,
                TOPIC,
                str(RATE),
                str(PARTITIONS),
                str(ack_path),
                str(stop_path),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            acked_at_kill = 0
            for kill in range(KILLS + 1):
                threshold = acked_at_kill + ACKS_BETWEEN_KILLS
                wait_for(
                    _acked_at_least(ack_path, threshold),
                    90,
                    f"{threshold} acknowledgements after start #{kill + 1}",
                )
                assert producer.poll() is None, "the producer stopped on its own"
                if kill == KILLS:
                    break
                # The producer is mid-stream: sending at RATE, requests in flight.
                broker.kill()
                acked_at_kill = len(_ack_lines(ack_path))
                broker.start()
            stop_path.touch()
            output, _ = producer.communicate(timeout=180)
            assert producer.returncode == 0, (
                f"producer exited {producer.returncode}: {output.decode(errors='replace')}\n"
                f"broker log:\n{broker.log_text()[-4000:]}"
            )
            total = int(output.decode().split("sent ")[-1].split()[0])
        finally:
            if producer.poll() is None:
                producer.kill()
                producer.wait()

        lines = _ack_lines(ack_path)
        failures = [line for line in lines if line.startswith("ERR")]
        assert not failures, f"{len(failures)} deliveries failed, e.g. {failures[:3]}"
        acked: dict[int, dict[int, int]] = {p: {} for p in range(PARTITIONS)}
        acked_values: set[int] = set()
        for line in lines:
            partition_text, offset_text, value_text = line.split()
            partition, offset, value = int(partition_text), int(offset_text), int(value_text)
            assert value not in acked_values, f"value {value} acknowledged twice"
            acked_values.add(value)
            assert offset not in acked[partition], f"offset {partition}/{offset} acked twice"
            acked[partition][offset] = value
        assert acked_values == set(range(total))

        for partition in range(PARTITIONS):
            stored = read_partition(broker.bootstrap, TOPIC, partition)
            by_offset = {offset: int(value or b"-1") for offset, value in stored}
            missing = {
                offset: value
                for offset, value in acked[partition].items()
                if by_offset.get(offset) != value
            }
            assert not missing, (
                f"partition {partition}: {len(missing)} acknowledged messages are not at their "
                f"offsets, e.g. {sorted(missing.items())[:5]} "
                f"(stored there: {[(o, by_offset.get(o)) for o in sorted(missing)[:5]]})"
            )
            values = [int(value or b"-1") for _, value in stored]
            # Per-partition order, and no duplicates: this partition's share of the stream,
            # exactly once each, in the order it was sent.
            expected = list(range(partition, total, PARTITIONS))
            assert values == expected, (
                f"partition {partition} holds {len(values)} values, expected {len(expected)}; "
                f"first difference at index {_first_difference(values, expected)}"
            )


def _first_difference(got: list[int], expected: list[int]) -> int:
    for index, (a, b) in enumerate(zip(got, expected, strict=False)):
        if a != b:
            return index
    return min(len(got), len(expected))
