"""Hand-written Produce codec: agrees with kio for every version we serve (3-12)."""

from __future__ import annotations

import datetime
import io
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.index import load_request_schema
from kio.serial import entity_writer

from firth.kafka.protocol.apis import ALL_API_RANGES
from firth.kafka.protocol.codec import build_response, encode_response
from firth.kafka.protocol.errors import MalformedRequestError, UnsupportedVersionError
from firth.kafka.protocol.header import RequestHeader
from firth.kafka.protocol.produce import (
    PartitionProduceResult,
    decode_produce,
    encode_produce_response,
)

LOW, HIGH = ALL_API_RANGES[0]
PRODUCE_VERSIONS = list(range(LOW, HIGH + 1))
SOME = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))

# Produce v3 body, annotated (non-flexible: int16 string lengths, int32 array lengths).
PRODUCE_V3_BODY = bytes.fromhex(
    "ffff"  # transactional_id: null
    "ffff"  # acks: -1 (all)
    "00007530"  # timeout_ms: 30000
    "00000001"  # topics: 1
    "0003" + b"top".hex() + "00000002"  # name "top"; partitions: 2
    "00000000"  # partition 0
    "00000003" + b"abc".hex() + "00000001"  # records: 3 bytes "abc"; partition 1
    "ffffffff"  # records: null
)

# The same request as Produce v9 (flexible: varint length+1, tagged-field sections).
PRODUCE_V9_BODY = bytes.fromhex(
    "00"  # transactional_id: null (compact length 0)
    "ffff"  # acks: -1
    "00007530"  # timeout_ms: 30000
    "02"  # topics: 1 (compact length 2)
    "04" + b"top".hex() + "03"  # name "top" (length 3+1); partitions: 2
    "00000000"  # partition 0
    "04" + b"abc".hex() + "00"  # records "abc" (3+1); partition tagged fields: none
    "00000001"  # partition 1
    "00"  # records: null
    "00"  # partition tagged fields
    "00"  # topic tagged fields
    "00"  # request tagged fields
)


@pytest.mark.parametrize(("version", "body"), [(3, PRODUCE_V3_BODY), (9, PRODUCE_V9_BODY)])
def test_golden_produce_requests(version: int, body: bytes) -> None:
    request = decode_produce(RequestHeader(0, version, 1, None), body, 0)
    assert request.transactional_id is None
    assert (request.acks, request.timeout_ms) == (-1, 30000)
    [topic] = request.topics
    assert topic.name == "top"
    assert [p.index for p in topic.partitions] == [0, 1]
    assert topic.partitions[0].records is not None
    assert bytes(topic.partitions[0].records) == b"abc"
    assert topic.partitions[1].records is None
    index, records = topic.partitions[1]
    assert (index, records) == (1, None)


def test_records_are_views_into_the_frame_not_copies() -> None:
    frame = bytearray(b"HDR" + PRODUCE_V3_BODY)
    request = decode_produce(RequestHeader(0, 3, 1, None), frame, 3)
    records = request.topics[0].partitions[0].records
    assert records is not None and records.obj is frame


def kio_request_bytes(request: Any) -> bytes:
    buffer = io.BytesIO()
    entity_writer(type(request))(buffer, request)
    return buffer.getvalue()


@pytest.mark.parametrize("version", PRODUCE_VERSIONS)
def test_decode_produce_agrees_with_kio(version: int) -> None:
    cls = load_request_schema(0, version)

    @SOME
    @given(st.from_type(cls))
    def check(request: Any) -> None:
        data = kio_request_bytes(request)
        header = RequestHeader(0, version, 1, None)
        for frame, offset in ((data, 0), (b"xx" + data + b"trailing", 2)):
            ours = decode_produce(header, frame, offset)
            assert ours.transactional_id == request.transactional_id
            assert ours.acks == request.acks
            assert ours.timeout_ms == request.timeout // datetime.timedelta(milliseconds=1)
            assert [t.name for t in ours.topics] == [t.name for t in request.topic_data]
            for mine, theirs in zip(ours.topics, request.topic_data, strict=True):
                assert [
                    (p.index, None if p.records is None else bytes(p.records))
                    for p in mine.partitions
                ] == [(p.index, p.records) for p in theirs.partition_data]

    check()


