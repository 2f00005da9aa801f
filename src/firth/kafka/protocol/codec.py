"""Request decoding and response encoding through kio's schema-generated entity classes.

Handlers see kio entities: `decode_request` turns a request body into the kio class for that
API key and version, `build_response` builds the versioned response class from plain dicts (so a
handler writes one dict whatever version it answers), `encode_response` frames it with the right
response header. The hot APIs (Produce, Fetch) have hand-written codecs in `produce` and `fetch`;
everything here is for the rest, where kio's pure-Python encoder (40-100 µs) is fine.

Before kio decodes a body, `shape.prepare_body` walks it: kio's native reader would abort the
process on an absurd declared array length, and it refuses tagged fields its schema lacks, which
the protocol says to skip (the walk drops them). Failure contract: decoding raises only
`ProtocolError` subclasses (`UnknownApiError`, `UnsupportedVersionError`,
`MalformedRequestError`), whatever kio raised underneath. Bytes after the body inside the frame
are ignored, as Kafka's own parser ignores them.

`build_response` rules, per field of the versioned class: a key the version lacks is dropped; a
missing field (or None given for a non-nullable one) takes the schema's default (kio carries
Kafka's defaults, e.g. -1 for `log_start_offset`), else None for a nullable field, else the
type's zero (0, "", b"", (), the zero UUID, error NONE, an entity built from {}). Plain values
are wrapped: ints into kio's phantom int types and `ErrorCode`, milliseconds into
`i32Timedelta`, epoch milliseconds (or datetimes) into `TZAware`, UUIDs from bytes or text,
dicts into nested entities, lists into tuples.
"""

from __future__ import annotations

import datetime
import io
import struct
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, TypeVar

from kio.index import load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode as KioErrorCode
from kio.serial import entity_reader, entity_writer
from kio.serial.readers import tz_aware_from_i64
from kio.static.constants import uuid_zero
from kio.static.primitive import (
    Records,
    TZAware,
    f64,
    i32Timedelta,
    i64Timedelta,
)

from firth.kafka.protocol.apis import API_TABLE, supported_apis
from firth.kafka.protocol.errors import (
    MalformedRequestError,
    UnknownApiError,
    UnsupportedVersionError,
)
from firth.kafka.protocol.header import (
    API_VERSIONS_KEY,
    RequestHeader,
    encode_response_header,
)
from firth.kafka.protocol.shape import prepare_body

Buffer = bytes | bytearray | memoryview
E = TypeVar("E")

_SIZE = struct.Struct(">i")
_readers: dict[tuple[int, int], tuple[type, Callable[[Buffer, int], Any]]] = {}


def check_version(api_key: int, api_version: int) -> None:
    """Raise unless this codec decodes `api_key` at `api_version`."""
    spec = API_TABLE.get(api_key)
    if spec is None:
        raise UnknownApiError(api_key)
    if not spec.min_version <= api_version <= spec.max_version:
        raise UnsupportedVersionError(api_key, api_version)


def request_class(api_key: int, api_version: int) -> type[Any]:
    """The kio request class for a version this codec decodes."""
    check_version(api_key, api_version)
    return load_request_schema(api_key, api_version)


def response_class(api_key: int, api_version: int) -> type[Any]:
    """The kio response class for a version this codec decodes."""
    check_version(api_key, api_version)
    return load_response_schema(api_key, api_version)


def _reader(api_key: int, api_version: int) -> tuple[type, Callable[[Buffer, int], Any]]:
    entry = _readers.get((api_key, api_version))
    if entry is None:
        cls = request_class(api_key, api_version)
        entry = (cls, entity_reader(cls))
        _readers[(api_key, api_version)] = entry
    return entry


def decode_request(header: RequestHeader, frame: Buffer, body_offset: int) -> Any:
    """Decode the request body at `frame[body_offset:]` into its versioned kio entity."""
    cls, reader = _reader(header.api_key, header.api_version)
    # kio's native reader aborts the process on absurd array lengths: check the shape first.
    body, offset = prepare_body(cls, frame, body_offset)
    try:
        entity, _size = reader(body, offset)
    except Exception as exc:  # kio raises DecodeError, KeyError (unknown tag), ValueError...
        raise MalformedRequestError(
            message=f"malformed {type(exc).__name__} in API {header.api_key} "
            f"v{header.api_version} request: {exc}"
        ) from None
    return entity


def encode_body(entity: Any) -> bytes:
    """The body bytes of a kio entity, without size prefix or header."""
    buffer = io.BytesIO()
    entity_writer(type(entity))(buffer, entity)
    return buffer.getvalue()


def encode_response(header: RequestHeader, entity: Any) -> bytes:
    """Size prefix + response header (v0 or v1 as the request dictates) + body of `entity`."""
    if entity.__api_key__ != header.api_key or entity.__version__ != header.api_version:
        raise ValueError(
            f"response {type(entity).__name__} v{entity.__version__} does not answer "
            f"API {header.api_key} v{header.api_version}"
        )
    buffer = io.BytesIO()
    buffer.write(b"\x00\x00\x00\x00")
    buffer.write(encode_response_header(header.correlation_id, header.response_header_version))
    entity_writer(type(entity))(buffer, entity)
    out = buffer.getbuffer()
    _SIZE.pack_into(out, 0, len(out) - 4)
    del out
    return buffer.getvalue()


