"""The outbox relay: every stored event, in global order, onto a Kafka topic, exactly once.

The events table is the outbox; the relay is an ordered catch-up reader of it with one active
instance per (store, topic). Each event becomes one record:

- key: the stream id (so one stream's events stay in one partition, in order);
- value: the event's data as JSON;
- headers: `event-type`, `position` (decimal), `event-id`, `stream-version`, `recorded-at`
  (ISO 8601), and `metadata` (JSON) when the event has metadata.

Exactly once across crashes, without a separate checkpoint that could disagree with the topic:

1. The relay takes the lease `outbox:<topic>` (an advisory lock on PostgreSQL, a file lock next
   to an SQLite database); a second relay refuses to start (`LeaseHeld`), or with
   `standby=True` waits until the active one is gone and then takes over.
2. It reads the last record of every partition of the topic; the `position` header there is the
   highest position that partition holds.
3. It publishes events in position order with an idempotent producer (`enable.idempotence`,
   `acks=all`, gapless guarantee), which stores each partition's records as a gap-free,
   duplicate-free prefix of what it was given. So a partition holds exactly the events routed
   to it up to its last position; the relay resumes at the smallest of those positions and
   skips events a partition already holds.
4. Any delivery failure stops the relay (an exception); restarting it is the recovery. So does
   losing the lease (on PostgreSQL: its session ended), checked before every batch.

The topic is created with one partition when missing (`partitions=` to choose more); one
partition keeps the topic's order equal to the global order. With several partitions the
relay routes by `crc32(stream id) mod partitions` and the global order holds per stream.
The topic must be written by this relay only: a foreign record at a partition's end (no
`position` header) stops the relay with an error.

Known limit: the broker has no producer fencing without transactions, so a produce request
that a killed relay had already sent, and that the broker appends only after the new relay read
the partition ends, would be duplicated. The lease makes this window small (the old process is
dead, its connection closed), not impossible.

The relay also records the last acknowledged position as the checkpoint `outbox:<topic>`, for
operators (`firth events relay` prints it); the topic, not the checkpoint, decides where to resume.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from firth.eventsourcing.errors import EventStoreError, LeaseHeld
from firth.eventsourcing.records import RecordedEvent
from firth.eventsourcing.store import EventStore, Lease

log = logging.getLogger("firth.eventsourcing.outbox")

HEADER_TYPE = "event-type"
HEADER_POSITION = "position"
HEADER_EVENT_ID = "event-id"
HEADER_VERSION = "stream-version"
HEADER_RECORDED_AT = "recorded-at"
HEADER_METADATA = "metadata"
LEASE_PREFIX = "outbox:"

FINAL_FLUSH_TIMEOUT = 5.0  # seconds a stopping relay waits for in-flight records

# The producer settings exactly-once depends on; callers may add others but not change these.
REQUIRED_PRODUCER_CONFIG: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "enable.gapless.guarantee": True,
}


class RelayError(EventStoreError):
    """The relay stopped: a delivery failed, the topic holds foreign records, or Kafka is away."""

    code = "relay-failed"


def partition_for(stream_id: str, partitions: int) -> int:
    """The partition of a stream's events: crc32 of the UTF-8 stream id, modulo `partitions`."""
    return zlib.crc32(stream_id.encode()) % partitions


Headers = list[tuple[str, str | bytes | None]]


def encode_record(event: RecordedEvent) -> tuple[bytes, bytes, Headers]:
    """(key, value, headers) of the record that carries `event`."""
    headers: Headers = [
        (HEADER_TYPE, event.type.encode()),
        (HEADER_POSITION, str(event.position).encode()),
        (HEADER_EVENT_ID, str(event.event_id).encode()),
        (HEADER_VERSION, str(event.version).encode()),
        (HEADER_RECORDED_AT, event.recorded_at.isoformat().encode()),
    ]
    if event.metadata:
        headers.append(
            (HEADER_METADATA, json.dumps(event.metadata, separators=(",", ":")).encode())
        )
    value = json.dumps(event.data, separators=(",", ":"), ensure_ascii=False).encode()
    return event.stream_id.encode(), value, headers


def header(headers: Any, name: str) -> bytes | None:
    """The value of header `name` in a confluent-kafka header list (None if absent)."""
    for key, value in headers or ():
        if key == name:
            return value if isinstance(value, bytes) or value is None else str(value).encode()
    return None


@dataclass
class RelayStats:
    published: int = 0
    skipped: int = 0
    resumed_after: dict[int, int] = field(default_factory=dict)
    last_position: int = 0


