"""Helpers for the tests that drive a live broker (started with `firth.testing.broker_process`).

`RawClient` speaks the Kafka protocol over a plain socket for the tests that must send what no
well-behaved client would: request bodies are built from kio's schema classes, record batches
with `firth.kafka.protocol.records.build_batch`, and the raw bytes can be bent at will.

The rest are small conveniences over confluent-kafka (create a topic, alter its configs, read a
partition from the beginning to its end), `wait_for`, which polls a condition with a deadline
instead of sleeping and hoping, and `proc_status_kib`, which reads a broker process's memory.
"""

from __future__ import annotations

import io
import socket
import struct
import time
from collections.abc import Callable, Mapping
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader, entity_writer

from firth.kafka.protocol.codec import build_entity
from firth.kafka.protocol.header import (
    RequestHeader,
    encode_request_header,
    response_header_version,
)
from firth.kafka.protocol.records import Record, build_batch


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.02
) -> Any:
    """Poll `condition` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def proc_status_kib(pid: int, field: str) -> int:
    """A memory figure of a process from /proc (VmRSS now, VmHWM the peak), in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


# --- raw protocol client ----------------------------------------------------------------------

_SIZE = struct.Struct(">i")


class ConnectionClosed(Exception):
    """The broker closed the connection."""


def encode_request(
    api_key: int, version: int, fields: Mapping[str, Any], correlation_id: int = 1
) -> bytes:
    """A complete size-prefixed request frame; the body built from kio's schema class."""
    header = RequestHeader(api_key, version, correlation_id, "firth-raw-test")
    entity = build_entity(load_request_schema(api_key, version), fields)
    body = io.BytesIO()
    entity_writer(type(entity))(body, entity)
    payload = encode_request_header(header) + body.getvalue()
    return _SIZE.pack(len(payload)) + payload


class RawClient:
    """One Kafka connection over a blocking socket; requests built from kio schema classes."""

    def __init__(self, bootstrap: str, timeout: float = 10.0) -> None:
        host, _, port = bootstrap.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.correlation_id = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def encode_request(
        self,
        api_key: int,
        version: int,
        fields: Mapping[str, Any],
        correlation_id: int | None = None,
    ) -> bytes:
        """A complete size-prefixed request frame (next correlation id unless given)."""
        if correlation_id is None:
            self.correlation_id += 1
            correlation_id = self.correlation_id
        return encode_request(api_key, version, fields, correlation_id)

    def _recv_exact(self, size: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < size:
            try:
                chunk = self.sock.recv(size - len(chunks))
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise ConnectionClosed(f"closed after {len(chunks)} of {size} bytes")
            chunks += chunk
        return bytes(chunks)

    def read_frame(self) -> bytes:
        (size,) = _SIZE.unpack(self._recv_exact(4))
        return self._recv_exact(size)

    def read_response(self, api_key: int, version: int) -> tuple[int, Any]:
        """(correlation id, decoded kio response entity) of the next response frame."""
        frame = self.read_frame()
        (correlation_id,) = _SIZE.unpack_from(frame, 0)
        pos = 4 if response_header_version(api_key, version) == 0 else 5
        entity, _ = entity_reader(load_response_schema(api_key, version))(frame, pos)
        return correlation_id, entity

    def request(self, api_key: int, version: int, fields: Mapping[str, Any]) -> Any:
        self.send_raw(self.encode_request(api_key, version, fields))
        correlation_id, entity = self.read_response(api_key, version)
        assert correlation_id == self.correlation_id, (correlation_id, self.correlation_id)
        return entity

    def unread_by_peer(self) -> int:
        """Bytes we sent that sit in the peer's receive queue, not yet read by the broker.

        From /proc/net/tcp (IPv4 loopback): the peer's socket is the entry whose local address is
        our remote one and whose remote address is our local one; its rx_queue is the count.
        """
        local = _proc_net_address(self.sock.getsockname())
        remote = _proc_net_address(self.sock.getpeername())
        with open("/proc/net/tcp") as table:
            for line in table.readlines()[1:]:
                fields = line.split()
                if fields[1] == remote and fields[2] == local:
                    return int(fields[4].split(":")[1], 16)
        raise AssertionError(f"no /proc/net/tcp entry for the peer of {local}")

    def wait_closed(self, timeout: float = 10.0) -> bool:
        """True once the peer has closed the connection (EOF or reset) within `timeout`.

        Bytes the broker sends before closing are read and discarded.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except (ConnectionResetError, BrokenPipeError):
                return True
            except TimeoutError:
                return False
        return False


def _proc_net_address(address: tuple[str, int]) -> str:
    host, port = address[:2]
    packed = socket.inet_aton(host)
    return f"{int.from_bytes(packed, 'little'):08X}:{port:04X}"


PRODUCE_VERSION = 7


def produce_fields(topic: str, partition: int, records: bytes, acks: int = -1) -> dict[str, Any]:
    return {
        "transactional_id": None,
        "acks": acks,
        "timeout": 30_000,
        "topic_data": [
            {
                "name": topic,
                "partition_data": [{"index": partition, "records": records}],
            }
        ],
    }


def produce_raw(
    client: RawClient, topic: str, partition: int, records: bytes, acks: int = -1
) -> tuple[int, int]:
    """Send one Produce v7 request with `records` as the partition's data: (error, base offset)."""
    response = client.request(0, PRODUCE_VERSION, produce_fields(topic, partition, records, acks))
    part = response.responses[0].partition_responses[0]
    return int(part.error_code), int(part.base_offset)


def values_batch(values: list[bytes], **kwargs: Any) -> bytes:
    """A v2 batch holding one record per value (no keys), CRC stamped."""
    records = [Record(i, 0, None, value) for i, value in enumerate(values)]
    return build_batch(records, base_timestamp=int(time.time() * 1000), **kwargs)


def fetch_fields(topic: str, partition: int, offset: int, max_wait_ms: int) -> dict[str, Any]:
    """Fields of a Fetch v4-v11 request for one partition (no session, read uncommitted)."""
    return {
        "replica_id": -1,
        "max_wait": max_wait_ms,
        "min_bytes": 1,
        "max_bytes": 1 << 20,
        "isolation_level": 0,
        "session_id": 0,
        "session_epoch": -1,
        "topics": [
            {
                "topic": topic,
                "partitions": [
                    {
                        "partition": partition,
                        "current_leader_epoch": -1,
                        "fetch_offset": offset,
                        "log_start_offset": -1,
                        "partition_max_bytes": 1 << 20,
                    }
                ],
            }
        ],
        "forgotten_topics_data": [],
        "rack_id": "",
    }


def init_producer_id(client: RawClient) -> tuple[int, int]:
    """InitProducerId v1 for a non-transactional producer: (producer id, epoch)."""
    response = client.request(22, 1, {"transactional_id": None, "transaction_timeout": 60_000})
    assert int(response.error_code) == 0, response
    return int(response.producer_id), int(response.producer_epoch)


def list_offsets(client: RawClient, topic: str, partition: int) -> tuple[int, int]:
    """(log start offset, log end offset) of one partition, by ListOffsets v5."""
    found = []
    for timestamp in (-2, -1):
        response = client.request(
            2,
            5,
            {
                "replica_id": -1,
                "isolation_level": 0,
                "topics": [
                    {
                        "name": topic,
                        "partitions": [{"partition_index": partition, "timestamp": timestamp}],
                    }
                ],
            },
        )
        part = response.topics[0].partitions[0]
        assert int(part.error_code) == 0, part
        found.append(int(part.offset))
    return found[0], found[1]


# --- confluent-kafka conveniences ------------------------------------------------------------


def create_topic(
    bootstrap: str, name: str, partitions: int, config: Mapping[str, str] | None = None
) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=dict(config or {}))]
    )
    futures[name].result(30)


