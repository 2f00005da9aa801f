"""Request/response headers: golden bytes, flexible-version table, truncation."""

from __future__ import annotations

import pytest
from kio.index import load_request_schema
from kio.schema.index import api_key_map, schema_name_map

from firth.kafka.protocol.errors import MalformedRequestError
from firth.kafka.protocol.header import (
    FIRST_FLEXIBLE_VERSION,
    RequestHeader,
    encode_request_header,
    encode_response_header,
    is_flexible,
    parse_request_header,
    response_header_version,
)

# Metadata v1 request header (v1 layout), annotated.
METADATA_V1_HEADER = bytes.fromhex(
    "0003"  # request_api_key = 3 (Metadata)
    "0001"  # request_api_version = 1
    "0000002a"  # correlation_id = 42
    "0003" + b"cli".hex()  # client_id: int16 length 3, "cli"
)

# Produce v9 request header (v2 layout: flexible), annotated.
PRODUCE_V9_HEADER = bytes.fromhex(
    "0000"  # request_api_key = 0 (Produce)
    "0009"  # request_api_version = 9
    "00000007"  # correlation_id = 7
    "0002"
    + b"rd".hex()  # client_id stays a legacy int16-length string even in v2
    + "01"  # tagged fields: count 1
    "05"  # tag 5 (unknown to us: skipped)
    "02"
    "abcd"  # size 2, two bytes of data
)


def test_golden_v1_header() -> None:
    header, offset = parse_request_header(METADATA_V1_HEADER + b"BODY")
    assert header == RequestHeader(3, 1, 42, "cli")
    assert offset == len(METADATA_V1_HEADER)
    assert encode_request_header(header) == METADATA_V1_HEADER


def test_golden_v2_header_skips_tagged_fields() -> None:
    header, offset = parse_request_header(PRODUCE_V9_HEADER + b"BODY")
    assert header == RequestHeader(0, 9, 7, "rd")
    assert header.flexible
    assert offset == len(PRODUCE_V9_HEADER)


def test_null_client_id() -> None:
    raw = bytes.fromhex("0012000000000001ffff")
    header, offset = parse_request_header(raw)
    assert header.client_id is None and offset == 10


@pytest.mark.parametrize("raw", [METADATA_V1_HEADER, PRODUCE_V9_HEADER])
def test_every_truncation_raises_malformed_request(raw: bytes) -> None:
    for end in range(len(raw)):
        with pytest.raises(MalformedRequestError):
            parse_request_header(raw[:end])


@pytest.mark.parametrize("raw", [METADATA_V1_HEADER, PRODUCE_V9_HEADER])
def test_trailing_bytes_are_the_body(raw: bytes) -> None:
    header, offset = parse_request_header(raw + b"\x00" * 50)
    assert offset == len(raw)
    assert parse_request_header(raw)[0] == header


def test_non_utf8_client_id_is_malformed() -> None:
    with pytest.raises(MalformedRequestError):
        parse_request_header(bytes.fromhex("00030001000000010002fffe"))


def test_response_header_versions() -> None:
    assert encode_response_header(42, 0) == bytes.fromhex("0000002a")
    assert encode_response_header(42, 1) == bytes.fromhex("0000002a00")
    assert response_header_version(3, 8) == 0
    assert response_header_version(3, 9) == 1
    # ApiVersions answers with header v0 even at its flexible versions.
    assert is_flexible(18, 3)
    assert response_header_version(18, 3) == 0
    assert response_header_version(18, 4) == 0


def test_first_flexible_versions_match_kafkas_schemas() -> None:
    for key, name in api_key_map.items():
        flexible = [
            version
            for version in sorted(schema_name_map[name])
            if load_request_schema(key, version).__flexible__
        ]
        assert FIRST_FLEXIBLE_VERSION.get(key) == (flexible[0] if flexible else None), name
