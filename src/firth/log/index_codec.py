"""Packing index columns to and from their big-endian file form.

An index is held in memory as one `array.array` per field (a column), because a column of
plain machine integers is compact, appends in amortised O(1) and can be binary-searched by
`bisect` at C speed. On disk the same entries are rows of big-endian fields, as Kafka writes
them. Converting between the two is a byte swap per column and a strided copy per byte of the
field (`out[k::row] = column_bytes[k::width]`), all C loops: no per-entry Python work, which
matters for a 10 MiB index.

It also owns the small checks an index loaded from disk must pass before it is trusted.
"""

from __future__ import annotations

import operator
import sys
from array import array
from itertools import islice

_SWAP = sys.byteorder == "little"


def pack_rows(columns: list[array]) -> bytes:  # type: ignore[type-arg]
    """Interleave equal-length columns into big-endian rows."""
    count = len(columns[0])
    widths = [column.itemsize for column in columns]
    row = sum(widths)
    out = bytearray(count * row)
    field_start = 0
    for column, width in zip(columns, widths, strict=True):
        swapped = array(column.typecode, column)
        if _SWAP:
            swapped.byteswap()
        raw = swapped.tobytes()
        for k in range(width):
            out[field_start + k :: row] = raw[k::width]
        field_start += width
    return bytes(out)


def unpack_rows(data: bytes | bytearray, typecodes: str) -> list[array] | None:  # type: ignore[type-arg]
    """Split big-endian rows into columns; None if `data` is not a whole number of rows."""
    widths = [array(code).itemsize for code in typecodes]
    row = sum(widths)
    if len(data) % row:
        return None
    count = len(data) // row
    columns = []
    field_start = 0
    for code, width in zip(typecodes, widths, strict=True):
        raw = bytearray(count * width)
        for k in range(width):
            raw[k::width] = data[field_start + k :: row]
        column = array(code, raw)
        if _SWAP:
            column.byteswap()
        columns.append(column)
        field_start += width
    return columns


def strictly_increasing(column: array) -> bool:  # type: ignore[type-arg]
    """True when every element is larger than the one before (C-speed loop)."""
    return all(map(operator.lt, column, islice(column, 1, None)))
