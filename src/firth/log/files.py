"""Every file name, suffix and magic number of a partition directory, in one place.

A partition is one directory. Its segments are named by their base offset (the first offset they
hold) as a 20-digit zero-padded decimal, so a plain directory listing sorts them by offset and
any int64 offset fits. Each segment is up to three files sharing that stem:

    00000000000000368769.log         record batches, exactly as appended
    00000000000000368769.index       sparse offset index (rebuildable from the .log)
    00000000000000368769.timeindex   sparse time index (rebuildable from the .log)

Beside them the directory may hold the recovery-point checkpoint and the clean-shutdown marker.
Files with the `.deleted` suffix are segments that retention has retired but whose descriptors
may still be serving a fetch; `.tmp` files are half-written checkpoints or indexes. Both are
garbage on open and are removed by the loader.

This module knows names only; it never opens a file.
"""

from __future__ import annotations

from firth import fsutil

LOG_SUFFIX = ".log"
"""Record batches (Kafka record batch v2), appended back to back, nothing else in the file."""

INDEX_SUFFIX = ".index"
"""Offset index: big-endian (relative offset int32, file position int32) pairs, 8 bytes each."""

TIME_INDEX_SUFFIX = ".timeindex"
"""Time index: big-endian (timestamp int64, relative offset int32) pairs, 12 bytes each."""

DELETED_SUFFIX = ".deleted"
"""Appended to a retired segment's file names; unlinked after the file-delete delay."""

TMP_SUFFIX = fsutil.TMP_SUFFIX
"""Appended while a file is written for atomic replace (write, fsync, rename); the value is
firth.fsutil's, which does the writing."""

SEGMENT_SUFFIXES = (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX)
"""The files one segment may own, in the order they are created."""

OFFSET_DIGITS = 20
"""Width of a segment name: enough for any non-negative int64 offset (19 digits) plus one."""

CLEAN_SHUTDOWN_FILE = ".firth-clean-shutdown"
"""Written by `Log.close()` after everything is fsynced; removed (and the removal fsynced) by
`Log.open()`. Present at open = the files were closed cleanly and the recovery scan is skipped.
Content: CLEAN_SHUTDOWN_MAGIC line, then the log end offset at close as a decimal line."""

CLEAN_SHUTDOWN_MAGIC = "firth-clean-shutdown v1"
"""First line of the clean-shutdown marker; any other content counts as no marker."""

RECOVERY_POINT_FILE = "recovery-point-offset-checkpoint"
"""Offsets below the recovery point are known durable, with their segments' indexes; recovery
after a crash starts at the segment containing it. Written with atomic replace."""

RECOVERY_POINT_MAGIC = "firth-recovery-point v1"
"""First line of the recovery-point checkpoint; the second line is the offset in decimal."""

OFFSET_INDEX_ENTRY_SIZE = 8
"""int32 offset relative to the segment base + int32 byte position in the .log."""

TIME_INDEX_ENTRY_SIZE = 12
"""int64 timestamp (ms) + int32 offset relative to the segment base."""


def segment_stem(base_offset: int) -> str:
    """`368769` -> `00000000000000368769`."""
    return f"{base_offset:0{OFFSET_DIGITS}d}"


def segment_file_name(base_offset: int, suffix: str) -> str:
    return segment_stem(base_offset) + suffix


def parse_segment_name(name: str) -> tuple[int, str] | None:
    """`(base_offset, suffix)` for a segment file name, None for anything else."""
    stem, dot, rest = name.partition(".")
    if not dot or len(stem) != OFFSET_DIGITS or not stem.isdigit():
        return None
    return int(stem), "." + rest
