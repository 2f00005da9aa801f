"""Opening a log directory: the load, and when needed the recovery, of its segments.

`load_segments` is the one place that decides how far files on disk can be trusted.

1. Sweep: delete `*.deleted` (segments retention retired before a restart), `*.tmp` (half-done
   atomic writes) and index files whose .log is gone.
2. Decide where verification starts. With a valid clean-shutdown marker nothing is verified (all
   files were fsynced by `close`); the marker is removed, durably, before the log is used, so a
   later crash is not mistaken for a clean stop. Without it, recovery starts at the segment
   containing the recovery point (everything below it was fsynced together with its segments'
   indexes), or at the first segment if there is no checkpoint.
3. Trusted segments adopt their index files after cheap consistency checks (see
   `Segment.load_indexes`); a segment whose indexes fail them is verified and re-indexed
   instead. After a clean shutdown the last segment also gets a tail check: its last batch must
   pass its CRC and end the log at the offset the marker recorded.
4. Verified segments are scanned batch by batch (length, magic, CRC-32C, contiguous offsets);
   the first torn or failing batch and everything after it is cut off: the file is truncated
   and every later segment deleted. Indexes are rebuilt during the same scan and the recovered
   data is fsynced, so afterwards every offset below the log end is durable.

Segments must also chain: each base offset equals the previous segment's next offset. A
segment that does not is treated as the start of garbage and dropped with all after it.
"""

from __future__ import annotations

import os
from bisect import bisect_right
from dataclasses import dataclass

from firth.fsutil import fsync_dir
from firth.log.checkpoints import (
    read_clean_marker,
    read_recovery_point,
    remove_clean_marker,
)
from firth.log.config import LogConfig
from firth.log.files import (
    DELETED_SUFFIX,
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
    TMP_SUFFIX,
    parse_segment_name,
)
from firth.log.segment import Segment


@dataclass(slots=True)
class LoadReport:
    """What `load_segments` found and did; `Log.load_report` keeps it for logging/metrics."""

    clean_shutdown: bool = False
    """A valid clean-shutdown marker was present."""
    recovered_from: int | None = None
    """Base offset of the first segment that was verified batch by batch; None if none."""
    segments_verified: int = 0
    bytes_truncated: int = 0
    segments_dropped: int = 0
    indexes_rebuilt: int = 0
    garbage_files_removed: int = 0


def load_segments(
    directory: str, config: LogConfig, now_ms: int
) -> tuple[list[Segment], LoadReport]:
    """Open, check and if necessary recover every segment; see the module docstring."""
    os.makedirs(directory, exist_ok=True)
    report = LoadReport()
    bases = _sweep(directory, report)
    marker_end = read_clean_marker(directory)
    report.clean_shutdown = marker_end is not None
    if marker_end is not None:
        first_verified = len(bases)
    else:
        recovery_point = read_recovery_point(directory) or 0
        first_verified = max(0, bisect_right(bases, recovery_point) - 1)

    segments = [Segment.open_existing(directory, base, config, now_ms) for base in bases]
    kept: list[Segment] = []
    try:
        for i, segment in enumerate(segments):
            if kept and segment.base_offset != kept[-1].next_offset:
                _drop(segments[i:], report)
                break
            kept.append(segment)
            is_last = i == len(segments) - 1
            if i < first_verified and _adopt(segment, config, is_last, marker_end):
                continue
            report.segments_verified += 1
            report.indexes_rebuilt += 1
            if report.recovered_from is None:
                report.recovered_from = segment.base_offset
            cut = segment.recover(verify=True)
            segment.sync()
            if cut:
                report.bytes_truncated += cut
                _drop(segments[i + 1 :], report)
                break
        if not kept:
            kept.append(Segment.create(directory, 0, config, now_ms))
        for segment in kept[:-1]:
            segment.seal()  # rebuilt indexes of inactive segments end with their final maximum
        if marker_end is not None:
            remove_clean_marker(directory)
        if report.segments_dropped or report.garbage_files_removed or len(segments) == 0:
            fsync_dir(directory)
    except BaseException:
        for segment in segments + kept:
            segment.close()
        raise
    return kept, report


def _adopt(segment: Segment, config: LogConfig, is_last: bool, marker_end: int | None) -> bool:
    """Trust a segment's files if the cheap checks pass (plus the tail check when the segment
    ends a cleanly closed log). Inactive segments load their index files lazily."""
    if not segment.load_indexes(config, lazy=not is_last):
        return False
    if not is_last or marker_end is None:
        return True
    return segment.next_offset == marker_end and segment.last_batch_valid()


def _drop(segments: list[Segment], report: LoadReport) -> None:
    for segment in segments:
        segment.remove_files()
        report.segments_dropped += 1


def _sweep(directory: str, report: LoadReport) -> list[int]:
    """Remove garbage; return the sorted base offsets of the .log files."""
    log_bases: set[int] = set()
    index_files: list[tuple[int, str]] = []
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name.endswith((DELETED_SUFFIX, TMP_SUFFIX)):
            os.unlink(path)
            report.garbage_files_removed += 1
            continue
        parsed = parse_segment_name(name)
        if parsed is None:
            continue
        base, suffix = parsed
        if suffix == LOG_SUFFIX:
            log_bases.add(base)
        elif suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX):
            index_files.append((base, path))
    for base, path in index_files:
        if base not in log_bases:
            os.unlink(path)
            report.garbage_files_removed += 1
    return sorted(log_bases)
