"""Hand-written OffsetCommit decoder: agrees with kio for every version we serve (2-9)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.index import load_request_schema
from kio.serial import entity_writer

from firth.kafka.protocol.apis import API_TABLE
from firth.kafka.protocol.codec import decode_request
from firth.kafka.protocol.errors import MalformedRequestError, ProtocolError
from firth.kafka.protocol.header import RequestHeader
from firth.kafka.protocol.offset_commit import decode_offset_commit

SPEC = API_TABLE[8]
VERSIONS = list(range(SPEC.min_version, SPEC.max_version + 1))
SOME = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))

# OffsetCommit v8 body, annotated (flexible: varint length+1, tagged-field sections).
V8_BODY = bytes.fromhex(
    "02"
    "67"  # group_id "g"
    "00000003"  # generation 3
    "03"
    "6d31"  # member_id "m1"
    "00"  # group_instance_id: null
    "02"  # topics: 1
    "02"
    "74"
    "02"  # name "t"; partitions: 1
    "00000004"  # partition_index 4
    "000000000000002a"  # committed_offset 42
    "00000007"  # committed_leader_epoch 7
    "03"
    "6d64"  # committed_metadata "md"
    "01"
    "05"
    "02"
    "abcd"  # partition tagged fields: 1 unknown tag (5), 2 bytes
    "00"  # topic tagged fields
    "00"  # request tagged fields
)

# The same request as v3 (legacy: int16 strings, int32 arrays, retention time, no epoch).
V3_BODY = bytes.fromhex(
    "0001"
    "67"
    "00000003"
    "0002"
    "6d31"
    "ffffffffffffffff"  # retention_time_ms -1
    "00000001"
    "0001"
    "74"
    "00000001"
    "00000004"
    "000000000000002a"
    "ffff"  # metadata: null
)


def header(version: int) -> RequestHeader:
    return RequestHeader(8, version, 1, None)


def as_kio(request: Any) -> tuple[Any, ...]:
    """Our decoded shape, read out of a kio entity."""
    return (
        request.group_id,
        request.generation_id_or_member_epoch,
        request.member_id,
        getattr(request, "group_instance_id", None),
        [
            (
                t.name,
                [
                    (
                        p.partition_index,
                        p.committed_offset,
                        getattr(p, "committed_leader_epoch", -1),
                        p.committed_metadata,
                    )
                    for p in t.partitions
                ],
            )
            for t in request.topics
        ],
    )


def ours(version: int, frame: bytes, offset: int = 0) -> tuple[Any, ...]:
    r = decode_offset_commit(header(version), frame, offset)
    return (r.group_id, r.generation_id_or_member_epoch, r.member_id, r.group_instance_id, r.topics)


def test_golden_v8_request_with_an_unknown_tagged_field() -> None:
    assert ours(8, V8_BODY) == ("g", 3, "m1", None, [("t", [(4, 42, 7, "md")])])
    assert ours(8, V8_BODY) == as_kio(decode_request(header(8), V8_BODY, 0))


def test_golden_v3_request() -> None:
    assert ours(3, V3_BODY) == ("g", 3, "m1", None, [("t", [(4, 42, -1, None)])])
    assert ours(3, V3_BODY) == as_kio(decode_request(header(3), V3_BODY, 0))


def kio_bytes(request: Any) -> bytes:
    buffer = io.BytesIO()
    entity_writer(type(request))(buffer, request)
    return buffer.getvalue()


@pytest.mark.parametrize("version", VERSIONS)
def test_decode_agrees_with_kio(version: int) -> None:
    cls = load_request_schema(8, version)

    @SOME
    @given(st.from_type(cls))
    def check(request: Any) -> None:
        data = kio_bytes(request)
        for frame, offset in ((data, 0), (b"xx" + data + b"trailing", 2)):
            assert ours(version, frame, offset) == as_kio(request)
            assert ours(version, frame, offset) == as_kio(
                decode_request(header(version), frame, offset)
            )

    check()


@pytest.mark.parametrize(("version", "body"), [(3, V3_BODY), (8, V8_BODY)])
def test_every_truncated_request_is_malformed(version: int, body: bytes) -> None:
    for end in range(len(body)):
        with pytest.raises(MalformedRequestError):
            decode_offset_commit(header(version), body[:end], 0)


def agree_or_both_fail(version: int, body: bytes) -> None:
    """Differential check: the same value as kio's path, or a ProtocolError from both."""
    try:
        request = decode_request(header(version), body, 0)
    except ProtocolError:
        theirs: Any = ProtocolError
    else:
        # kio reads a null array as None, which the handler could never serve (it crashed with
        # a TypeError and closed the connection); ours refuses it as malformed, as Kafka does.
        if request.topics is None or any(t.partitions is None for t in request.topics):
            theirs = ProtocolError
        else:
            theirs = as_kio(request)
    try:
        mine: Any = ours(version, body)
    except ProtocolError:
        mine = ProtocolError
    assert mine == theirs


@FUZZ
@given(st.sampled_from(VERSIONS), st.binary(max_size=200))
def test_random_bodies_agree_with_kio_or_are_protocol_errors(version: int, body: bytes) -> None:
    agree_or_both_fail(version, body)


@FUZZ
@given(
    st.sampled_from([(3, V3_BODY), (8, V8_BODY)]),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6),
)
def test_mutated_requests_agree_with_kio_or_are_protocol_errors(
    seed: tuple[int, bytes], flips: list[tuple[int, int]]
) -> None:
    version, body = seed
    data = bytearray(body)
    for position, value in flips:
        data[position % len(data)] = value
    agree_or_both_fail(version, bytes(data))
    agree_or_both_fail(version - 1 if version > 2 else version, bytes(data))


def test_versions_outside_the_table_are_unsupported() -> None:
    for version in (SPEC.min_version - 1, SPEC.max_version + 1):
        with pytest.raises(ProtocolError):
            decode_offset_commit(header(version), V8_BODY, 0)


def test_null_arrays_are_malformed() -> None:
    null_topics = V8_BODY[: V8_BODY.index(bytes.fromhex("02027402"))] + b"\x00\x00"
    with pytest.raises(MalformedRequestError, match="null"):
        decode_offset_commit(header(8), null_topics, 0)
    null_partitions = V3_BODY[: V3_BODY.index(bytes.fromhex("000000010001740000"))] + bytes.fromhex(
        "00000001000174ffffffff"
    )
    with pytest.raises(MalformedRequestError, match="null"):
        decode_offset_commit(header(3), null_partitions, 0)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\x80", "truncated varint"),  # group_id length: a varint cut short
        (b"\xff\xff\xff\xff\xff\x01", "varint longer than 5 bytes"),
        (V8_BODY[:-1] + b"\x81", "truncated varint"),  # request tagged-field count
        (V8_BODY[:-1] + b"\x01\x05\x09", "tagged field past the end"),
        (V8_BODY[:4], "truncated generation"),
    ],
    ids=["cut-varint", "long-varint", "cut-tag-count", "tag-past-end", "own-error"],
)
def test_malformed_messages_name_the_request(body: bytes, reason: str) -> None:
    """Errors from the shared varint reader carry the prefix the decoder's own errors do."""
    with pytest.raises(MalformedRequestError) as raised:
        decode_offset_commit(header(8), body, 0)
    assert raised.value.message == f"OffsetCommit request: {reason}"
