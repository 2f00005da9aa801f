"""The CLI's error tree: each error carries the exit code the process ends with.

A person's mistake (a bad flag, a missing topic, no broker listening) is a ``CliError`` whose
message says what to do next; ``firth.cli.main`` prints it on one line and returns its code. Only
a bug in Firth itself may end in a traceback.

Exit codes (documented in docs/cli.md; scripts may rely on them):

    0    success
    1    the operation failed: the broker refused it (the message names the reason), or not every
         produced message was acknowledged, or the broker could not start
    2    usage: bad arguments, a bad config file or environment variable, unusable input
    3    no broker answered at --bootstrap within the timeout
    130  interrupted (Ctrl-C)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A failure to report to the person at the terminal, with the process exit code."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(CliError):
    """The command line, config or input cannot be used as given."""

    exit_code = EXIT_USAGE


class BrokerUnreachable(CliError):
    """No broker answered at the bootstrap address in time."""

    exit_code = EXIT_UNREACHABLE


class BrokerRefused(CliError):
    """The broker answered with an error; ``error_name`` is Kafka's name for it."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, error_name: str = "") -> None:
        super().__init__(message)
        self.error_name = error_name
