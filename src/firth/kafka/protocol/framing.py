"""Kafka request framing: a 4-byte big-endian size, then that many bytes.

`FrameReader` is sans-IO: the connection feeds it whatever the socket delivered and asks for
complete frames. It owns no socket and never blocks.

Costs. Small frames share one `bytearray`; consumed bytes are dropped only when they are at least
half of the buffer (or 64 KiB), so the copying is amortised O(1) per byte however the stream is
split. A frame of `LARGE_FRAME` bytes or more gets its own buffer of exactly its size as soon as
its prefix is seen, and later `feed` calls copy straight into it: a 50 MB produce request arriving
in 64 KiB reads is copied once, not re-sliced on every read.

Limits. A size prefix above `max_frame_bytes` (Kafka's `socket.request.max.bytes`, 100 MiB by
default) or below zero raises `FrameError` before a single body byte is kept, and the reader stays
failed: the stream can no longer be trusted to be aligned, so the connection must close.
"""

from __future__ import annotations

import struct

from firth.kafka.protocol.errors import FrameError

DEFAULT_MAX_FRAME_BYTES = 100 * 1024 * 1024
"""Kafka's `socket.request.max.bytes` default (104857600)."""

LARGE_FRAME = 256 * 1024
"""Frames at least this big are assembled in a dedicated, presized buffer."""

_COMPACT_AT = 64 * 1024
_SIZE = struct.Struct(">i")


class FrameReader:
    """Splits a byte stream into size-prefixed frames.

    Invariants: `_buf[_pos:]` holds unconsumed bytes that are not part of `_large`; when `_large`
    is set, `_large_filled` of its bytes have arrived and the frame it holds comes before anything
    in `_buf`. Not thread-safe; one reader per connection.
    """

    __slots__ = ("_buf", "_error", "_large", "_large_filled", "_pos", "max_frame_bytes")

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._buf = bytearray()
        self._pos = 0
        self._large: bytearray | None = None
        self._large_filled = 0
        self._error: FrameError | None = None

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet returned as frames (for flow control)."""
        return len(self._buf) - self._pos + self._large_filled

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes received from the peer."""
        large = self._large
        if large is not None:
            room = len(large) - self._large_filled
            if room > 0:
                chunk = memoryview(data)[:room]
                large[self._large_filled : self._large_filled + len(chunk)] = chunk
                self._large_filled += len(chunk)
                if len(data) > room:
                    self._buf += memoryview(data)[room:]
                return
        self._buf += data

    def next_frame(self) -> memoryview | None:
        """The next complete frame body (without its size prefix), or None if more is needed.

        Raises `FrameError` for a negative or oversized size prefix, and again on every later call.
        """
        if self._error is not None:
            raise self._error
        large = self._large
        if large is not None:
            if self._large_filled < len(large):
                return None
            self._large = None
            self._large_filled = 0
            return memoryview(large)
        buf = self._buf
        pos = self._pos
        available = len(buf) - pos
        if available < 4:
            self._compact()
            return None
        (size,) = _SIZE.unpack_from(buf, pos)
        if size < 0 or size > self.max_frame_bytes:
            self._error = FrameError(
                message=f"frame size {size} outside [0, {self.max_frame_bytes}]"
            )
            self._buf = bytearray()
            self._pos = 0
            raise self._error
        start = pos + 4
        if available - 4 >= size:
            frame = bytes(buf[start : start + size])
            self._pos = start + size
            if self._pos == len(buf):
                self._buf = bytearray()
                self._pos = 0
            elif self._pos >= _COMPACT_AT:
                self._compact()
            return memoryview(frame)
        if size >= LARGE_FRAME:
            # Move the partial body into a buffer of exactly the frame's size; later feeds fill it.
            partial = available - 4
            large = bytearray(size)
            large[:partial] = buf[start:]
            self._large = large
            self._large_filled = partial
            self._buf = bytearray()
            self._pos = 0
            return None
        self._compact()
        return None

    def _compact(self) -> None:
        if self._pos and (self._pos >= _COMPACT_AT or self._pos * 2 >= len(self._buf)):
            del self._buf[: self._pos]
            self._pos = 0


def frame(payload: bytes | bytearray | memoryview) -> bytes:
    """Prefix `payload` with its 4-byte size (for tests and tools)."""
    return _SIZE.pack(len(payload)) + bytes(payload)
