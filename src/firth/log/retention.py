"""Which old segments retention may delete: pure decisions over a log's segment list.

Retention deletes whole segments, oldest first, never the active (last) one, so a log always
keeps at least its active segment and `log_start_offset` moves in segment-sized steps. Two
limits, each disabled by -1, applied like Kafka's:

- by time: a segment expires when `now - largest timestamp > retention_ms`, where the largest
  timestamp is the segment's greatest batch maxTimestamp (from its sealed time index), or the
  file's modification time if no batch carried a timestamp;
- by size: while the log minus its oldest segment would still hold at least `retention_bytes`,
  that segment goes. (So the log stays a little above the limit rather than below it.)

Deletion stops at the first segment that must stay: retention only ever removes a prefix. The
log does the deleting (see `Log.enforce_retention`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from firth.log.config import LogConfig
from firth.log.segment import Segment


def largest_timestamp(segment: Segment) -> int:
    if segment.max_timestamp >= 0:
        return segment.max_timestamp
    return os.fstat(segment.fd).st_mtime_ns // 1_000_000


def expired_by_time(segments: Sequence[Segment], now_ms: int, retention_ms: int) -> int:
    """How many of the oldest inactive segments are past `retention_ms`."""
    if retention_ms < 0:
        return 0
    count = 0
    for segment in segments[:-1]:
        if now_ms - largest_timestamp(segment) <= retention_ms:
            break
        count += 1
    return count


def excess_by_size(segments: Sequence[Segment], retention_bytes: int) -> int:
    """How many of the oldest inactive segments can go while keeping `retention_bytes`."""
    if retention_bytes < 0:
        return 0
    excess = sum(segment.size for segment in segments) - retention_bytes
    count = 0
    for segment in segments[:-1]:
        if excess - segment.size < 0:
            break
        excess -= segment.size
        count += 1
    return count


def deletable_prefix(segments: Sequence[Segment], config: LogConfig, now_ms: int) -> int:
    """Number of leading segments to delete now."""
    return max(
        expired_by_time(segments, now_ms, config.retention_ms),
        excess_by_size(segments, config.retention_bytes),
    )
