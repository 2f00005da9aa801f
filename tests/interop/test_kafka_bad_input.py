"""Bad input over raw sockets against one live broker: Kafka's error or a closed connection.

Each case sends something no well-behaved client would and checks the answer: a closed
connection for what cannot be parsed (garbage, impossible frame sizes, unknown API keys or
versions), Kafka's error code for a well-formed request carrying a bad batch. After every case a
well-behaved confluent-kafka client must still produce and read back a message, and at the end
the partitions hold only the good records: every bad batch carries values starting with "BAD",
every good one values starting with "ok-".
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from firth.kafka.protocol.records import Record, build_batch
from firth.testing import BrokerProcess, broker_process
from firth.wire.recordbatch import CRC_OFFSET, compute_crc

from .conftest_broker import (
    RawClient,
    alter_topic_configs,
    create_topic,
    encode_request,
    fetch_fields,
    init_producer_id,
    list_offsets,
    proc_status_kib,
    produce_and_consume_one,
    produce_fields,
    produce_raw,
    read_partition,
    values_batch,
)

TOPIC = "bad"  # 3 partitions: the target of the bad batches
SMALL = "bad-small"  # max.message.bytes 1024
GOOD = "good"  # the well-behaved client's topic
SMALL_MAX_MESSAGE_BYTES = 1024
MAX_FRAME_BYTES = 100 * 1024 * 1024  # socket.request.max.bytes
CORRUPT_MESSAGE, MESSAGE_TOO_LARGE, UNSUPPORTED_VERSION = 2, 10, 35
OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_RECORD, UNKNOWN_TOPIC_OR_PARTITION = 45, 87, 3
MAGIC_OFFSET, RECORDS_COUNT_OFFSET = 16, 57  # in the v2 batch header


@dataclass(slots=True)
class Live:
    broker: BrokerProcess
    bootstrap: str
    acknowledged: set[bytes]  # good values the broker acknowledged


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data_dir: Path = tmp_path_factory.mktemp("bad-input") / "data"
    with broker_process(data_dir, auto_create_topics=False) as broker:
        create_topic(broker.bootstrap, TOPIC, 3)
        create_topic(broker.bootstrap, SMALL, 1)
        alter_topic_configs(
            broker.bootstrap, SMALL, {"max.message.bytes": str(SMALL_MAX_MESSAGE_BYTES)}
        )
        create_topic(broker.bootstrap, GOOD, 1)
        yield Live(broker, broker.bootstrap, set())


def _end_offset(client: RawClient, topic: str, partition: int) -> int:
    return list_offsets(client, topic, partition)[1]


def _request_header(api_key: int, version: int, correlation_id: int = 1) -> bytes:
    client_id = b"firth-bad-input"
    return struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id


def _frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def _garbage(rng: random.Random, size: int) -> bytes:
    """Random bytes whose first four do not read as a plausible pending frame size.

    A random prefix that happens to read as, say, 3 MB is not bad input but the start of a
    large request the broker rightly waits for; such draws are redrawn.
    """
    while True:
        data = rng.randbytes(size)
        (claimed,) = struct.unpack_from(">i", data)
        if not size - 4 < claimed <= MAX_FRAME_BYTES:
            return data


def _restamp_crc(batch: bytearray) -> None:
    """Recompute the CRC-32C after editing a header field the CRC covers."""
    struct.pack_into(">I", batch, CRC_OFFSET, compute_crc(batch, 0, len(batch)))


def _assert_closed(client: RawClient, what: str, timeout: float = 10.0) -> None:
    assert client.wait_closed(timeout), f"the broker kept the connection open after {what}"


# --- the cases: each sends its bad input and checks the broker's answer ------------------------


def case_garbage_bytes(live: Live) -> None:
    rng = random.Random(2)
    with RawClient(live.bootstrap) as client:
        client.send_raw(_garbage(rng, 4096))
        _assert_closed(client, "garbage bytes")


def case_garbage_request_body(live: Live) -> None:
    """A well-framed Produce v7 header followed by random bytes: closed, nothing appended."""
    rng = random.Random(3)
    with RawClient(live.bootstrap) as probe:
        ends = [_end_offset(probe, TOPIC, p) for p in range(3)]
    for _ in range(5):
        with RawClient(live.bootstrap) as client:
            client.send_raw(_frame(_request_header(0, 7) + rng.randbytes(300)))
            _assert_closed(client, "a Produce request with a garbage body")
    with RawClient(live.bootstrap) as probe:
        assert [_end_offset(probe, TOPIC, p) for p in range(3)] == ends


def case_truncated_frame_then_disconnect(live: Live) -> None:
    frame = encode_request(0, 7, produce_fields(TOPIC, 0, values_batch([b"BAD-truncated"])))
    with RawClient(live.bootstrap) as client:
        client.send_raw(frame[: len(frame) // 2])
    with RawClient(live.bootstrap) as probe:
        assert b"BAD-truncated" not in {v for _, v in read_partition(live.bootstrap, TOPIC, 0)}
        assert probe.request(18, 3, {}).error_code == 0


def case_frame_claiming_2gb(live: Live) -> None:
    peak_before = proc_status_kib(live.broker.pid, "VmHWM")
    for claimed in (0x7FFFFFFF, MAX_FRAME_BYTES + 1):
        with RawClient(live.bootstrap) as client:
            client.send_raw(struct.pack(">i", claimed) + _request_header(0, 7) + b"\x00" * 64)
            _assert_closed(client, f"a frame claiming {claimed} bytes")
    grown_mib = (proc_status_kib(live.broker.pid, "VmHWM") - peak_before) / 1024
    assert grown_mib < 32, f"the broker's peak memory grew {grown_mib:.0f} MiB"


def case_negative_size(live: Live) -> None:
    for claimed in (-1, -(2**31)):
        with RawClient(live.bootstrap) as client:
            client.send_raw(struct.pack(">i", claimed) + b"\x00" * 16)
            _assert_closed(client, f"a frame size of {claimed}")


def case_unknown_api_key(live: Live) -> None:
    for api_key in (32000, 1000, -1):
        with RawClient(live.bootstrap) as client:
            client.send_raw(_frame(_request_header(api_key, 0) + b"\x00" * 8))
            _assert_closed(client, f"unknown API key {api_key}")


def case_unknown_version_of_known_api(live: Live) -> None:
    for api_key, version in ((3, 99), (0, 13), (1, 3), (0, -1)):
        with RawClient(live.bootstrap) as client:
            client.send_raw(_frame(_request_header(api_key, version) + b"\x00" * 32))
            _assert_closed(client, f"API key {api_key} at version {version}")


def case_unknown_api_versions_version(live: Live) -> None:
    with RawClient(live.bootstrap) as client:
        supported = {
            int(a.api_key): (int(a.min_version), int(a.max_version))
            for a in client.request(18, 3, {}).api_keys
        }
        # ApiVersions v77 from a future client; the flexible header it would use.
        client.send_raw(_frame(_request_header(18, 77, 4242) + b"\x00" + b"\x00" * 6))
        correlation_id, answer = client.read_response(18, 0)
    assert correlation_id == 4242
    assert int(answer.error_code) == UNSUPPORTED_VERSION
    ranges = {int(a.api_key): (int(a.min_version), int(a.max_version)) for a in answer.api_keys}
    assert ranges == supported
    assert ranges[18][1] >= 3 and ranges[0][1] >= 7


def _bad_produce(live: Live, topic: str, partition: int, records: bytes, expected: int) -> None:
    with RawClient(live.bootstrap) as client:
        end = _end_offset(client, topic, partition)
        error, _ = produce_raw(client, topic, partition, records)
        assert error == expected
        assert _end_offset(client, topic, partition) == end, "a refused batch was stored"
        # The connection stays usable after an error answer.
        assert client.request(18, 3, {}).error_code == 0


def case_bad_crc(live: Live) -> None:
    batch = bytearray(values_batch([b"BAD-crc-0", b"BAD-crc-1"]))
    batch[-3] ^= 0x40  # inside the last record's value: covered by the CRC
    _bad_produce(live, TOPIC, 0, bytes(batch), CORRUPT_MESSAGE)


def case_over_max_message_bytes(live: Live) -> None:
    batch = values_batch([b"BAD-large-" + b"x" * 2000])
    assert len(batch) > SMALL_MAX_MESSAGE_BYTES
    _bad_produce(live, SMALL, 0, batch, MESSAGE_TOO_LARGE)
    # Just under the limit is accepted.
    with RawClient(live.bootstrap) as client:
        good = values_batch([b"ok-small-" + b"y" * 800])
        assert len(good) <= SMALL_MAX_MESSAGE_BYTES
        error, _ = produce_raw(client, SMALL, 0, good)
        assert error == 0
    live.acknowledged.add(b"ok-small-" + b"y" * 800)


def case_nonzero_base_offset(live: Live) -> None:
    _bad_produce(live, TOPIC, 1, values_batch([b"BAD-base-offset"], base_offset=7), INVALID_RECORD)


def case_client_control_batch(live: Live) -> None:
    batch = build_batch(
        [Record(0, 0, b"\x00\x00\x00\x00", b"BAD-control")],
        base_timestamp=int(time.time() * 1000),
        control=True,
    )
    _bad_produce(live, TOPIC, 1, batch, INVALID_RECORD)


def case_two_batches_in_one_partition(live: Live) -> None:
    records = values_batch([b"BAD-two-0"]) + values_batch([b"BAD-two-1"])
    _bad_produce(live, TOPIC, 2, records, INVALID_RECORD)


def case_unknown_topic_or_partition(live: Live) -> None:
    with RawClient(live.bootstrap) as client:
        for topic, partition in (("no-such-topic", 0), (TOPIC, 3), (TOPIC, -1)):
            error, _ = produce_raw(client, topic, partition, values_batch([b"BAD-unknown"]))
            assert error == UNKNOWN_TOPIC_OR_PARTITION, (topic, partition)


def case_records_count_not_matching_offsets(live: Live) -> None:
    batch = bytearray(values_batch([b"BAD-count-0", b"BAD-count-1"]))
    struct.pack_into(">i", batch, RECORDS_COUNT_OFFSET, 5)
    _restamp_crc(batch)
    _bad_produce(live, TOPIC, 0, bytes(batch), INVALID_RECORD)


def case_batch_longer_than_its_data(live: Live) -> None:
    """Kafka finds no complete batch in the partition's data: INVALID_RECORD (ProduceRequest.
    validateRecords, "must have at least one record batch")."""
    batch = values_batch([b"BAD-short-" + b"s" * 200])
    _bad_produce(live, TOPIC, 0, batch[:-50], INVALID_RECORD)


def case_batch_magic_not_2(live: Live) -> None:
    """Magic 0 or 1 in Produce v3+: INVALID_RECORD (ProduceRequest.validateRecords). A magic
    no format has: CORRUPT_MESSAGE (ByteBufferLogInputStream, "Invalid magic found")."""
    for magic, expected in ((1, INVALID_RECORD), (7, CORRUPT_MESSAGE)):
        batch = bytearray(values_batch([f"BAD-magic-{magic}".encode()]))
        batch[MAGIC_OFFSET] = magic
        _bad_produce(live, TOPIC, 0, bytes(batch), expected)


def case_sequence_gap(live: Live) -> None:
    with RawClient(live.bootstrap) as client:
        producer_id, epoch = init_producer_id(client)
        first = values_batch(
            [b"ok-idem-0", b"ok-idem-1"],
            producer_id=producer_id,
            producer_epoch=epoch,
            base_sequence=0,
        )
        assert produce_raw(client, TOPIC, 1, first)[0] == 0
        live.acknowledged.update({b"ok-idem-0", b"ok-idem-1"})
    gap = values_batch([b"BAD-gap"], producer_id=producer_id, producer_epoch=epoch, base_sequence=5)
    _bad_produce(live, TOPIC, 1, gap, OUT_OF_ORDER_SEQUENCE_NUMBER)


def case_good_and_bad_partition_in_one_request(live: Live) -> None:
    """Partitions are judged one by one: the good batch is stored, the bad one refused."""
    bad = bytearray(values_batch([b"BAD-mixed"]))
    bad[-3] ^= 0x01
    fields = produce_fields(TOPIC, 0, values_batch([b"ok-mixed"]))
    fields["topic_data"][0]["partition_data"].append({"index": 1, "records": bytes(bad)})
    with RawClient(live.bootstrap) as client:
        end = _end_offset(client, TOPIC, 1)
        response = client.request(0, 7, fields)
        answers = {
            int(p.index): int(p.error_code) for p in response.responses[0].partition_responses
        }
        assert answers == {0: 0, 1: CORRUPT_MESSAGE}
        assert _end_offset(client, TOPIC, 1) == end
    live.acknowledged.add(b"ok-mixed")


def case_acks_0_bad_batch_closes_the_connection(live: Live) -> None:
    """acks=0 gets no response, so Kafka signals a refused batch by closing the connection
    (KafkaApis.handleProduceRequest: "Closing connection due to error during produce request");
    the producer then notices, refreshes metadata and reconnects."""
    batch = bytearray(values_batch([b"BAD-acks0"]))
    batch[-3] ^= 0x01
    with RawClient(live.bootstrap) as client:
        end = _end_offset(client, TOPIC, 0)
        client.send_raw(client.encode_request(0, 7, produce_fields(TOPIC, 0, bytes(batch), 0)))
        _assert_closed(client, "an acks=0 Produce whose batch was refused", 3.0)
    with RawClient(live.bootstrap) as client:
        assert _end_offset(client, TOPIC, 0) == end
        # A good acks=0 produce keeps its connection.
        client.send_raw(
            client.encode_request(0, 7, produce_fields(TOPIC, 0, values_batch([b"ok-acks0"]), 0))
        )
        assert client.request(18, 3, {}).error_code == 0
        assert _end_offset(client, TOPIC, 0) == end + 1
    live.acknowledged.add(b"ok-acks0")


BURST = 3000


def case_disconnect_mid_pipelined_burst(live: Live) -> None:
    frames = [
        encode_request(0, 7, produce_fields(TOPIC, 2, values_batch([f"ok-burst-{i}".encode()])), i)
        for i in range(BURST)
    ]
    tail = encode_request(0, 7, produce_fields(TOPIC, 2, values_batch([b"BAD-burst-tail"])))
    stream = b"".join(frames) + tail[: len(tail) - 20]
    with socket.create_connection(tuple_address(live.bootstrap)) as sock:
        sock.sendall(stream)
        # Abortive close (RST) with every response unread.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # Whatever of the burst was stored is a prefix of it, in order, each once; the truncated
    # tail is not there.
    values = [v for _, v in read_partition(live.bootstrap, TOPIC, 2)]
    burst = [v for v in values if v is not None and v.startswith(b"ok-burst-")]
    assert burst == [f"ok-burst-{i}".encode() for i in range(len(burst))]
    assert b"BAD-burst-tail" not in values
    live.acknowledged.update(burst)


def tuple_address(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.rpartition(":")
    return host, int(port)


CASES: dict[str, Callable[[Live], None]] = {
    name.removeprefix("case_"): function
    for name, function in list(globals().items())
    if name.startswith("case_") and callable(function)
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_and_the_broker_keeps_serving(live: Live, name: str) -> None:
    CASES[name](live)
    assert live.broker.running(), live.broker.log_text()[-3000:]
    value = f"ok-after-{name}".encode()
    produce_and_consume_one(live.bootstrap, GOOD, value)


@pytest.mark.timeout(60)
def test_fifty_garbage_connections_do_not_stop_a_good_client(live: Live) -> None:
    stop = threading.Event()
    closed_counts = [0] * 50
    stuck: list[str] = []
    ready = threading.Barrier(51)

    def pester(index: int) -> None:
        rng = random.Random(1000 + index)
        ready.wait(10)
        while not stop.is_set():
            try:
                with RawClient(live.bootstrap) as client:
                    client.send_raw(_garbage(rng, rng.randrange(8, 8192)))
                    if client.wait_closed(10):
                        closed_counts[index] += 1
                    else:
                        stuck.append(f"connection {index} left open after garbage")
                        return
            except (ConnectionResetError, BrokenPipeError):
                closed_counts[index] += 1

    threads = [threading.Thread(target=pester, args=(i,), daemon=True) for i in range(50)]
    for thread in threads:
        thread.start()
    ready.wait(10)
    try:
        started = time.monotonic()
        for round_ in range(3):
            produce_and_consume_one(live.bootstrap, GOOD, f"ok-during-garbage-{round_}".encode())
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        for thread in threads:
            thread.join(20)
    assert not stuck, stuck
    assert all(count >= 1 for count in closed_counts), closed_counts
    assert elapsed < 30, f"the good client needed {elapsed:.1f}s under garbage load"
    assert live.broker.running()


@pytest.mark.timeout(60)
def test_nothing_bad_was_stored(live: Live) -> None:
    """Runs after the cases above (file order): only good records are in any partition."""
    stored: set[bytes] = set()
    for topic, partitions in ((TOPIC, 3), (SMALL, 1)):
        for partition in range(partitions):
            values = [v or b"" for _, v in read_partition(live.bootstrap, topic, partition)]
            bad = [v[:40] for v in values if not v.startswith(b"ok-")]
            assert not bad, f"{topic}[{partition}] holds bad records: {bad[:5]}"
            assert len(values) == len(set(values)), f"{topic}[{partition}] holds duplicates"
            stored.update(values)
    missing = live.acknowledged - stored
    assert not missing, f"acknowledged but not stored: {sorted(missing)[:5]}"


@pytest.mark.timeout(60)
def test_a_client_that_never_reads_its_responses_cannot_exhaust_memory(tmp_path: Path) -> None:
    """Pipelined fetches whose ~1 MiB responses are never read must not pile up in the broker.

    Kafka reads the next request of a connection only once the previous response is sent, so
    such a client costs it about one response. Firth may keep more in flight, but the memory a
    single connection can pin has to stay bounded (here: well under the ~300 MiB the responses
    add up to).
    """
    requests, limit_mib = 300, 128
    with broker_process(tmp_path / "data", auto_create_topics=False) as broker:
        create_topic(broker.bootstrap, "slow", 1)
        with RawClient(broker.bootstrap) as client:
            for _ in range(16):
                error, _ = produce_raw(client, "slow", 0, values_batch([b"z" * 4000] * 16))
                assert error == 0
        fetch = fetch_fields("slow", 0, 0, 0)
        burst = b"".join(encode_request(1, 11, fetch, i) for i in range(requests))
        baseline = proc_status_kib(broker.pid, "VmHWM")
        sock = socket.create_connection(tuple_address(broker.bootstrap))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            sock.sendall(burst)
            deadline = time.monotonic() + 4
            grown_mib = 0.0
            while time.monotonic() < deadline and grown_mib <= limit_mib:
                grown_mib = (proc_status_kib(broker.pid, "VmHWM") - baseline) / 1024
                time.sleep(0.05)
            assert grown_mib <= limit_mib, (
                f"one connection that does not read made the broker grow {grown_mib:.0f} MiB"
            )
        finally:
            sock.close()
        produce_and_consume_one(broker.bootstrap, "slow", b"ok-after-slow-reader")
