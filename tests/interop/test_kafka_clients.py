"""Stock Kafka clients against a live Firth: produce, consume, admin, offsets by timestamp.

Every client (confluent-kafka, kafka-python, aiokafka) produces keyed messages with headers and
explicit timestamps, in every compression codec, to a multi-partition topic, and reads them back
with no consumer group; keys, values, headers, timestamps and per-partition order must equal
what was sent, and every message must be read from the partition and offset its delivery report
named. kcat does the same through its command line.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)

from firth.testing import running_broker

from .kafka_clients import CLIENTS, CODECS, Consumed, Message, kcat, kcat_available

PARTITIONS = 3
COUNT = 60


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    with running_broker() as running:
        yield running.bootstrap


@pytest.fixture(scope="module")
def admin(broker: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker})


def create_topic(
    admin: AdminClient, name: str, partitions: int = PARTITIONS, **config: str
) -> None:
    futures = admin.create_topics([NewTopic(name, partitions, 1, config=config)])
    for future in futures.values():
        future.result(15)


def make_messages(tag: str, count: int = COUNT) -> list[Message]:
    base = 1_700_000_000_000
    return [
        Message(
            key=f"key-{i % 11}".encode(),
            value=f"{tag}-value-{i}-".encode() * (1 + i % 5),
            headers=(("seq", str(i).encode()), ("tag", tag.encode())),
            timestamp_ms=base + i * 7,
        )
        for i in range(count)
    ]


def check_round_trip(
    sent: list[Message], placed: list[tuple[int, int]], got: list[Consumed]
) -> None:
    assert len(placed) == len(sent)
    assert len(got) == len(sent), f"read {len(got)} of {len(sent)}"
    by_position = {(c.partition, c.offset): c for c in got}
    assert len(by_position) == len(got), "a message was read twice"
    for message, position in zip(sent, placed, strict=True):
        consumed = by_position[position]
        assert consumed.key == message.key
        assert consumed.value == message.value
        assert consumed.headers == message.headers
        assert consumed.timestamp_ms == message.timestamp_ms
    # Per-partition order: the offsets a partition assigned follow the send order.
    per_partition: dict[int, list[int]] = defaultdict(list)
    for position in placed:
        per_partition[position[0]].append(position[1])
    for offsets in per_partition.values():
        assert offsets == sorted(offsets)
    # Same keys always land in the same partition.
    key_partition: dict[bytes, int] = {}
    for message, (partition, _) in zip(sent, placed, strict=True):
        assert key_partition.setdefault(message.key, partition) == partition


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("client", CLIENTS, ids=lambda c: c.name)
def test_round_trip_every_client_and_codec(broker: str, admin: AdminClient, client, codec: str):  # type: ignore[no-untyped-def]
    topic = f"rt-{client.name}-{codec}"
    create_topic(admin, topic)
    sent = make_messages(topic)
    placed = client.produce(broker, topic, sent, codec)
    assert {p for p, _ in placed} == set(range(PARTITIONS)), "keys should spread over partitions"
    got = client.consume(broker, topic, PARTITIONS, len(sent))
    check_round_trip(sent, placed, got)


@pytest.mark.parametrize("reader", CLIENTS, ids=lambda c: c.name)
@pytest.mark.parametrize("writer", CLIENTS, ids=lambda c: c.name)
def test_clients_read_each_others_batches(broker: str, admin: AdminClient, writer, reader):  # type: ignore[no-untyped-def]
    topic = f"cross-{writer.name}-{reader.name}"
    create_topic(admin, topic)
    sent = make_messages(topic, 30)
    placed = writer.produce(broker, topic, sent, "lz4")
    check_round_trip(sent, placed, reader.consume(broker, topic, PARTITIONS, len(sent)))


@pytest.mark.skipif(not kcat_available(), reason="kcat is not installed (.ci/run installs it)")
@pytest.mark.parametrize("codec", CODECS)
def test_kcat_round_trip(broker: str, admin: AdminClient, codec: str) -> None:
    topic = f"kcat-{codec}"
    create_topic(admin, topic)
    lines = [f"k{i % 5}:v{i}" for i in range(40)]
    kcat(
        "-b", broker, "-P", "-t", topic, "-K:", "-z", codec, "-H", "origin=kcat",
        input="\n".join(lines).encode() + b"\n",
    )  # fmt: skip
    out = kcat("-b", broker, "-C", "-t", topic, "-e", "-q", "-f", "%p|%o|%k|%s|%h\n")
    rows = [line.split("|") for line in out.decode().splitlines()]
    assert sorted(f"{k}:{v}" for _, _, k, v, _ in rows) == sorted(lines)
    assert all(h == "origin=kcat" for *_, h in rows)
    for partition in {p for p, *_ in rows}:
        values = [int(v[1:]) for p, _, _, v, _ in rows if p == partition]
        assert values == sorted(values), "per-partition order"


def test_admin_create_describe_alter_delete(broker: str, admin: AdminClient) -> None:
    create_topic(admin, "admin-topic", 2, **{"retention.ms": "3600000"})
    metadata = admin.list_topics(timeout=10)
    assert len(metadata.topics["admin-topic"].partitions) == 2

    resource = ConfigResource(ConfigResource.Type.TOPIC, "admin-topic")
    configs = admin.describe_configs([resource])[resource].result(10)
    assert configs["retention.ms"].value == "3600000"
    assert configs["segment.bytes"].value == str(1 << 30)

    resource.add_incremental_config(
        ConfigEntry("max.message.bytes", "2000", incremental_operation=AlterConfigOpType.SET)
    )
    admin.incremental_alter_configs([resource])[resource].result(10)
    configs = admin.describe_configs([ConfigResource("topic", "admin-topic")])
    assert next(iter(configs.values())).result(10)["max.message.bytes"].value == "2000"

    bad = ConfigResource(ConfigResource.Type.TOPIC, "admin-topic")
    bad.add_incremental_config(
        ConfigEntry("no.such.config", "1", incremental_operation=AlterConfigOpType.SET)
    )
    with pytest.raises(Exception, match="unsupported topic config"):
        admin.incremental_alter_configs([bad])[bad].result(10)

    admin.create_partitions([NewPartitions("admin-topic", 4)])["admin-topic"].result(10)
    assert len(admin.list_topics(timeout=10).topics["admin-topic"].partitions) == 4
    with pytest.raises(Exception, match="must be larger"):
        admin.create_partitions([NewPartitions("admin-topic", 3)])["admin-topic"].result(10)

    with pytest.raises(Exception, match="already exists"):
        create_topic(admin, "admin-topic")
    with pytest.raises(Exception, match="replication factor"):
        admin.create_topics([NewTopic("rf3", 1, 3)])["rf3"].result(10)

    admin.delete_topics(["admin-topic"])["admin-topic"].result(10)
    deadline = time.monotonic() + 10
    while "admin-topic" in admin.list_topics(timeout=10).topics and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "admin-topic" not in admin.list_topics(timeout=10).topics


def test_kafka_python_admin(broker: str) -> None:
    from kafka.admin import ConfigResource as KConfigResource
    from kafka.admin import ConfigResourceType, KafkaAdminClient
    from kafka.admin import NewTopic as KNewTopic

    client = KafkaAdminClient(bootstrap_servers=broker)
    try:
        client.create_topics(
            [KNewTopic("kp-admin", 2, 1, topic_configs={"segment.bytes": "1048576"})]
        )
        assert "kp-admin" in client.list_topics()
        described = client.describe_configs([KConfigResource(ConfigResourceType.TOPIC, "kp-admin")])
        text = repr(described)
        assert "segment.bytes" in text and "1048576" in text
        client.delete_topics(["kp-admin"])
        assert "kp-admin" not in client.list_topics()
    finally:
        client.close()


def test_offsets_for_times_and_watermarks(broker: str, admin: AdminClient) -> None:
    from confluent_kafka import Consumer

    create_topic(admin, "by-time", 1)
    sent = make_messages("by-time", 40)  # timestamps base + 7*i
    placed = CLIENTS[0].produce(broker, "by-time", sent, "zstd")
    consumer = Consumer({"bootstrap.servers": broker, "group.id": "unused"})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition("by-time", 0), timeout=10)
        assert (low, high) == (0, 40)
        target = sent[17].timestamp_ms - 3  # between message 16 and 17
        [found] = consumer.offsets_for_times([TopicPartition("by-time", 0, target)], timeout=10)
        assert found.offset == placed[17][1]
        [exact] = consumer.offsets_for_times(
            [TopicPartition("by-time", 0, sent[5].timestamp_ms)], timeout=10
        )
        assert exact.offset == placed[5][1]
        [after] = consumer.offsets_for_times(
            [TopicPartition("by-time", 0, sent[-1].timestamp_ms + 1)], timeout=10
        )
        assert after.offset == -1  # no such record: Kafka answers -1 (end)
    finally:
        consumer.close()


def test_auto_create_on_metadata(broker: str, admin: AdminClient) -> None:
    placed = CLIENTS[1].produce(broker, "auto-created", make_messages("auto", 5), "none")
    assert len(placed) == 5
    assert "auto-created" in admin.list_topics(timeout=10).topics


def test_idempotent_producer_retry_is_not_duplicated(broker: str, admin: AdminClient) -> None:
    """A retried batch (same producer id, epoch and sequence) gets its first offset back."""
    from .conftest_broker import RawClient, init_producer_id, produce_raw, values_batch

    create_topic(admin, "idem", 1)
    # Raw requests keep the test independent of any client's own retry logic.
    with RawClient(broker) as client:
        pid, epoch = init_producer_id(client)
        batch = values_batch([b"v"], producer_id=pid, producer_epoch=epoch, base_sequence=0)
        first = produce_raw(client, "idem", 0, batch)
        retry = produce_raw(client, "idem", 0, batch)
    assert first == retry == (0, 0)  # (error, base offset): the retry gets offset 0 again
    got = CLIENTS[0].consume(broker, "idem", 1, 1, timeout=5)
    assert [(c.offset, c.value) for c in got] == [(0, b"v")]
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": broker, "group.id": "unused"})
    try:
        assert consumer.get_watermark_offsets(TopicPartition("idem", 0), timeout=10) == (0, 1)
    finally:
        consumer.close()


def test_admin_list_offsets_earliest_latest_max_timestamp(broker: str, admin: AdminClient) -> None:
    from confluent_kafka.admin import OffsetSpec

    create_topic(admin, "max-ts", 1)
    sent = make_messages("max-ts", 20)
    # The largest timestamp sits in the middle of the stream.
    sent[12] = Message(sent[12].key, sent[12].value, sent[12].headers, 1_900_000_000_000)
    placed = CLIENTS[0].produce(broker, "max-ts", sent, "gzip")
    tp = TopicPartition("max-ts", 0)
    answers = {}
    for label, spec in (
        ("earliest", OffsetSpec.earliest()),
        ("latest", OffsetSpec.latest()),
        ("max", OffsetSpec.max_timestamp()),
    ):
        result = admin.list_offsets({tp: spec})[tp].result(10)
        answers[label] = (result.offset, result.timestamp)
    assert answers["earliest"][0] == 0
    assert answers["latest"][0] == 20
    assert answers["max"] == (placed[12][1], 1_900_000_000_000)
