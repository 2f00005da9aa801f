"""JSON encoding of event data and metadata, with errors that say what could not be stored.

Data is encoded once, before any database work, so an unserialisable event fails the whole
append before anything is written. NaN and infinities are refused (they are not JSON and
PostgreSQL's jsonb rejects them), as is NUL in strings (jsonb cannot hold U+0000).
"""

from __future__ import annotations

import json
import json.scanner
import uuid
from typing import Any

from firth.eventsourcing.errors import SerializationError


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _make_encoder() -> Any:
    """The C encoder built once (json.dumps rebuilds it on every call, a third of its cost);
    the pure-Python encoder where the C one is missing."""
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:
        return json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
    # No circular-reference markers: a cycle ends in RecursionError, reported like the rest.
    iterencode = c_make_encoder(
        None, _refuse, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )

    def encode(value: Any) -> str:
        return "".join(iterencode(value, 0))

    return encode


_encode = _make_encoder()
encode_unchecked = _encode
"""The raw encoder: no error translation and no NUL check. For hot loops that check the
result themselves and call `encode` again for the error message when something is wrong."""


def encode(value: Any) -> str:
    """Encode `value` as compact JSON, or raise `SerializationError` saying why not."""
    try:
        text = _encode(value)
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"not JSON-serialisable: {exc}") from None
    except RecursionError:
        raise SerializationError("not JSON-serialisable: it refers to itself") from None
    if "\\u0000" in text:
        raise SerializationError("contains a NUL character, which JSON stores cannot hold")
    return text


_scan_once = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def decode(text: str | None) -> Any:
    """Decode stored JSON. The text was written by `encode` (compact, nothing around the value),
    so the scanner is called directly, skipping json.loads's whitespace handling."""
    if text is None:
        return None
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value


def decode_many(texts: list[str]) -> list[Any]:
    """Decode a page of stored JSON values: joined into one array and scanned in one call (half
    the cost of one call each). Values `encode` wrote are single JSON texts, so the array holds
    exactly one item per text; anything else (a NULL, say) is decoded one by one instead."""
    try:
        values, _ = _scan_once("[" + ",".join(texts) + "]", 0)
    except (StopIteration, TypeError, ValueError):
        return [decode(text) for text in texts]
    if len(values) != len(texts):
        return [decode(text) for text in texts]
    return values  # type: ignore[no-any-return]


_new = object.__new__
_set = object.__setattr__
_UUID = uuid.UUID
_UNKNOWN = uuid.SafeUUID.unknown  # looked up once: enum member access costs a descriptor call


def uuid_from_bytes(raw: bytes) -> uuid.UUID:
    """`uuid.UUID(bytes=raw)` without its argument checks (a third of the cost of reading an
    event); `raw` is 16 bytes from our own column (SQLite) or `uuid_send` (PostgreSQL)."""
    value = _new(_UUID)
    _set(value, "int", int.from_bytes(raw, "big"))
    _set(value, "is_safe", _UNKNOWN)
    return value
