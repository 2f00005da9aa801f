"""Fuzz the Kafka codec's input path for one invariant: a value, or a protocol error.

Random byte streams and mutated valid requests go through FrameReader -> parse_request_header
-> decode_request (and decode_produce + validate_produce_records for Produce). Anything other
than a decoded value, `ProtocolError` (or `KafkaError` from batch validation) is a bug: it would
crash a connection handler instead of answering or closing cleanly.
"""

from __future__ import annotations

import datetime
import io
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.index import load_request_schema
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.create_topics.v7 import request as create_topics
from kio.schema.fetch.v12 import request as fetch12
from kio.schema.metadata.v12 import request as metadata12
from kio.schema.produce.v3 import request as produce3
from kio.schema.produce.v9 import request as produce9
from kio.serial import entity_writer
from kio.static.primitive import Records, i16, i32, i32Timedelta, i64, i64Timedelta

from firth.kafka.protocol.apis import ALL_API_RANGES
from firth.kafka.protocol.codec import decode_request
from firth.kafka.protocol.errors import FrameError, KafkaError, ProtocolError
from firth.kafka.protocol.framing import FrameReader, frame
from firth.kafka.protocol.header import RequestHeader, encode_request_header, parse_request_header
from firth.kafka.protocol.produce import decode_produce
from firth.kafka.protocol.records import Record, build_batch
from firth.kafka.protocol.validation import validate_produce_records

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
BATCH = build_batch([Record(0, 0, b"k", b"v" * 20, (("h", b"1"),))], base_timestamp=1)


def _request(api_key: int, version: int, entity: Any) -> bytes:
    body = io.BytesIO()
    entity_writer(type(entity))(body, entity)
    header = encode_request_header(RequestHeader(api_key, version, 99, "fuzz"))
    return frame(header + body.getvalue())


def _ms(value: int) -> i32Timedelta:
    return i32Timedelta.parse(datetime.timedelta(milliseconds=value))


SEEDS = [
    _request(18, 3, ApiVersionsRequest(client_software_name="f", client_software_version="1")),
    _request(
        3,
        12,
        metadata12.MetadataRequest(
            topics=(metadata12.MetadataRequestTopic(topic_id=None, name="t"),),
            allow_auto_topic_creation=True,
            include_topic_authorized_operations=False,
        ),
    ),
    _request(
        0,
        3,
        produce3.ProduceRequest(
            transactional_id=None,
            acks=i16(-1),
            timeout=_ms(1000),
            topic_data=(
                produce3.TopicProduceData(
                    name="t",
                    partition_data=(
                        produce3.PartitionProduceData(index=i32(0), records=Records(BATCH)),
                    ),
                ),
            ),
        ),
    ),
    _request(
        0,
        9,
        produce9.ProduceRequest(
            transactional_id="tx",
            acks=i16(1),
            timeout=_ms(1000),
            topic_data=(
                produce9.TopicProduceData(
                    name="t",
                    partition_data=(
                        produce9.PartitionProduceData(index=i32(1), records=Records(BATCH)),
                    ),
                ),
            ),
        ),
    ),
    _request(
        1,
        12,
        fetch12.FetchRequest(
            max_wait=_ms(500),
            min_bytes=i32(1),
            max_bytes=i32(1 << 20),
            isolation_level=0,
            topics=(
                fetch12.FetchTopic(
                    topic="t",
                    partitions=(
                        fetch12.FetchPartition(
                            partition=i32(0),
                            fetch_offset=i64(0),
                            partition_max_bytes=i32(1 << 20),
                        ),
                    ),
                ),
            ),
            forgotten_topics_data=(),
            rack_id="",
        ),
    ),
    _request(
        19,
        7,
        create_topics.CreateTopicsRequest(
            topics=(
                create_topics.CreatableTopic(
                    name="t",
                    num_partitions=i32(3),
                    replication_factor=i16(1),
                    assignments=(),
                    configs=(create_topics.CreatableTopicConfig(name="a", value="b"),),
                ),
            ),
            timeout=_ms(1000),
            validate_only=False,
        ),
    ),
]
STREAM = b"".join(SEEDS)


def serve(stream: bytes, chunk: int) -> int:
    """Run the decode path over `stream` fed in `chunk`-byte pieces; return frames decoded."""
    reader = FrameReader(max_frame_bytes=1 << 16)
    decoded = 0
    try:
        for start in range(0, len(stream), chunk):
            reader.feed(stream[start : start + chunk])
            while (data := reader.next_frame()) is not None:
                try:
                    header, offset = parse_request_header(data)
                    decode_request(header, data, offset)
                    if header.api_key == 0:
                        produce = decode_produce(header, data, offset)
                        for topic in produce.topics:
                            for partition in topic.partitions:
                                try:
                                    validate_produce_records(partition.records, 1 << 20)
                                except KafkaError:
                                    pass  # a batch Kafka refuses: answered with its error code
                    decoded += 1
                except ProtocolError as exc:
                    assert not isinstance(exc, FrameError)
    except FrameError:
        pass
    return decoded


def test_seed_stream_decodes_whole() -> None:
    assert serve(STREAM, len(STREAM)) == len(SEEDS)
    assert serve(STREAM, 1) == len(SEEDS)


@FUZZ
@given(st.binary(max_size=600), st.integers(1, 64))
def test_random_bytes_give_values_or_protocol_errors(data: bytes, chunk: int) -> None:
    serve(data, chunk)


@FUZZ
@given(st.binary(min_size=4, max_size=400), st.integers(1, 64))
def test_random_bodies_behind_a_valid_size_prefix(body: bytes, chunk: int) -> None:
    serve(frame(body), chunk)


@FUZZ
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(1, 64),
)
def test_mutated_valid_requests(seed: bytes, flips: list[tuple[int, int]], chunk: int) -> None:
    data = bytearray(seed)
    for position, value in flips:
        data[4 + position % (len(data) - 4)] = value  # keep the size prefix: mutate the request
    serve(bytes(data), chunk)


@FUZZ
@given(st.sampled_from(SEEDS), st.integers(0, 400), st.binary(max_size=20))
def test_truncated_or_spliced_requests(seed: bytes, cut: int, junk: bytes) -> None:
    body = seed[4:]
    cut %= len(body) + 1
    serve(frame(body[:cut] + junk), 7)
    serve(frame(body[:cut]) + seed, 13)


st.register_type_strategy(Records, st.binary(max_size=64).map(Records))
st.register_type_strategy(
    i64Timedelta,
    st.integers(-1, 2**40).map(lambda ms: i64Timedelta.parse(datetime.timedelta(milliseconds=ms))),
)
ALL_VERSIONS = [
    (key, version)
    for key, (low, high) in sorted(ALL_API_RANGES.items())
    for version in range(low, high + 1)
]


@st.composite
def any_request(draw: st.DrawFn) -> bytes:
    """A valid request of any API and version we decode, framed."""
    key, version = draw(st.sampled_from(ALL_VERSIONS))
    entity = draw(st.from_type(load_request_schema(key, version)))
    return _request(key, version, entity)


@FUZZ
@given(
    any_request(),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    st.integers(0, 10_000),
)
def test_mutated_requests_of_every_api_and_version(
    seed: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(seed)
    for position, value in flips:
        data[4 + position % (len(data) - 4)] = value
    body = bytes(data[4:])
    serve(frame(body), 64)
    serve(frame(body[: cut % (len(body) + 1)]), 64)