def alter_topic_configs(bootstrap: str, name: str, config: Mapping[str, str]) -> None:
    """IncrementalAlterConfigs SET of each key."""
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ResourceType,
    )

    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(
        ResourceType.TOPIC,
        name,
        incremental_configs=[
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
            for key, value in config.items()
        ],
    )
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


def describe_topic_configs(bootstrap: str, name: str) -> dict[str, str]:
    from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, name)])
    entries = next(iter(futures.values())).result(30)
    return {key: entry.value for key, entry in entries.items()}


def topic_partition_counts(bootstrap: str) -> dict[str, int]:
    from confluent_kafka.admin import AdminClient

    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30)
    return {name: len(topic.partitions) for name, topic in metadata.topics.items()}


def read_partition(
    bootstrap: str, topic: str, partition: int, timeout: float = 30.0
) -> list[tuple[int, bytes | None]]:
    """Every (offset, value) of a partition from its start to its end at the time of the call."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "firth-test-unused",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 50,
        }
    )
    out: list[tuple[int, bytes | None]] = []
    try:
        _low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=timeout
        )
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout
        while (not out or out[-1][0] < high - 1) and high > 0:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"read {len(out)} records of {topic}[{partition}] before the deadline; "
                    f"end offset {high}, last read {out[-1][0] if out else None}"
                )
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() == -191:  # _PARTITION_EOF
                    continue
                raise AssertionError(f"consume error: {error}")
            offset = msg.offset()
            assert offset is not None
            if offset < high:
                out.append((offset, msg.value()))
    finally:
        consumer.close()
    return out


def produce_and_consume_one(bootstrap: str, topic: str, value: bytes) -> None:
    """A well-behaved confluent-kafka client writes one message and reads it back."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 0}
    )
    delivered: list[tuple[int, int]] = []
    errors: list[str] = []

    def on_delivery(err, msg):  # type: ignore[no-untyped-def]
        if err is not None:
            errors.append(str(err))
        else:
            delivered.append((msg.partition(), msg.offset()))

    producer.produce(topic, value=value, partition=0, on_delivery=on_delivery)
    assert producer.flush(20) == 0, "the good client's message was not delivered"
    assert not errors, errors
    _partition, offset = delivered[0]
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "firth-test-unused",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 50,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, offset)])
        deadline = time.monotonic() + 20
        while True:
            assert time.monotonic() < deadline, "the good client could not read its message back"
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            assert (msg.offset(), msg.value()) == (offset, value)
            return
    finally:
        consumer.close()
