"""Small files written with atomic replace: the recovery point and the clean-shutdown marker.

Atomic replace = write `name.tmp`, fsync it, rename it over `name`, fsync the directory. After a
crash the file holds either the old or the new content, never a mix; a leftover `.tmp` is
garbage and the loader removes it. Index files are saved the same way. The primitive itself is
`firth.fsutil.atomic_write`, shared with the broker's checkpoints.

Formats (text, one value per line, so an operator can read them with `cat`):

```
recovery-point-offset-checkpoint      .firth-clean-shutdown
firth-recovery-point v1               firth-clean-shutdown v1
<recovery point offset>               <log end offset at close>
```

A file with an unknown first line or an unparsable number reads as absent: both files are
hints that only let the loader skip work, and absence makes it do the safe, slower thing.
"""

from __future__ import annotations

import os

from firth.fsutil import atomic_write, fsync_dir
from firth.log.files import (
    CLEAN_SHUTDOWN_FILE,
    CLEAN_SHUTDOWN_MAGIC,
    RECOVERY_POINT_FILE,
    RECOVERY_POINT_MAGIC,
)


def _read_value(path: str, magic: str) -> int | None:
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            lines = file.read(256).split("\n")
    except FileNotFoundError:
        return None
    if len(lines) < 2 or lines[0] != magic:
        return None
    try:
        value = int(lines[1])
    except ValueError:
        return None
    return value if value >= 0 else None


def read_recovery_point(directory: str) -> int | None:
    return _read_value(os.path.join(directory, RECOVERY_POINT_FILE), RECOVERY_POINT_MAGIC)


def write_recovery_point(directory: str, offset: int) -> None:
    data = f"{RECOVERY_POINT_MAGIC}\n{offset}\n".encode("ascii")
    atomic_write(os.path.join(directory, RECOVERY_POINT_FILE), data)


def read_clean_marker(directory: str) -> int | None:
    """The log end offset recorded at a clean close, or None if there is no (valid) marker."""
    return _read_value(os.path.join(directory, CLEAN_SHUTDOWN_FILE), CLEAN_SHUTDOWN_MAGIC)


def write_clean_marker(directory: str, log_end_offset: int) -> None:
    data = f"{CLEAN_SHUTDOWN_MAGIC}\n{log_end_offset}\n".encode("ascii")
    atomic_write(os.path.join(directory, CLEAN_SHUTDOWN_FILE), data)


def remove_clean_marker(directory: str) -> bool:
    """Remove the marker durably (so a later crash is noticed); True if there was one."""
    try:
        os.unlink(os.path.join(directory, CLEAN_SHUTDOWN_FILE))
    except FileNotFoundError:
        return False
    fsync_dir(directory)
    return True
