"""JSON encoding of event data and metadata, with errors that say what could not be stored.

Data is encoded once, before any database work, so an unserialisable event fails the whole
append before anything is written. NaN and infinities are refused (they are not JSON and
PostgreSQL's jsonb rejects them), as is NUL in strings (jsonb cannot hold U+0000).

Floats are written so that both backends read back the float that was appended. Python writes
a float of magnitude 1e16 or more in exponent form ("1e+16"); jsonb keeps numbers as `numeric`,
which stores that as the integer 10000000000000000 and gives it back without a decimal point,
so it would come back from PostgreSQL as an int (SQLite keeps the text and gives the float).
Such numbers are rewritten in fixed-point form with a decimal point ("10000000000000000.0"),
which jsonb keeps as written and `json.loads` reads as the identical float. Negative exponents
("1e-05") need nothing: jsonb gives them back with their decimal places. The C encoder cannot
be told how to write floats, so the rewrite is a second pass over its text, taken only when
the text contains "e+" (rare: a big float, or a string that happens to hold "e+").
What jsonb cannot hold at all is the sign of -0.0: PostgreSQL gives back 0.0.
"""

from __future__ import annotations

import json
import json.scanner
import re
import uuid
from decimal import Decimal
from typing import Any

from firth.eventsourcing.errors import SerializationError


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# A JSON string (skipped, so "e+" inside one is left alone) or a number in exponent form with
# a positive exponent (group 1). Only floats are ever written that way: ints never have one.
_STRING_OR_EXPONENT_NUMBER = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|(-?\d+(?:\.\d+)?e\+\d+)')


def _fixed_point(match: re.Match[str]) -> str:
    number = match.group(1)
    if number is None:
        return match.group(0)
    # Decimal keeps the shortest round-trip digits Python wrote, exactly; "f" writes them out
    # (always an integral number: Python's repr goes to exponent form only from 1e16 up).
    fixed = format(Decimal(number), "f")
    return fixed if "." in fixed else fixed + ".0"


def fixed_point_floats(text: str) -> str:
    """`text` (JSON the encoder wrote) with every float in positive-exponent form rewritten in
    fixed-point form; strings and all other numbers stay exactly as they were."""
    return _STRING_OR_EXPONENT_NUMBER.sub(_fixed_point, text)


def _make_encoder() -> Any:
    """The C encoder built once (json.dumps rebuilds it on every call, a third of its cost);
    the pure-Python encoder where the C one is missing. Either way, the text takes the
    fixed-point pass only when it holds "e+" (a substring test, the common path's only cost)."""
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:
        python_encode = json.JSONEncoder(
            ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode

        def encode_python(value: Any) -> str:
            text: str = python_encode(value)
            return fixed_point_floats(text) if "e+" in text else text

        return encode_python
    # No circular-reference markers: a cycle ends in RecursionError, reported like the rest.
    iterencode = c_make_encoder(
        None, _refuse, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )

    def encode(value: Any) -> str:
        text = "".join(iterencode(value, 0))
        if "e+" in text:
            return fixed_point_floats(text)
        return text

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
