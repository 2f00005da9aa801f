"""Where the CLI writes: data on stdout, messages for the person on stderr, both through rich.

When stdout is not a terminal (a pipe, a test), rich would wrap tables at 80 columns; a wider
fixed width keeps rows on one line for grep and for tests.
"""

from __future__ import annotations

import functools

from rich.console import Console

PIPE_WIDTH = 160


@functools.cache
def stdout_console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=PIPE_WIDTH)
    return console


@functools.cache
def stderr_console() -> Console:
    console = Console(stderr=True, highlight=False)
    if not console.is_terminal:
        console = Console(stderr=True, highlight=False, width=PIPE_WIDTH)
    return console
