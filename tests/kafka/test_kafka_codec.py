"""decode_request / build_response / encode_response against kio, for every API and version."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import io
import subprocess
import sys
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.index import load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode as KioErrorCode
from kio.serial import entity_reader, entity_writer

from firth.kafka.protocol.apis import ALL_API_RANGES, SUPPORTED_APIS
from firth.kafka.protocol.codec import (
    api_versions_error_response,
    build_response,
    decode_request,
    encode_body,
    encode_response,
)
from firth.kafka.protocol.error_responses import ERROR_SHAPES, error_response
from firth.kafka.protocol.errors import (
    ErrorCode,
    MalformedRequestError,
    UnknownApiError,
    UnsupportedVersionError,
)
from firth.kafka.protocol.header import RequestHeader

VERSIONS = [
    (key, version)
    for key, (low, high) in sorted(ALL_API_RANGES.items())
    for version in range(low, high + 1)
]
EDGE_VERSIONS = sorted(
    {(key, low) for key, (low, _) in ALL_API_RANGES.items()}
    | {(key, high) for key, (_, high) in ALL_API_RANGES.items()}
)
FEW = settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))


def kio_encode(entity: Any) -> bytes:
    buffer = io.BytesIO()
    entity_writer(type(entity))(buffer, entity)
    return buffer.getvalue()


def to_plain(value: Any) -> Any:
    """A kio entity as the plain dicts/lists/ints a handler would write."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [to_plain(item) for item in value]
    if isinstance(value, enum.Enum):
        return int(value.value)
    if isinstance(value, datetime.timedelta):
        return value // datetime.timedelta(milliseconds=1)
    if isinstance(value, datetime.datetime):
        return value
    return value


@pytest.mark.parametrize(("key", "version"), VERSIONS)
def test_every_request_version_decodes_to_what_kio_encoded(key: int, version: int) -> None:
    cls = load_request_schema(key, version)

    @FEW
    @given(st.from_type(cls))
    def check(request: Any) -> None:
        data = kio_encode(request)
        header = RequestHeader(key, version, 1, "t")
        assert decode_request(header, data, 0) == request
        # Trailing bytes inside the frame are ignored, as Kafka's parser ignores them.
        assert decode_request(header, b"\x07" * 3 + data + b"\x00junk", 3) == request

    check()


@pytest.mark.parametrize(("key", "version"), EDGE_VERSIONS)
def test_every_truncated_request_is_malformed(key: int, version: int) -> None:
    cls = load_request_schema(key, version)

    @settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.from_type(cls))
    def check(request: Any) -> None:
        data = kio_encode(request)
        header = RequestHeader(key, version, 1, None)
        for end in range(len(data)):
            with pytest.raises(MalformedRequestError):
                decode_request(header, data[:end], 0)

    check()


def test_unknown_api_and_version_are_protocol_errors() -> None:
    with pytest.raises(UnknownApiError):
        decode_request(RequestHeader(57, 0, 1, None), b"", 0)
    with pytest.raises(UnsupportedVersionError) as raised:
        decode_request(RequestHeader(3, 14, 1, None), b"", 0)
    assert raised.value.code is ErrorCode.UNSUPPORTED_VERSION


def test_unknown_tagged_fields_are_skipped_as_the_protocol_says() -> None:
    # ApiVersions v3 body, annotated; kio alone raises KeyError on tag 9.
    body = bytes.fromhex(
        "02"
        "61"  # client_software_name "a" (compact)
        "02"
        "62"  # client_software_version "b"
        "01"  # tagged fields: 1
        "09"
        "02"
        "abcd"  # tag 9 (unknown), size 2, data
    )
    request = decode_request(RequestHeader(18, 3, 1, None), body, 0)
    assert (request.client_software_name, request.client_software_version) == ("a", "b")


def test_unknown_tags_are_dropped_and_known_ones_kept() -> None:
    # Fetch v12 request with a known top-level tag (0: cluster_id) and an unknown one (7).
    fetch_v12 = load_request_schema(1, 12)
    request = fetch_v12(
        cluster_id="c1",
        max_wait=datetime.timedelta(milliseconds=5),
        min_bytes=1,
        max_bytes=100,
        isolation_level=0,
        topics=(),
        forgotten_topics_data=(),
        rack_id="",
    )
    data = kio_encode(request)
    # Ends with the tagged fields: count 1, tag 0, size 3, compact string "c1" (length 2+1).
    assert data.endswith(bytes.fromhex("010003036331"))
    # Count 2: the same tag 0, then unknown tag 7 with size 1 and one byte.
    spliced = data[:-6] + bytes.fromhex("02" + "0003036331" + "0701ff")
    assert decode_request(RequestHeader(1, 12, 1, None), spliced, 0) == request


@pytest.mark.parametrize(("key", "version"), EDGE_VERSIONS)
def test_build_response_from_plain_values_round_trips_through_kio(key: int, version: int) -> None:
    cls = load_response_schema(key, version)
    reader = entity_reader(cls)

    @FEW
    @given(st.from_type(cls))
    def check(response: Any) -> None:
        built = build_response(key, version, to_plain(response))
        assert built == response
        assert reader(encode_body(built), 0)[0] == built

    check()
    # An empty dict gives a complete, encodable response of defaults.
    empty = build_response(key, version, {})
    assert reader(encode_body(empty), 0)[0] == empty