# --- build_response -------------------------------------------------------------------------

Converter = Callable[[Any], Any]
_Plan = list[tuple[str, Converter, Callable[[], Any], bool]]
_plans: dict[type, _Plan] = {}


def build_response(api_key: int, version: int, values: Mapping[str, Any]) -> Any:
    """The kio response entity for `api_key`/`version` built from plain Python values."""
    return build_entity(response_class(api_key, version), values)


def build_entity(cls: type[E], values: Mapping[str, Any]) -> E:
    """Build any kio entity class from a mapping (see the module docstring for the rules)."""
    plan = _plans.get(cls)
    if plan is None:
        plan = _plan(cls)
        _plans[cls] = plan
    kwargs: dict[str, Any] = {}
    for name, convert, default, nullable in plan:
        value = values.get(name)
        if value is not None:
            kwargs[name] = convert(value)
        elif nullable and name in values:
            kwargs[name] = None
        else:
            kwargs[name] = default()
    return cls(**kwargs)


def _plan(cls: type) -> _Plan:
    hints = typing.get_type_hints(cls)
    plan = []
    for field in fields(cls):  # type: ignore[arg-type]
        hint = hints[field.name]
        convert = _converter(hint)
        default = _constant(field.default) if field.default is not MISSING else _zero_factory(hint)
        plan.append((field.name, convert, default, _split_optional(hint)[1]))
    return plan


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _split_optional(hint: Any) -> tuple[Any, bool]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def _is_entity(hint: Any) -> bool:
    return isinstance(hint, type) and is_dataclass(hint)


def _converter(hint: Any) -> Converter:
    inner, optional = _split_optional(hint)
    convert = _converter_for(inner)
    if not optional:
        return convert
    return lambda value: None if value is None else convert(value)


def _converter_for(hint: Any) -> Converter:
    if typing.get_origin(hint) is tuple:
        item = _converter(typing.get_args(hint)[0])
        return lambda values: tuple(item(value) for value in values)
    if _is_entity(hint):
        return lambda value: value if isinstance(value, hint) else build_entity(hint, value)
    if hint is KioErrorCode:
        return lambda value: KioErrorCode(int(value))
    if hint is i32Timedelta or hint is i64Timedelta:
        return lambda value: hint.parse(_to_timedelta(value))
    if hint is TZAware:
        return _to_tz_aware
    if hint is uuid.UUID:
        return _to_uuid
    if hint is bool:
        return bool
    if hint is f64:
        return lambda value: f64(float(value))
    if isinstance(hint, type) and issubclass(hint, Records):
        return lambda value: value
    if isinstance(hint, type) and issubclass(hint, bytes):
        return bytes
    if isinstance(hint, type) and issubclass(hint, str):
        return lambda value: value
    if isinstance(hint, type) and issubclass(hint, int):
        return lambda value: hint(int(value))
    return lambda value: value


def _to_timedelta(value: Any) -> datetime.timedelta:
    if isinstance(value, datetime.timedelta):
        return value
    return datetime.timedelta(milliseconds=int(value))


def _to_tz_aware(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        value = (value - _EPOCH) // datetime.timedelta(milliseconds=1)
    return tz_aware_from_i64(int(value))  # type: ignore[arg-type]


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def _to_uuid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, bytes | bytearray):
        return uuid.UUID(bytes=bytes(value))
    return uuid.UUID(str(value))


def _zero_factory(hint: Any) -> Callable[[], Any]:
    inner, optional = _split_optional(hint)
    if optional:
        return lambda: None
    if typing.get_origin(inner) is tuple:
        return tuple
    if _is_entity(inner):
        return lambda: build_entity(inner, {})
    if inner is KioErrorCode:
        return lambda: KioErrorCode.none
    if inner is i32Timedelta or inner is i64Timedelta:
        zero = inner.parse(datetime.timedelta(0))
        return lambda: zero
    if inner is TZAware:
        return lambda: tz_aware_from_i64(0)  # type: ignore[arg-type]
    if inner is uuid.UUID:
        return lambda: uuid_zero
    if inner is bool:
        return lambda: False
    if inner is f64:
        return lambda: f64(0.0)
    if isinstance(inner, type) and issubclass(inner, bytes):
        return lambda: b""
    if isinstance(inner, type) and issubclass(inner, str):
        return lambda: ""
    if isinstance(inner, type) and issubclass(inner, int):
        return lambda: inner(0)
    raise TypeError(f"no zero value known for {inner!r}")


# --- ApiVersions error answer ---------------------------------------------------------------


def api_versions_error_response(
    correlation_id: int,
    supported: Mapping[int, tuple[int, int]] | None = None,
) -> bytes:
    """Framed ApiVersions v0 response: UNSUPPORTED_VERSION plus our ranges.

    Sent when a client asks ApiVersions at a version we do not know; clients then retry with the
    highest ApiVersions version the list allows. Header v0, body v0, whatever version was asked.
    `supported` defaults to the ranges of the groups enabled at call time.
    """
    ranges = supported_apis() if supported is None else supported
    entity = build_response(
        API_VERSIONS_KEY,
        0,
        {
            "error_code": 35,
            "api_keys": [
                {"api_key": key, "min_version": low, "max_version": high}
                for key, (low, high) in sorted(ranges.items())
            ],
        },
    )
    return encode_response(RequestHeader(API_VERSIONS_KEY, 0, correlation_id, None), entity)
