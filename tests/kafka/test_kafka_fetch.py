"""Hand-written Fetch response encoder: byte-identical to kio for v4-v17, records not copied."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firth.kafka.protocol.apis import ALL_API_RANGES
from firth.kafka.protocol.codec import build_response, encode_response
from firth.kafka.protocol.fetch import (
    FetchPartitionResult,
    FetchTopicResult,
    encode_fetch_response,
)
from firth.kafka.protocol.header import RequestHeader

LOW, HIGH = ALL_API_RANGES[1]
FETCH_VERSIONS = list(range(LOW, HIGH + 1))
SOME = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))

record_data = st.one_of(
    st.none(),
    st.binary(max_size=40),
    st.binary(max_size=40).map(memoryview),
    st.lists(st.binary(max_size=20), max_size=3),
)
partitions = st.builds(
    FetchPartitionResult,
    index=st.integers(0, 2**31 - 1),
    error_code=st.sampled_from([0, 1, 3, 6]),
    high_watermark=st.integers(-1, 2**62),
    last_stable_offset=st.integers(-1, 2**62),
    log_start_offset=st.integers(-1, 2**62),
    aborted_transactions=st.one_of(
        st.none(), st.lists(st.tuples(st.integers(0, 2**62), st.integers(0, 2**62)), max_size=3)
    ),
    preferred_read_replica=st.integers(-1, 5),
    records=record_data,
)
topics = st.lists(
    st.builds(
        FetchTopicResult,
        name=st.text(max_size=20),
        partitions=st.lists(partitions, max_size=4),
        topic_id=st.uuids(),
    ),
    max_size=3,
)


def joined(records: Any) -> bytes | None:
    if records is None:
        return None
    if isinstance(records, bytes | bytearray | memoryview):
        return bytes(records)
    return b"".join(bytes(chunk) for chunk in records)


def kio_fetch_response(version: int, throttle: int, error: int, session: int, tops: Any) -> Any:
    return build_response(
        1,
        version,
        {
            "throttle_time": throttle,
            "error_code": error,
            "session_id": session,
            "responses": [
                {
                    "topic": topic.name,
                    "topic_id": topic.topic_id,
                    "partitions": [
                        {
                            "partition_index": p.index,
                            "error_code": p.error_code,
                            "high_watermark": p.high_watermark,
                            "last_stable_offset": p.last_stable_offset,
                            "log_start_offset": p.log_start_offset,
                            "aborted_transactions": None
                            if p.aborted_transactions is None
                            else [
                                {"producer_id": pid, "first_offset": first}
                                for pid, first in p.aborted_transactions
                            ],
                            "preferred_read_replica": p.preferred_read_replica,
                            "records": joined(p.records),
                        }
                        for p in topic.partitions
                    ],
                }
                for topic in tops
            ],
        },
    )


@pytest.mark.parametrize("version", FETCH_VERSIONS)
def test_encode_fetch_response_is_byte_identical_to_kio(version: int) -> None:
    @SOME
    @given(
        st.integers(0, 2**31 - 1),
        st.sampled_from([0, 70]),
        st.integers(0, 2**31 - 1),
        topics,
        st.integers(-(2**31), 2**31 - 1),
    )
    def check(throttle: int, error: int, session: int, tops: Any, correlation_id: int) -> None:
        header = RequestHeader(1, version, correlation_id, None)
        ours = b"".join(
            bytes(s) for s in encode_fetch_response(header, throttle, error, session, tops)
        )
        theirs = encode_response(
            header, kio_fetch_response(version, throttle, error, session, tops)
        )
        assert ours == theirs

    check()


def test_record_buffers_are_passed_through_not_copied() -> None:
    big = memoryview(bytearray(3 * 1024 * 1024))
    chunk_a, chunk_b = b"a" * 100, b"b" * 50
    result = encode_fetch_response(
        RequestHeader(1, 11, 1, None),
        0,
        0,
        0,
        [
            FetchTopicResult(
                "t",
                [
                    FetchPartitionResult(0, high_watermark=10, records=big),
                    FetchPartitionResult(1, high_watermark=3, records=[chunk_a, chunk_b]),
                ],
            )
        ],
    )
    assert any(segment is big for segment in result)
    assert any(segment is chunk_a for segment in result)
    assert any(segment is chunk_b for segment in result)
    # Only the small fixed parts are built by the encoder.
    built = [s for s in result if s is not big and s is not chunk_a and s is not chunk_b]
    assert sum(len(s) for s in built) < 200


@dataclass
class FakeFileSlice:
    """Stands in for a log FileSlice: the server sends it with sendfile."""

    fd: int
    position: int
    size: int


def test_slice_objects_are_passed_through_and_counted_in_the_frame_size() -> None:
    file_slice = FakeFileSlice(fd=7, position=4096, size=1000)
    segments = encode_fetch_response(
        RequestHeader(1, 12, 5, None),
        0,
        0,
        0,
        [FetchTopicResult("t", [FetchPartitionResult(0, high_watermark=1, records=[file_slice])])],
    )
    assert file_slice in segments
    total = sum(s.size if isinstance(s, FakeFileSlice) else len(s) for s in segments)
    assert int.from_bytes(segments[0], "big") == total - 4
    # Replacing the slice with its bytes gives what kio would encode.
    data = b"z" * 1000
    expected = encode_response(
        RequestHeader(1, 12, 5, None),
        kio_fetch_response(
            12,
            0,
            0,
            0,
            [FetchTopicResult("t", [FetchPartitionResult(0, high_watermark=1, records=data)])],
        ),
    )
    actual = b"".join(data if s is file_slice else bytes(s) for s in segments)
    assert actual == expected


def test_fetch_v13_and_later_need_topic_ids() -> None:
    header = RequestHeader(1, 13, 1, None)
    with pytest.raises(ValueError):
        encode_fetch_response(header, 0, 0, 0, [FetchTopicResult("t", [])])
    segments = encode_fetch_response(
        header, 0, 0, 0, [FetchTopicResult("t", [], topic_id=uuid.UUID(int=1))]
    )
    assert uuid.UUID(int=1).bytes in b"".join(bytes(s) for s in segments)


def test_golden_fetch_v11_response() -> None:
    header = RequestHeader(1, 11, 3, None)
    partition = FetchPartitionResult(
        0, high_watermark=5, last_stable_offset=5, log_start_offset=0, records=b"BATCH"
    )
    segments = encode_fetch_response(header, 0, 0, 9, [FetchTopicResult("t", [partition])])
    assert (
        b"".join(bytes(s) for s in segments)
        == bytes.fromhex(
            "00000048"  # size: 72 bytes follow
            "00000003"  # correlation_id 3 (header v0)
            "00000000"  # throttle_time_ms 0
            "0000"  # error_code NONE
            "00000009"  # session_id 9
            "00000001"  # responses: 1 topic
            "0001" + b"t".hex() + "00000001"  # topic "t"; partitions: 1
            "00000000"  # partition_index 0
            "0000"  # error_code NONE
            "0000000000000005"  # high_watermark 5
            "0000000000000005"  # last_stable_offset 5
            "0000000000000000"  # log_start_offset 0
            "ffffffff"  # aborted_transactions: null
            "ffffffff"  # preferred_read_replica -1
            "00000005" + b"BATCH".hex()  # records: 5 bytes
        )
    )
