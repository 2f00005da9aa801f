"""Reading record batches out of a segment's .log file without decoding records.

A .log file is record batches back to back (see firth.wire.recordbatch for the header). The
only framing is each batch's 12-byte prefix, baseOffset int64 + batchLength int32, so walking
the file means reading prefixes and jumping `batchLength + 12` bytes at a time. Everything here
reads with `os.pread` on a descriptor the caller owns, so it never moves a file position and is
safe beside concurrent appends (a caller passes the file size it has seen, and bytes below it
are already written).

Two shapes of reader:

- `read_span` / `read_header`: one small `pread` at a known batch start, for index-guided
  lookups that step over a few batches.
- `iter_batches`: a chunked sequential scan yielding each whole batch as a memoryview, for
  recovery (which validates every batch) and `Log.batches`. It stops, silently, at the first
  prefix that cannot start a batch (length below the header size, or running past `end`):
  the caller compares where it stopped with `end` to detect a torn tail.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

from firth.wire.recordbatch import HEADER_SIZE, LOG_OVERHEAD, BatchError, BatchHeader, parse_header

SPAN_SIZE = 27
"""Bytes needed to know a batch's offsets and size: up to and including lastOffsetDelta."""

_PREFIX = struct.Struct(">qi")
_SPAN = struct.Struct(">qi11xi")  # baseOffset, batchLength, (epoch, magic, crc, attrs), delta

MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD
"""Smallest legal batchLength: a batch with no records is still a full header."""

SCAN_CHUNK = 4 * 1024 * 1024
"""Bytes read per `pread` in sequential scans: big enough to amortise the syscall, small
enough that recovery of a 1 GiB segment never holds more than a few MiB."""


def read_span(fd: int, position: int, end: int) -> tuple[int, int, int] | None:
    """`(base_offset, size, next_offset)` of the batch at `position`, or None if no complete,
    plausible batch starts there before `end`."""
    if position + HEADER_SIZE > end:
        return None
    data = os.pread(fd, SPAN_SIZE, position)
    if len(data) < SPAN_SIZE:
        return None
    base_offset, length, last_delta = _SPAN.unpack(data)
    size = length + LOG_OVERHEAD
    if length < MIN_BATCH_LENGTH or position + size > end or last_delta < 0:
        return None
    return base_offset, size, base_offset + last_delta + 1


def read_header(fd: int, position: int, end: int) -> BatchHeader | None:
    """The full 61-byte header at `position`, or None if no plausible batch starts there."""
    if position + HEADER_SIZE > end:
        return None
    data = os.pread(fd, HEADER_SIZE, position)
    try:
        header = parse_header(data)
    except BatchError:
        return None
    if header.batch_length < MIN_BATCH_LENGTH or position + header.size > end:
        return None
    return header


def iter_batches(
    fd: int, start: int, end: int, chunk_size: int = SCAN_CHUNK
) -> Iterator[tuple[int, memoryview]]:
    """Yield `(position, batch_bytes)` for each whole batch in [start, end), in order.

    The views are into a read buffer that is replaced as the scan advances; copy one (bytes())
    to keep it. Stops at the first position that cannot hold a whole, plausible batch.
    """
    position = start
    buffer = b""
    buffer_start = start
    while position + LOG_OVERHEAD <= end:
        at = position - buffer_start
        if at + LOG_OVERHEAD > len(buffer):
            buffer = os.pread(fd, min(chunk_size, end - position), position)
            buffer_start, at = position, 0
            if len(buffer) < LOG_OVERHEAD:
                return
        _, length = _PREFIX.unpack_from(buffer, at)
        size = length + LOG_OVERHEAD
        if length < MIN_BATCH_LENGTH or position + size > end:
            return
        if at + size > len(buffer):
            buffer = os.pread(fd, min(max(chunk_size, size), end - position), position)
            buffer_start, at = position, 0
            if len(buffer) < size:
                return
        yield position, memoryview(buffer)[at : at + size]
        position += size
