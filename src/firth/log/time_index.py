"""`TimeIndex`: the sparse map from timestamps to offsets of one segment.

Format on disk (`NNNNNNNNNNNNNNNNNNNN.timeindex`), one 12-byte row per entry, big-endian:

```
offset  size  field
0       8     timestamp        largest batch maxTimestamp seen in the segment so far (ms)
8       4     relativeOffset   base offset of the first batch that reached it, minus the
                               segment's base offset
```

Entries are added beside offset index entries, and only when the running maximum timestamp
has grown, so both columns strictly increase. An entry (t, o) promises: no batch before the one
at offset o has a maxTimestamp >= t, and no batch up to the one that was appended when the
entry was written has a maxTimestamp > t. So to find the first batch whose maxTimestamp >= T,
start at the entry `lookup(T - 1)` (largest timestamp < T) and scan forward.

When the segment stops being active (roll, close) its final maximum is appended even if the
interval has not been reached, so the last entry is the segment's largest timestamp: retention
by time and `offset_for_timestamp` read it without touching the .log.

Storage, persistence and concurrency are as for `OffsetIndex`: two columns (`array('q')`,
`array('i')`), written whole by atomic replace, no checksum, rebuilt from the .log when a file
is missing or inconsistent.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right

from firth.log.index_codec import pack_rows, strictly_increasing, unpack_rows
from firth.log.positions import TimestampOffset

NO_TIMESTAMP = -1
"""Kafka's "no timestamp" value: what `lookup` reports when no entry matches."""


class TimeIndex:
    __slots__ = ("_offsets", "_timestamps", "base_offset", "max_entries")

    def __init__(self, base_offset: int, max_entries: int) -> None:
        self.base_offset = base_offset
        self.max_entries = max_entries
        self._timestamps = array("q")
        self._offsets = array("i")

    def __len__(self) -> int:
        return len(self._timestamps)

    @property
    def is_full(self) -> bool:
        return len(self._timestamps) >= self.max_entries

    def maybe_append(self, timestamp: int, offset: int) -> None:
        """Add (timestamp, offset) unless it would not strictly increase both columns."""
        relative = offset - self.base_offset
        if self._timestamps and (
            timestamp <= self._timestamps[-1] or relative <= self._offsets[-1]
        ):
            return
        self._timestamps.append(timestamp)
        self._offsets.append(relative)

    def lookup(self, timestamp: int) -> TimestampOffset:
        """The largest entry whose timestamp is <= `timestamp`; (NO_TIMESTAMP, segment base)
        if there is none."""
        i = bisect_right(self._timestamps, timestamp) - 1
        if i < 0:
            return TimestampOffset(NO_TIMESTAMP, self.base_offset)
        return TimestampOffset(self._timestamps[i], self.base_offset + self._offsets[i])

    def last_entry(self) -> TimestampOffset | None:
        if not self._timestamps:
            return None
        return TimestampOffset(self._timestamps[-1], self.base_offset + self._offsets[-1])

    def truncate_to(self, offset: int) -> None:
        """Drop every entry whose offset is >= `offset`."""
        i = bisect_right(self._offsets, offset - 1 - self.base_offset)
        del self._timestamps[i:]
        del self._offsets[i:]

    def clear(self) -> None:
        del self._timestamps[:]
        del self._offsets[:]

    def to_bytes(self) -> bytes:
        return pack_rows([self._timestamps, self._offsets])

    @classmethod
    def from_bytes(cls, base_offset: int, data: bytes, max_entries: int) -> TimeIndex | None:
        columns = unpack_rows(data, "qi")
        if columns is None:
            return None
        index = cls(base_offset, max_entries)
        index._timestamps, index._offsets = columns
        return index

    def is_consistent(self, next_relative_offset: int) -> bool:
        """Cheap structural checks against the segment's offset range [0, next_relative)."""
        timestamps, offsets = self._timestamps, self._offsets
        if not offsets:
            return True
        return (
            len(offsets) <= self.max_entries + 1  # + the final entry `seal` adds to a full index
            and offsets[0] >= 0
            and offsets[-1] < next_relative_offset
            and strictly_increasing(timestamps)
            and strictly_increasing(offsets)
        )
