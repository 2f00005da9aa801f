"""A structural pre-check of request bodies, run before kio's native decoder sees them.

Why: kio's Rust reader reserves memory for an array from its declared length before reading a
single item. A 30-byte request that declares 2^32 items makes it ask for hundreds of gigabytes,
and the failed allocation aborts the whole process — one hostile packet would kill the broker.
The fuzz tests found this. So every body first goes through `check_shape`, which walks the
bytes as the schema lays them out, without building any value: every length must fit in the
bytes that remain, every array item must actually be there. After it passes, kio can only
allocate for items that exist.

The walk is compiled once per kio class into a list of steps (tables, not code): fixed-size
fields, length-prefixed strings and bytes, arrays, nested (possibly nullable) entities, and the
tagged-field section of flexible versions, whose known tags are walked too because kio parses
them. It checks structure only; values (UTF-8, nulls where not allowed) are kio's to refuse, and
`decode_request` turns kio's refusals into `MalformedRequestError`.

Unknown tagged fields: the protocol says skip them, kio raises. `prepare_body` records each
tagged-field section holding unknown tags and, only then, returns a copy of the body with those
tags cut out, so a newer client's extra tags do not fail the request.
"""

from __future__ import annotations

import struct
import typing
from dataclasses import fields, is_dataclass
from typing import Any

from firth.kafka.protocol.errors import MalformedRequestError
from firth.kafka.protocol.primitives import read_uvarint, uvarint

Buffer = bytes | bytearray | memoryview

_FIXED_SIZES = {
    "bool": 1,
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "uint16": 2,
    "error_code": 2,
    "int32": 4,
    "uint32": 4,
    "timedelta_i32": 4,
    "int64": 8,
    "uint64": 8,
    "float64": 8,
    "timedelta_i64": 8,
    "datetime_i64": 8,
    "uuid": 16,
}

# Step kinds.
_FIXED = 0  # arg: size
_LENGTH_PREFIXED = 1  # arg: 0 compact (uvarint length+1), 2 int16 length, 4 int32 length
_ARRAY = 2  # arg: (compact?, item step)
_ENTITY = 3  # arg: (nullable?, steps)
_TAGS = 4  # arg: {tag: step}
_FIXED_ARRAY = 5  # arg: (compact?, item size): checked in O(1)

Step = tuple[int, Any]
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_plans: dict[type, list[Step]] = {}


def _fail(message: str) -> MalformedRequestError:
    return MalformedRequestError(message=message)


def _plan(cls: type) -> list[Step]:
    plan = _plans.get(cls)
    if plan is None:
        plan = _compile(cls)
        _plans[cls] = plan
    return plan


def _compile(cls: type) -> list[Step]:
    flexible = bool(cls.__flexible__)  # type: ignore[attr-defined]
    hints = typing.get_type_hints(cls)
    steps: list[Step] = []
    tags: dict[int, Step] = {}
    for field in fields(cls):  # type: ignore[arg-type]
        step = _field_step(hints[field.name], field.metadata.get("kafka_type"), flexible)
        tag = field.metadata.get("tag")
        if tag is not None:
            tags[int(tag)] = step
        elif step[0] == _FIXED and steps and steps[-1][0] == _FIXED:
            steps[-1] = (_FIXED, steps[-1][1] + step[1])  # runs of fixed fields: one bounds check
        else:
            steps.append(step)
    if flexible:
        steps.append((_TAGS, tags))
    return steps


def _field_step(hint: Any, kafka_type: str | None, flexible: bool) -> Step:
    inner, nullable = _strip_optional(hint)
    if typing.get_origin(inner) is tuple:
        item_hint = typing.get_args(inner)[0]
        item = _field_step(item_hint, kafka_type, flexible)
        if item[0] == _FIXED:
            return (_FIXED_ARRAY, (flexible, item[1]))
        return (_ARRAY, (flexible, item))
    if isinstance(inner, type) and is_dataclass(inner):
        plan = _plan(inner)
        if not nullable and len(plan) == 1 and plan[0][0] == _FIXED:
            return plan[0]  # an all-fixed, non-flexible struct is just its size
        return (_ENTITY, (nullable, plan))
    if kafka_type in _FIXED_SIZES:
        return (_FIXED, _FIXED_SIZES[kafka_type])
    if kafka_type == "string":
        return (_LENGTH_PREFIXED, 0 if flexible else 2)
    if kafka_type in ("bytes", "records"):
        return (_LENGTH_PREFIXED, 0 if flexible else 4)
    raise TypeError(f"no shape step for {hint!r} ({kafka_type})")


