"""Kafka request and response headers.

Request header layouts (all big-endian):

```
v1 (non-flexible request versions)       v2 (flexible request versions)
int16   request_api_key                   int16   request_api_key
int16   request_api_version               int16   request_api_version
int32   correlation_id                    int32   correlation_id
int16+  client_id (nullable string)       int16+  client_id (nullable string, NOT compact)
                                          uvarint tagged-field count, then the tagged fields
```

Response header v0 is the int32 correlation id; v1 adds an empty tagged-field section (one zero
byte). A flexible request version takes header v2 and its response header v1 — except ApiVersions,
whose response always uses header v0 so a client that sent a version we do not know can still read
the error (KIP-511).

`FIRST_FLEXIBLE_VERSION` says, per API key, from which version on the request is flexible; it is
generated from Kafka's JSON schemas (as kio carries them) by tools/generate_kafka_flexible_versions.py,
and a test checks it against kio for every key. A version newer than any schema we know is taken as flexible when the
API has a flexible version at all (no Kafka API has ever become non-flexible again), so its header
still parses and the request can be answered UNSUPPORTED_VERSION.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from firth.kafka.protocol._flexible_versions import FIRST_FLEXIBLE_VERSION
from firth.kafka.protocol.errors import MalformedRequestError
from firth.kafka.protocol.primitives import skip_tagged_fields

API_VERSIONS_KEY = 18


_FIXED = struct.Struct(">hhih")
_CORRELATION = struct.Struct(">i")
_EMPTY_TAGS = b"\x00"


def is_flexible(api_key: int, api_version: int) -> bool:
    """Whether this API version uses compact encodings and tagged fields."""
    first = FIRST_FLEXIBLE_VERSION.get(api_key)
    return first is not None and api_version >= first


def request_header_version(api_key: int, api_version: int) -> int:
    return 2 if is_flexible(api_key, api_version) else 1


def response_header_version(api_key: int, api_version: int) -> int:
    """0 or 1; ApiVersions responses always use 0."""
    if api_key == API_VERSIONS_KEY:
        return 0
    return 1 if is_flexible(api_key, api_version) else 0


@dataclass(frozen=True, slots=True)
class RequestHeader:
    """A decoded request header. `flexible` is whether the body uses the flexible encoding."""

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None

    @property
    def flexible(self) -> bool:
        return is_flexible(self.api_key, self.api_version)

    @property
    def response_header_version(self) -> int:
        return response_header_version(self.api_key, self.api_version)


def parse_request_header(frame: bytes | bytearray | memoryview) -> tuple[RequestHeader, int]:
    """Decode the request header at the start of `frame`: (header, offset where the body starts).

    Raises `MalformedRequestError` if the frame is too short or the client id is not UTF-8.
    """
    if len(frame) < _FIXED.size:
        raise MalformedRequestError(message="request shorter than its header")
    api_key, api_version, correlation_id, client_id_len = _FIXED.unpack_from(frame, 0)
    pos = _FIXED.size
    client_id: str | None = None
    if client_id_len >= 0:
        end = pos + client_id_len
        if end > len(frame):
            raise MalformedRequestError(message="client_id extends past the frame")
        try:
            client_id = bytes(frame[pos:end]).decode()
        except UnicodeDecodeError:
            raise MalformedRequestError(message="client_id is not UTF-8") from None
        pos = end
    elif client_id_len != -1:
        raise MalformedRequestError(message=f"negative client_id length {client_id_len}")
    header = RequestHeader(api_key, api_version, correlation_id, client_id)
    if is_flexible(api_key, api_version):
        pos = skip_tagged_fields(frame, pos)
    return header, pos


def encode_response_header(correlation_id: int, version: int) -> bytes:
    """Response header bytes: v0 is the correlation id, v1 adds empty tagged fields."""
    if version == 0:
        return _CORRELATION.pack(correlation_id)
    return _CORRELATION.pack(correlation_id) + _EMPTY_TAGS


def encode_request_header(header: RequestHeader) -> bytes:
    """Request header bytes (for tests, tools and the CLI's own requests)."""
    client_id = header.client_id
    raw = b"" if client_id is None else client_id.encode()
    out = _FIXED.pack(
        header.api_key,
        header.api_version,
        header.correlation_id,
        -1 if client_id is None else len(raw),
    )
    out += raw
    if header.flexible:
        out += _EMPTY_TAGS
    return out
