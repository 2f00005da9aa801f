"""The ``firth`` command line: ``serve`` runs the broker; the other commands are Kafka clients.

``main(argv)`` is the console script (and ``python -m firth``). It builds one argparse tree,
dispatches to the chosen command's ``handler(args) -> int`` and turns every ``CliError`` (and a
bad config) into a one-line message on stderr and its exit code (see ``firth.cli.errors``), so a
person's mistake never ends in a traceback.

Commands are registered from a table of modules, each with ``register(subparsers, parents)``
that sets ``handler`` on its parser. Two commands come from other parts of Firth
through hooks: a module that provides ``register(subparsers)`` and ``run(args) -> int``
(``firth.eventsourcing.cli`` for ``firth events``, ``firth.broker.groups.cli`` for ``firth
groups``). A hook module that cannot be imported leaves its command out; it does not break the
others. Hooks may reuse ``firth.cli.client.add_client_options`` for --bootstrap/--timeout.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from firth import __version__
from firth.cli.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
)

# Modules of other parts that contribute subcommands, imported lazily.
HOOK_MODULES = ("firth.broker.groups.cli", "firth.eventsourcing.cli", "firth.amqp.cli")

# Built-in commands: name → module in firth.cli with register(subparsers, parents).
BUILTIN = {
    "serve": "firth.cli.serve",
    "topics": "firth.cli.topics",
    "produce": "firth.cli.produce",
    "consume": "firth.cli.consume",
}

EPILOG = """\
exit codes: 0 success; 1 the operation failed (the broker refused, or not every message was
acknowledged); 2 usage error; 3 no broker reachable at --bootstrap; 130 interrupted.
Quick start: `firth serve` in one terminal, then
  firth topics create demo --partitions 3
  echo hello | firth produce demo
  firth consume demo
"""


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors exiting EXIT_USAGE (2, as argparse does) on one line."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser(
    hooks: dict[str, Callable[[argparse.Namespace], int]] | None = None,
    command: str | None = None,
) -> argparse.ArgumentParser:
    """The argparse tree; hook commands found are recorded in ``hooks`` (name → run).

    With ``command`` naming a built-in command, only that command is registered, so that e.g.
    ``firth serve`` loads neither librdkafka nor the hook modules; otherwise (help, a hook
    command, a typo) every command is.
    """
    parser = _Parser(
        prog="firth",
        description="Firth: a Kafka-compatible message broker and event store in one process.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"firth {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log client library details to stderr"
    )
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    client_options = _client_options_parser()
    chosen = [BUILTIN[command]] if command in BUILTIN else list(BUILTIN.values())
    for module_name in chosen:
        module = importlib.import_module(module_name)
        module.register(subparsers, [client_options])
    if command not in BUILTIN:
        for module_name in HOOK_MODULES:
            _register_hook(subparsers, module_name, hooks if hooks is not None else {})
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The command word of ``argv``: the top-level options take no values, so it is the first
    word not starting with "-" (None when there is none, or when help is asked for first)."""
    for word in argv:
        if word in ("-h", "--help", "--version"):
            return None
        if not word.startswith("-"):
            return word
    return None


def _client_options_parser() -> argparse.ArgumentParser:
    from firth.cli.options import add_client_options

    parent = argparse.ArgumentParser(add_help=False)
    add_client_options(parent)
    return parent


def _register_hook(
    subparsers: Any, module_name: str, hooks: dict[str, Callable[[argparse.Namespace], int]]
) -> None:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return
    register = getattr(module, "register", None)
    run = getattr(module, "run", None)
    if register is None or run is None:
        return
    before = set(subparsers.choices)
    register(subparsers)
    for name in set(subparsers.choices) - before:
        hooks[name] = run


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``firth`` command line; returns the process exit code."""
    hooks: dict[str, Callable[[argparse.Namespace], int]] = {}
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(hooks, _command_in(words))
    args = parser.parse_args(words)
    if args.verbose:
        _log_to_stderr()
    handler = hooks.get(args.command) or getattr(args, "handler", None)
    if handler is None:
        parser.error(f"{args.command}: no handler")
    try:
        return int(handler(args))
    except CliError as error:
        _print_error(error.message)
        return error.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our stdout went away (`firth consume t | head`): stop quietly.
        _silence_stdout()
        return EXIT_OK


def _print_error(message: str) -> None:
    from firth.cli.output import stderr_console

    stderr_console().print(f"[bold red]firth: error:[/] {message}", soft_wrap=True)


def _log_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("firth")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


def _silence_stdout() -> None:
    # Python flushes stdout at exit and would report the broken pipe again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
