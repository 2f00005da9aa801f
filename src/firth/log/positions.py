"""Small value types naming positions in a log, and the result of a read.

`OffsetPosition` and `TimestampOffset` are what the indexes store and return. `FileSlice` and
`FetchSlices` describe bytes of segment files without copying them, so a fetch can hand them to
`os.sendfile` / `loop.sendfile`; `read_bytes()` copies them for callers that need the bytes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class OffsetPosition:
    """The batch holding `offset` starts at byte `position` of its segment's .log file."""

    offset: int
    position: int


@dataclass(frozen=True, slots=True)
class TimestampOffset:
    """`timestamp` (ms) is reached by the batch whose base offset is `offset`."""

    timestamp: int
    offset: int


@dataclass(frozen=True, slots=True)
class FileSlice:
    """`size` bytes at `position` of the open file `fd`: whole record batches.

    The descriptor belongs to the log: never close it. It stays valid until the log is closed,
    and at least `file_delete_delay_ms` after retention retires the segment, so send the slice
    promptly.
    """

    fd: int
    position: int
    size: int

    def read_bytes(self) -> bytes:
        data = os.pread(self.fd, self.size, self.position)
        if len(data) != self.size:
            raise OSError(f"short read: {len(data)} of {self.size} bytes at {self.position}")
        return data


@dataclass(slots=True)
class FetchSlices:
    """The answer to `Log.read`: whole batches, in offset order, possibly across segments.

    Empty (no slices) when the read started at the log end offset.
    """

    slices: list[FileSlice] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(s.size for s in self.slices)

    def __bool__(self) -> bool:
        return bool(self.slices)

    def read_bytes(self) -> bytes:
        if len(self.slices) == 1:
            return self.slices[0].read_bytes()
        return b"".join(s.read_bytes() for s in self.slices)