@pytest.mark.parametrize("version", [3, 8, 9, 12])
def test_every_truncated_produce_request_is_malformed(version: int) -> None:
    body = PRODUCE_V3_BODY if version < 9 else PRODUCE_V9_BODY
    header = RequestHeader(0, version, 1, None)
    for end in range(len(body)):
        with pytest.raises(MalformedRequestError):
            decode_produce(header, body[:end], 0)


def test_absurd_array_lengths_are_malformed_not_memory_bombs() -> None:
    body = bytes.fromhex("ffff0001000000007fffffff")
    with pytest.raises(MalformedRequestError):
        decode_produce(RequestHeader(0, 3, 1, None), body, 0)


def test_versions_outside_the_table_are_unsupported() -> None:
    for version in (0, 2, 13):
        with pytest.raises(UnsupportedVersionError):
            decode_produce(RequestHeader(0, version, 1, None), PRODUCE_V3_BODY, 0)


partition_results = st.builds(
    PartitionProduceResult,
    index=st.integers(0, 2**31 - 1),
    error_code=st.sampled_from([0, 2, 3, 6, 10, 87]),
    base_offset=st.integers(-1, 2**62),
    log_append_time_ms=st.one_of(st.just(-1), st.integers(0, 2**41)),
    log_start_offset=st.integers(-1, 2**62),
    error_message=st.one_of(st.none(), st.text(max_size=20)),
    record_errors=st.lists(
        st.tuples(st.integers(0, 1000), st.one_of(st.none(), st.text(max_size=10))), max_size=3
    ).map(tuple),
)
topic_results = st.lists(
    st.tuples(st.text(max_size=20), st.lists(partition_results, max_size=4)), max_size=3
)


def kio_produce_response(version: int, results: Any, throttle: int) -> Any:
    return build_response(
        0,
        version,
        {
            "throttle_time": throttle,
            "responses": [
                {
                    "name": name,
                    "partition_responses": [
                        {
                            "index": r.index,
                            "error_code": r.error_code,
                            "base_offset": r.base_offset,
                            "log_append_time": None
                            if r.log_append_time_ms == -1
                            else r.log_append_time_ms,
                            "log_start_offset": r.log_start_offset,
                            "error_message": r.error_message,
                            "record_errors": [
                                {"batch_index": i, "batch_index_error_message": m}
                                for i, m in r.record_errors
                            ],
                        }
                        for r in partitions
                    ],
                }
                for name, partitions in results
            ],
        },
    )


@pytest.mark.parametrize("version", PRODUCE_VERSIONS)
def test_encode_produce_response_is_byte_identical_to_kio(version: int) -> None:
    @SOME
    @given(topic_results, st.integers(0, 2**31 - 1), st.integers(-(2**31), 2**31 - 1))
    def check(results: Any, throttle: int, correlation_id: int) -> None:
        header = RequestHeader(0, version, correlation_id, None)
        ours = encode_produce_response(header, results, throttle_time_ms=throttle)
        theirs = encode_response(header, kio_produce_response(version, results, throttle))
        assert ours == theirs

    check()


def test_golden_produce_v9_response() -> None:
    header = RequestHeader(0, 9, 7, None)
    results = [("top", [PartitionProduceResult(0, 0, 41, -1, 0)])]
    assert (
        encode_produce_response(header, results, throttle_time_ms=0)
        == bytes.fromhex(
            "00000032"  # size: 50 bytes follow
            "00000007"  # correlation_id 7
            "00"  # response header v1: no tagged fields
            "02"  # responses: 1 topic (compact)
            "04" + b"top".hex() + "02"  # name "top"; partitions: 1
            "00000000"  # index 0
            "0000"  # error_code NONE
            "0000000000000029"  # base_offset 41
            "ffffffffffffffff"  # log_append_time -1 (CreateTime topic)
            "0000000000000000"  # log_start_offset 0
            "01"  # record_errors: empty compact array
            "00"  # error_message: null
            "00"  # partition tagged fields
            "00"  # topic tagged fields
            "00000000"  # throttle_time_ms 0
            "00"  # response tagged fields
        )
    )