class OutboxRelay:
    """Publishes a store's events to `topic` on the Kafka cluster at `bootstrap`."""

    def __init__(
        self,
        store: EventStore,
        bootstrap: str,
        topic: str,
        *,
        partitions: int = 1,
        batch_size: int = 1000,
        producer_config: dict[str, Any] | None = None,
        timeout: float = 30.0,
        standby: bool = False,
    ) -> None:
        self.store = store
        self.bootstrap = bootstrap
        self.topic = topic
        self.create_partitions = partitions
        self.batch_size = batch_size
        self.timeout = timeout
        self.producer_config = {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            **(producer_config or {}),
            **REQUIRED_PRODUCER_CONFIG,
        }
        self.standby = standby
        self.standby_interval = 0.2
        self.stats = RelayStats()
        self.checkpoint_name = LEASE_PREFIX + topic

    # -- start-up: the topic decides where to resume ------------------------------------------

    def _ensure_topic(self) -> int:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        metadata = admin.list_topics(timeout=self.timeout)
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None:
            futures = admin.create_topics(
                [NewTopic(self.topic, num_partitions=self.create_partitions, replication_factor=1)],
                operation_timeout=self.timeout,
            )
            try:
                futures[self.topic].result(self.timeout)
            except Exception as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise RelayError(f"cannot create topic {self.topic!r}: {exc}") from exc
            deadline = time.monotonic() + self.timeout
            while True:
                topic = admin.list_topics(self.topic, timeout=self.timeout).topics.get(self.topic)
                if topic is not None and topic.error is None and topic.partitions:
                    break
                if time.monotonic() > deadline:
                    raise RelayError(f"topic {self.topic!r} did not appear")
                time.sleep(0.05)
        return len(topic.partitions)

    def published_positions(self, partitions: int) -> dict[int, int]:
        """The highest event position each partition holds (0 for an empty partition)."""
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"firth-outbox-probe-{self.topic}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        try:
            last: dict[int, int] = {}
            for partition in range(partitions):
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(self.topic, partition), timeout=self.timeout
                )
                if high <= low:
                    last[partition] = 0
                    continue
                consumer.assign([TopicPartition(self.topic, partition, high - 1)])
                deadline = time.monotonic() + self.timeout
                while True:
                    message = consumer.poll(1.0)
                    if (
                        message is not None
                        and message.error() is None
                        and (message.offset() or 0) >= high - 1
                    ):
                        break
                    if time.monotonic() > deadline:
                        raise RelayError(
                            f"could not read the last record of {self.topic}/{partition}"
                        )
                position = header(message.headers(), HEADER_POSITION)
                if position is None:
                    raise RelayError(
                        f"{self.topic}/{partition} offset {message.offset()} has no {HEADER_POSITION!r} "
                        "header: the topic holds records this relay did not write"
                    )
                last[partition] = int(position)
            return last
        finally:
            consumer.close()

    def _acquire_lease(self, stop: threading.Event) -> Lease | None:
        """The relay's lease; in standby mode wait for it (None if `stop` came first)."""
        while True:
            try:
                return self.store.acquire_lease(LEASE_PREFIX + self.topic)
            except LeaseHeld:
                if not self.standby:
                    raise
                log.info("another relay to %s is active; standing by", self.topic)
            if stop.wait(self.standby_interval):
                return None

    # -- publishing -----------------------------------------------------------------------

    def run(
        self,
        stop: threading.Event | None = None,
        *,
        until_caught_up: bool = False,
        on_batch: Callable[[RelayStats], None] | None = None,
    ) -> RelayStats:
        """Take the lease, resume from the topic, publish until `stop` is set (or, with
        `until_caught_up`, until every event stored at start-up is published)."""
        from confluent_kafka import KafkaException

        stop = stop or threading.Event()
        lease = self._acquire_lease(stop)
        if lease is None:
            return self.stats
        with lease:
            try:
                return self._publish(lease, stop, until_caught_up, on_batch)
            except KafkaException as exc:
                raise RelayError(f"relay to {self.topic} at {self.bootstrap}: {exc}") from exc

    def _publish(
        self,
        lease: Lease,
        stop: threading.Event,
        until_caught_up: bool,
        on_batch: Callable[[RelayStats], None] | None,
    ) -> RelayStats:
        """The relay's body, holding the lease."""
        from confluent_kafka import Producer

        partitions = self._ensure_topic()
        last = self.published_positions(partitions)
        self.stats.resumed_after = dict(last)
        next_position = min(last.values()) + 1
        log.info("relay to %s resumes at position %d (%s)", self.topic, next_position, last)
        producer = Producer(self.producer_config)
        failures: list[str] = []

        def delivered(error: Any, message: Any) -> None:
            if error is not None:
                failures.append(f"{message.topic()}/{message.partition()}: {error}")

        target = self.store.head_position() if until_caught_up else None
        subscription = self.store.subscribe(from_position=next_position)
        try:
            while not stop.is_set():
                if target is not None and next_position > target:
                    break
                lease.check()  # a relay whose lease lapsed must stop: another may be starting
                first = subscription.next(timeout=0.2)
                if first is None:
                    continue
                batch = [first]
                while len(batch) < self.batch_size:
                    more = subscription.next(timeout=0)
                    if more is None:
                        break
                    batch.append(more)
                for event in batch:
                    partition = partition_for(event.stream_id, partitions)
                    if event.position <= last[partition]:
                        self.stats.skipped += 1
                        continue
                    key, value, headers = encode_record(event)
                    while True:
                        try:
                            producer.produce(
                                self.topic,
                                value,
                                key,
                                partition=partition,
                                headers=headers,
                                on_delivery=delivered,
                            )
                            break
                        except BufferError:  # the local queue is full: let it drain
                            producer.poll(0.1)
                    self.stats.published += 1
                remaining = producer.flush(self.timeout)
                if failures or remaining:
                    raise RelayError(
                        f"delivery to {self.topic} failed ({remaining} unacknowledged): "
                        + "; ".join(failures[:3])
                    )
                next_position = batch[-1].position + 1
                self.stats.last_position = batch[-1].position
                self.store.set_checkpoint(self.checkpoint_name, batch[-1].position)
                if on_batch is not None:
                    on_batch(self.stats)
        finally:
            subscription.close()
            producer.flush(min(self.timeout, FINAL_FLUSH_TIMEOUT))
        return self.stats
