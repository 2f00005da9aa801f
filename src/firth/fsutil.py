"""Small file-system primitives for durable metadata: atomic replace, directory fsync and
writing a whole buffer to a descriptor.

Checkpoint-style files (the topic catalog, producer-id blocks, recovery points) are rewritten
whole: write a temporary sibling, fsync it, rename it over the target, fsync the directory. A
crash at any point leaves either the old or the new file, never a torn one.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename or create inside `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write all of `data` to `fd`: `os.write` may write less than asked (a full disk, a
    signal), and a short write must not pass for a whole one."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


TMP_SUFFIX = ".tmp"
"""The temporary sibling's suffix; a leftover one is garbage from a crash mid-write."""


def atomic_write(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    fsync: bool = True,
    sync_directory: bool = True,
) -> None:
    """Replace `path` with `data` so that readers see the old or the new content, never a mix.

    `fsync=False` is the unsafe test mode; `sync_directory=False` lets a caller that writes
    several files in one folder fsync the folder once itself.
    """
    path = Path(path)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if fsync and sync_directory:
        fsync_dir(path.parent)
