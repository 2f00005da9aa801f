"""`OffsetIndex`: the sparse map from offsets to byte positions of one segment.

Format on disk (`NNNNNNNNNNNNNNNNNNNN.index`), one 8-byte row per entry, big-endian:

```
offset  size  field
0       4     relativeOffset   base offset of an indexed batch minus the segment's base offset
4       4     position         byte position of that batch in the segment's .log
```

The index is sparse: an entry is added only after at least `index_interval_bytes` of batches
have been appended since the previous one (the segment decides; this class just stores), so a
lookup lands at most about that many bytes before the batch it wants and the caller steps over
the remaining batch headers. Relative offsets and positions both strictly increase, so a lookup
is a binary search for the largest entry <= the target.

In memory the entries are two int32 columns (`array('i')`): appends are amortised O(1) and
`bisect` searches them in C. The file is written whole (atomic replace) when the segment stops
being active, and at close; it carries no checksum because it can always be rebuilt from the
.log, and `from_bytes` + `is_consistent` decide whether a file on disk can be trusted.

Concurrency: mutated only by the log's owner thread while its segment is active; once the
segment is inactive the columns never change and may be read from any thread.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right

from firth.log.index_codec import pack_rows, strictly_increasing, unpack_rows
from firth.log.positions import OffsetPosition


class OffsetIndex:
    __slots__ = ("_offsets", "_positions", "base_offset", "max_entries")

    def __init__(self, base_offset: int, max_entries: int) -> None:
        self.base_offset = base_offset
        self.max_entries = max_entries
        self._offsets = array("i")
        self._positions = array("i")

    def __len__(self) -> int:
        return len(self._offsets)

    @property
    def is_full(self) -> bool:
        return len(self._offsets) >= self.max_entries

    def append(self, offset: int, position: int) -> None:
        """Add an entry; the caller guarantees both fields exceed the last entry's."""
        self._offsets.append(offset - self.base_offset)
        self._positions.append(position)

    def lookup(self, offset: int) -> OffsetPosition:
        """The largest entry whose offset is <= `offset`; the segment start if there is none."""
        i = bisect_right(self._offsets, offset - self.base_offset) - 1
        if i < 0:
            return OffsetPosition(self.base_offset, 0)
        return OffsetPosition(self.base_offset + self._offsets[i], self._positions[i])

    def lookup_position(self, position: int) -> OffsetPosition:
        """The largest entry whose position is <= `position`; the segment start if none."""
        i = bisect_right(self._positions, position) - 1
        if i < 0:
            return OffsetPosition(self.base_offset, 0)
        return OffsetPosition(self.base_offset + self._offsets[i], self._positions[i])

    def entry(self, i: int) -> OffsetPosition:
        return OffsetPosition(self.base_offset + self._offsets[i], self._positions[i])

    def last_entry(self) -> OffsetPosition:
        if not self._offsets:
            return OffsetPosition(self.base_offset, 0)
        return self.entry(-1)

    def truncate_to(self, offset: int) -> None:
        """Drop every entry whose offset is >= `offset`."""
        i = bisect_right(self._offsets, offset - 1 - self.base_offset)
        del self._offsets[i:]
        del self._positions[i:]

    def clear(self) -> None:
        del self._offsets[:]
        del self._positions[:]

    def to_bytes(self) -> bytes:
        return pack_rows([self._offsets, self._positions])

    @classmethod
    def from_bytes(cls, base_offset: int, data: bytes, max_entries: int) -> OffsetIndex | None:
        """Parse an index file; None if its size is not a whole number of entries."""
        columns = unpack_rows(data, "ii")
        if columns is None:
            return None
        index = cls(base_offset, max_entries)
        index._offsets, index._positions = columns
        return index

    def is_consistent(self, log_size: int) -> bool:
        """Cheap structural checks: offsets >= 0 and positions < `log_size`, both strictly
        increasing, no more entries than allowed. (Whether entries point at real batch starts
        is checked by the segment, which can read the log.)"""
        offsets, positions = self._offsets, self._positions
        if not offsets:
            return True
        return (
            len(offsets) <= self.max_entries
            and offsets[0] >= 0
            and positions[0] >= 0
            and positions[-1] < log_size
            and strictly_increasing(offsets)
            and strictly_increasing(positions)
        )