def _strip_optional(hint: Any) -> tuple[Any, bool]:
    args = typing.get_args(hint)
    if type(None) in args:
        rest = [arg for arg in args if arg is not type(None)]
        return rest[0], True
    return hint, False


Edits = list[tuple[int, int, bytes]] | None
"""Tagged-field sections to rewrite without their unknown tags: (start, end, replacement)."""


def _walk(steps: list[Step], buf: Buffer, pos: int, end: int, edits: Edits) -> int:
    for step in steps:
        pos = _step(step, buf, pos, end, edits)
    return pos


def _step(step: Step, buf: Buffer, pos: int, end: int, edits: Edits) -> int:
    kind, arg = step
    if kind == _FIXED:
        pos += arg
        if pos > end:
            raise _fail("field past the end of the request")
        return pos
    if kind == _LENGTH_PREFIXED:
        if arg == 0:
            size, pos = read_uvarint(buf, pos, end)
            size -= 1
        elif arg == 2:
            if pos + 2 > end:
                raise _fail("string length past the end of the request")
            size = _INT16.unpack_from(buf, pos)[0]
            pos += 2
        else:
            if pos + 4 > end:
                raise _fail("bytes length past the end of the request")
            size = _INT32.unpack_from(buf, pos)[0]
            pos += 4
        if size > 0:
            pos += size
            if pos > end:
                raise _fail("string or bytes past the end of the request")
        return pos
    if kind == _ARRAY:
        compact, item = arg
        if compact:
            count, pos = read_uvarint(buf, pos, end)
            count -= 1
        else:
            if pos + 4 > end:
                raise _fail("array length past the end of the request")
            count = _INT32.unpack_from(buf, pos)[0]
            pos += 4
        if count > end - pos:
            raise _fail(f"array of {count} items in {end - pos} bytes")
        for _ in range(count):
            pos = _step(item, buf, pos, end, edits)
        return pos
    if kind == _FIXED_ARRAY:
        compact, size = arg
        if compact:
            count, pos = read_uvarint(buf, pos, end)
            count -= 1
        else:
            if pos + 4 > end:
                raise _fail("array length past the end of the request")
            count = _INT32.unpack_from(buf, pos)[0]
            pos += 4
        if count > 0:
            pos += count * size
            if pos > end:
                raise _fail(f"array of {count} items past the end of the request")
        return pos
    if kind == _ENTITY:
        nullable, steps = arg
        if nullable:
            if pos >= end:
                raise _fail("nullable struct marker past the end of the request")
            marker = buf[pos]
            pos += 1
            if marker == 0xFF:  # int8 -1: null
                return pos
        return _walk(steps, buf, pos, end, edits)
    # _TAGS
    section_start = pos
    count, pos = read_uvarint(buf, pos, end)
    if count > end - pos:
        raise _fail(f"{count} tagged fields in {end - pos} bytes")
    kept: list[tuple[int, int]] = []
    unknown = False
    for _ in range(count):
        field_start = pos
        tag, pos = read_uvarint(buf, pos, end)
        size, pos = read_uvarint(buf, pos, end)
        field_end = pos + size
        if field_end > end:
            raise _fail("tagged field past the end of the request")
        known = arg.get(tag)
        if known is not None:
            # Tags inside a known tag cannot be rewritten (its size would change): kio refuses.
            _step(known, buf, pos, field_end, None)
            kept.append((field_start, field_end))
        else:
            unknown = True
        pos = field_end
    if unknown and edits is not None:
        replacement = bytearray(uvarint(len(kept)))
        for start, stop in kept:
            replacement += buf[start:stop]
        edits.append((section_start, pos, bytes(replacement)))
    return pos


def check_shape(cls: type, buf: Buffer, pos: int) -> int:
    """Walk a `cls` body at `pos`; return where it ends. Raises `MalformedRequestError`."""
    return _walk(_plan(cls), buf, pos, len(buf), None)


def prepare_body(cls: type, buf: Buffer, pos: int) -> tuple[Buffer, int]:
    """Check a `cls` body's shape and drop tagged fields its schema does not know.

    The protocol says a reader skips unknown tags; kio raises instead. So when there are any,
    this returns a rewritten copy of the body (rare); otherwise `buf` and `pos` unchanged.
    """
    edits: list[tuple[int, int, bytes]] = []
    _walk(_plan(cls), buf, pos, len(buf), edits)
    if not edits:
        return buf, pos
    out = bytearray()
    cursor = pos
    for start, stop, replacement in edits:  # the walk records sections in byte order
        out += buf[cursor:start]
        out += replacement
        cursor = stop
    out += buf[cursor:]
    return bytes(out), 0