def test_build_response_wraps_plain_values_and_drops_unknown_keys() -> None:
    response = build_response(
        1,
        4,
        {
            "throttle_time": 25,
            "error_code": 3,  # no top-level error_code before Fetch v7: dropped
            "responses": [{"topic": "t", "partitions": [{"partition_index": 2}]}],
        },
    )
    assert response.throttle_time == datetime.timedelta(milliseconds=25)
    partition = response.responses[0].partitions[0]
    assert partition.error_code is KioErrorCode.none
    assert partition.last_stable_offset == -1  # Kafka's schema default
    assert partition.records is None
    assert not hasattr(response, "error_code")


def test_build_response_accepts_uuid_forms() -> None:
    topic_id = uuid.uuid4()
    for form in (topic_id, topic_id.bytes, str(topic_id)):
        response = build_response(1, 13, {"responses": [{"topic_id": form}]})
        assert response.responses[0].topic_id == topic_id


def test_encode_response_uses_the_right_header_version() -> None:
    metadata_v8 = build_response(3, 8, {})
    framed = encode_response(RequestHeader(3, 8, 9, None), metadata_v8)
    assert framed[:8] == bytes.fromhex("000000" + f"{len(framed) - 4:02x}" + "00000009")
    assert framed[8:] == encode_body(metadata_v8)
    metadata_v9 = build_response(3, 9, {})
    framed = encode_response(RequestHeader(3, 9, 9, None), metadata_v9)
    assert framed[4:9] == bytes.fromhex("0000000900")  # header v1: empty tagged fields
    api_versions_v3 = build_response(18, 3, {})
    framed = encode_response(RequestHeader(18, 3, 9, None), api_versions_v3)
    assert framed[4:8] == bytes.fromhex("00000009")
    assert framed[8:] == encode_body(api_versions_v3)  # header v0 even though v3 is flexible


def test_encode_response_refuses_a_response_of_another_version() -> None:
    with pytest.raises(ValueError):
        encode_response(RequestHeader(3, 9, 1, None), build_response(3, 8, {}))


def test_api_versions_error_response_golden_bytes() -> None:
    framed = api_versions_error_response(5, {18: (0, 4), 3: (0, 13)})
    assert framed == bytes.fromhex(
        "00000016"  # size: 22 bytes follow
        "00000005"  # response header v0: correlation_id 5
        "0023"  # error_code 35 UNSUPPORTED_VERSION
        "00000002"  # api_keys: int32 array length 2 (v0 is not flexible)
        "0003"
        "0000"
        "000d"  # Metadata 0..13
        "0012"
        "0000"
        "0004"  # ApiVersions 0..4
    )


def test_api_versions_error_response_lists_what_we_support() -> None:
    framed = api_versions_error_response(77)
    response, _ = entity_reader(load_response_schema(18, 0))(framed, 8)
    assert response.error_code is KioErrorCode.unsupported_version
    assert {k.api_key: (k.min_version, k.max_version) for k in response.api_keys} == SUPPORTED_APIS


def _codes_in(value: Any) -> set[int]:
    found: set[int] = set()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if field.name == "error_code":
                found.add(int(item.value))
            found |= _codes_in(item)
    elif isinstance(value, tuple):
        for item in value:
            found |= _codes_in(item)
    return found


def test_every_api_has_an_error_shape() -> None:
    assert set(ERROR_SHAPES) == set(ALL_API_RANGES)


@pytest.mark.parametrize(("key", "version"), VERSIONS)
def test_error_response_puts_the_code_everywhere_and_encodes(key: int, version: int) -> None:
    cls = load_request_schema(key, version)
    reader = entity_reader(load_response_schema(key, version))

    @settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.from_type(cls))
    def check(request: Any) -> None:
        header = RequestHeader(key, version, 1, None)
        response = error_response(header, request, ErrorCode.NOT_COORDINATOR, "moved")
        codes = _codes_in(response)
        assert codes <= {int(ErrorCode.NOT_COORDINATOR)} or codes == set(), codes
        framed = encode_response(header, response)
        body_start = 8 if header.response_header_version == 0 else 9
        assert reader(framed, body_start)[0] == response

    check()


# Found by the fuzz tests: kio's native reader reserves memory from a declared array length and
# aborts the process when that fails. These requests declare billions of items in a few bytes.
HOSTILE_REQUESTS = [
    # CreateTopics v7: topics compact array length varint bee8d0edc9... (~33 billion)
    "0013000700000063000466757a7a000202740000000300bee8d0edc97be2371def",
    # Fetch v12: forgotten topics array of ~5.5 billion
    "0001000c00000063000466757a7a00ffffffff000001f400000001001000000000000000"
    "ffffffffb9f9c6d41423d2779daec19217b13b8500",
    # Metadata v4: legacy int32 topics array length 0x7fffffff
    "0003000400000001ffff7fffffff01",
]


def test_absurd_array_lengths_are_malformed_not_a_process_abort() -> None:
    # Run in a child: if the guard regressed, the abort must not take the test run with it.
    script = (
        "import sys\n"
        "from firth.kafka.protocol.codec import decode_request\n"
        "from firth.kafka.protocol.errors import MalformedRequestError\n"
        "from firth.kafka.protocol.header import parse_request_header\n"
        "for raw in sys.argv[1:]:\n"
        "    data = bytes.fromhex(raw)\n"
        "    header, offset = parse_request_header(data)\n"
        "    try:\n"
        "        decode_request(header, data, offset)\n"
        "    except MalformedRequestError:\n"
        "        print('malformed')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *HOSTILE_REQUESTS],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["malformed"] * len(HOSTILE_REQUESTS)
