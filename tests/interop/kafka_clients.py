"""Adapters that drive each stock Kafka client the same way, so one test suite judges them all.

Each adapter produces keyed messages with headers and explicit timestamps in a given
compression codec and reports where each landed (partition, offset); and reads partitions back
from the beginning with no consumer group. The tests compare what went in with what came out.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


@dataclass(frozen=True, slots=True)
class Message:
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class Consumed:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int


def consumed_from_record(r: Any) -> Consumed:
    """A kafka-python or aiokafka ConsumerRecord (they share the field names) as a Consumed."""
    return Consumed(
        r.partition, r.offset, r.key, r.value, tuple((k, v) for k, v in r.headers), r.timestamp
    )


class ConfluentClient:
    name = "confluent-kafka"

    def produce(
        self, bootstrap: str, topic: str, messages: list[Message], codec: str
    ) -> list[tuple[int, int]]:
        from confluent_kafka import Producer

        producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "compression.type": codec,
                "acks": "all",
                "linger.ms": 5,
                "enable.idempotence": True,
            }
        )
        results: list[tuple[int, int] | None] = [None] * len(messages)
        errors: list[str] = []

        def report(index: int):  # type: ignore[no-untyped-def]
            def on_delivery(err, msg):  # type: ignore[no-untyped-def]
                if err is not None:
                    errors.append(str(err))
                else:
                    results[index] = (msg.partition(), msg.offset())

            return on_delivery

        for index, message in enumerate(messages):
            producer.produce(
                topic,
                key=message.key,
                value=message.value,
                headers=list(message.headers),
                timestamp=message.timestamp_ms,
                on_delivery=report(index),
            )
            producer.poll(0)
        remaining = producer.flush(30)
        assert remaining == 0, f"{remaining} messages not delivered"
        assert not errors, errors
        return [r for r in results if r is not None]

    def consume(
        self, bootstrap: str, topic: str, partitions: int, count: int, timeout: float = 30
    ) -> list[Consumed]:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "firth-interop-unused",
                "enable.auto.commit": False,
                "enable.partition.eof": False,
            }
        )
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        out: list[Consumed] = []
        deadline = time.monotonic() + timeout
        try:
            while len(out) < count and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                assert msg.error() is None, msg.error()
                out.append(
                    Consumed(
                        msg.partition(),
                        msg.offset(),
                        msg.key(),
                        msg.value(),
                        tuple(msg.headers() or ()),
                        msg.timestamp()[1],
                    )
                )
        finally:
            consumer.close()
        return out


class KafkaPythonClient:
    name = "kafka-python"

    def produce(
        self, bootstrap: str, topic: str, messages: list[Message], codec: str
    ) -> list[tuple[int, int]]:
        from kafka import KafkaProducer

        producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            compression_type=None if codec == "none" else codec,
            acks="all",
            linger_ms=5,
        )
        try:
            futures = [
                producer.send(
                    topic,
                    key=m.key,
                    value=m.value,
                    headers=list(m.headers),
                    timestamp_ms=m.timestamp_ms,
                )
                for m in messages
            ]
            producer.flush(30)
            metas = [f.get(timeout=30) for f in futures]
        finally:
            producer.close(5)
        return [(m.partition, m.offset) for m in metas]

    def consume(
        self, bootstrap: str, topic: str, partitions: int, count: int, timeout: float = 30
    ) -> list[Consumed]:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        consumer.seek_to_beginning()
        out: list[Consumed] = []
        deadline = time.monotonic() + timeout
        try:
            while len(out) < count and time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=500).values():
                    out.extend(map(consumed_from_record, records))
        finally:
            consumer.close()
        return out


class AioKafkaClient:
    name = "aiokafka"

    def produce(
        self, bootstrap: str, topic: str, messages: list[Message], codec: str
    ) -> list[tuple[int, int]]:
        from aiokafka import AIOKafkaProducer

        async def run() -> list[tuple[int, int]]:
            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap,
                compression_type=None if codec == "none" else codec,
                acks="all",
                linger_ms=5,
                enable_idempotence=True,
            )
            await producer.start()
            try:
                futures = [
                    await producer.send(
                        topic,
                        key=m.key,
                        value=m.value,
                        headers=list(m.headers),
                        timestamp_ms=m.timestamp_ms,
                    )
                    for m in messages
                ]
                metas = await asyncio.gather(*futures)
            finally:
                await producer.stop()
            return [(m.partition, m.offset) for m in metas]

        return asyncio.run(run())

    def consume(
        self, bootstrap: str, topic: str, partitions: int, count: int, timeout: float = 30
    ) -> list[Consumed]:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        async def run() -> list[Consumed]:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=bootstrap,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            )
            await consumer.start()
            out: list[Consumed] = []
            try:
                consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
                await consumer.seek_to_beginning()
                deadline = time.monotonic() + timeout
                while len(out) < count and time.monotonic() < deadline:
                    batches = await consumer.getmany(timeout_ms=500)
                    for records in batches.values():
                        out.extend(map(consumed_from_record, records))
            finally:
                await consumer.stop()
            return out

        return asyncio.run(run())


CLIENTS = [ConfluentClient(), KafkaPythonClient(), AioKafkaClient()]


def kcat_available() -> bool:
    return shutil.which("kcat") is not None


def kcat(*args: str, input: bytes | None = None, timeout: float = 60) -> bytes:
    completed = subprocess.run(
        ["kcat", *args], input=input, capture_output=True, timeout=timeout, check=False
    )
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    return completed.stdout
