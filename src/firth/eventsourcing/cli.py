"""firth events: look into an event store and run its outbox relay.

- `firth events streams`: streams with their version, event count and last position.
- `firth events show STREAM`: one stream's events (`--backwards`, `--from-version`, `--limit`).
- `firth events tail`: the last events of the global order; `--follow` keeps printing new ones.
- `firth events relay --to BOOTSTRAP --topic T`: the exactly-once outbox relay
  (see `firth.eventsourcing.outbox`), until interrupted.

Every command takes `--store URL` (default: $FIRTH_EVENT_STORE, else sqlite:///firth-events.db).
Exit codes: 0 success, 1 the store or the relay failed (one line on stderr, no traceback),
2 usage, 130 interrupted. `firth.cli` mounts this module through `register`/`run`; it also runs
on its own as `python -m firth.eventsourcing.cli`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from firth.eventsourcing.errors import EventStoreError
from firth.eventsourcing.records import RecordedEvent
from firth.eventsourcing.store import EventStore

DEFAULT_STORE = "sqlite:///firth-events.db"
STORE_ENV = "FIRTH_EVENT_STORE"
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130
DATA_WIDTH = 60  # characters of an event's JSON data shown in tables
FOLLOW_CHECK_S = 0.2  # how often `tail --follow` looks for an interrupt between events


def register(subparsers: Any) -> None:
    """Add the `events` command (with its subcommands) to an argparse subparsers object."""
    events = subparsers.add_parser(
        "events",
        help="inspect an event store, run its outbox relay",
        description=__doc__.split("\n\n")[0],
    )
    commands = events.add_subparsers(dest="events_command", metavar="SUBCOMMAND", required=True)
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        "--store",
        default=os.environ.get(STORE_ENV, DEFAULT_STORE),
        help=f"event store URL (default: ${STORE_ENV} or {DEFAULT_STORE})",
    )

    streams = commands.add_parser("streams", parents=[store], help="list streams")
    streams.add_argument("--limit", type=int, default=None)

    show = commands.add_parser("show", parents=[store], help="print one stream's events")
    show.add_argument("stream")
    show.add_argument("--from-version", type=int, default=None)
    show.add_argument("--backwards", action="store_true")
    show.add_argument("--limit", type=int, default=None)

    tail = commands.add_parser(
        "tail", parents=[store], help="print the latest events of all streams"
    )
    tail.add_argument(
        "-n", "--lines", type=int, default=20, help="how many past events (default 20)"
    )
    tail.add_argument("--from-position", type=int, default=None, help="start here instead")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    tail.add_argument(
        "--type", action="append", dest="types", help="only this event type (repeatable)"
    )
    tail.add_argument(
        "--category", action="append", dest="categories", help="only this category (repeatable)"
    )

    relay = commands.add_parser(
        "relay", parents=[store], help="publish every event to a Kafka topic, exactly once"
    )
    relay.add_argument(
        "--to", required=True, metavar="BOOTSTRAP", help="Kafka bootstrap servers (host:port)"
    )
    relay.add_argument("--topic", required=True)
    relay.add_argument(
        "--partitions", type=int, default=1, help="partitions if the topic is created (default 1)"
    )
    relay.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds to wait for Kafka (metadata, acknowledgements) before failing (default 30)",
    )
    relay.add_argument(
        "--standby",
        action="store_true",
        help="if another relay to the topic is active, wait and take over when it stops",
    )
    relay.add_argument(
        "--until-caught-up", action="store_true", help="exit once every stored event is published"
    )


def run(args: argparse.Namespace) -> int:
    """Run the `events` subcommand parsed into `args`; returns the exit code."""
    console = Console()
    try:
        with EventStore.open(args.store) as store:
            return COMMANDS[args.events_command](store, args, console)
    except EventStoreError as error:
        Console(stderr=True).print(
            f"[bold red]firth events: error:[/] {error}", soft_wrap=True, markup=True
        )
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _data(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= DATA_WIDTH else text[: DATA_WIDTH - 1] + "…"


def _events_table(title: str, events: Sequence[RecordedEvent]) -> Table:
    table = Table(title=title)
    for column in ("position", "stream", "version", "type", "data", "recorded at"):
        table.add_column(
            column,
            justify="right" if column in ("position", "version") else "left",
            overflow="fold",
        )
    for event in events:
        table.add_row(
            str(event.position),
            event.stream_id,
            str(event.version),
            event.type,
            _data(event.data),
            event.recorded_at.isoformat(timespec="milliseconds"),
        )
    return table


def _streams(store: EventStore, args: argparse.Namespace, console: Console) -> int:
    table = Table(title=f"streams in {store.url}")
    for column in ("stream", "version", "events", "last position", "last recorded at"):
        table.add_column(
            column, justify="left" if column in ("stream", "last recorded at") else "right"
        )
    for info in store.list_streams(args.limit):
        table.add_row(
            info.stream_id,
            str(info.version),
            str(info.event_count),
            str(info.last_position),
            info.last_recorded_at.isoformat(timespec="seconds"),
        )
    console.print(table)
    return EXIT_OK


def _show(store: EventStore, args: argparse.Namespace, console: Console) -> int:
    events = list(store.read_stream(args.stream, args.from_version, args.backwards, args.limit))
    if not events and store.stream_version(args.stream) == 0:
        Console(stderr=True).print(f"firth events: stream {args.stream!r} has no events")
        return EXIT_FAILED
    console.print(
        _events_table(f"{args.stream} (version {store.stream_version(args.stream)})", events)
    )
    return EXIT_OK


def _tail(store: EventStore, args: argparse.Namespace, console: Console) -> int:
    start = args.from_position
    if start is None:
        start = max(1, store.head_position() - args.lines + 1)
    if not args.follow:
        events = list(store.read_all(start, args.types, args.categories))
        console.print(_events_table(f"events from position {start}", events))
        return EXIT_OK
    interrupted = _InterruptFlag()
    with interrupted, store.subscribe(start, args.types, args.categories) as subscription:
        while not interrupted.raised:
            event = subscription.next(timeout=FOLLOW_CHECK_S)
            if event is None:
                continue
            console.print(
                f"[bold]{event.position}[/] {event.stream_id}@{event.version} [cyan]{event.type}[/] "
                f"{_data(event.data)}",
                soft_wrap=True,
                highlight=False,
            )
    return EXIT_INTERRUPTED


class _InterruptFlag:
    """SIGINT sets a flag instead of raising KeyboardInterrupt wherever the main thread happens
    to be (inside a store call holding its lock, say, which `close` would then wait for
    forever). The handler takes no lock; the loop looks at the flag every `FOLLOW_CHECK_S`.
    A second SIGINT raises KeyboardInterrupt as usual, for a process stuck where the loop
    cannot look (writing to a pipe nobody reads). Off the main thread (the command run
    in-process by another program) Python's own handling stays."""

    def __init__(self) -> None:
        self.raised = False
        self._previous: Any = None

    def __enter__(self) -> _InterruptFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._set)
        return self

    def _set(self, signum: int, frame: Any) -> None:
        if self.raised:
            raise KeyboardInterrupt
        self.raised = True

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _relay(store: EventStore, args: argparse.Namespace, console: Console) -> int:
    from firth.eventsourcing.outbox import OutboxRelay

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    relay = OutboxRelay(
        store,
        args.to,
        args.topic,
        partitions=args.partitions,
        standby=args.standby,
        timeout=args.timeout,
    )
    stats = relay.run(stop, until_caught_up=args.until_caught_up)
    console.print(
        f"relay to {args.topic}: resumed after {stats.resumed_after}, published {stats.published}, "
        f"skipped {stats.skipped}, last position {stats.last_position}",
        highlight=False,
    )
    return EXIT_OK


COMMANDS: dict[str, Callable[[EventStore, argparse.Namespace, Console], int]] = {
    "streams": _streams,
    "show": _show,
    "tail": _tail,
    "relay": _relay,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firth.eventsourcing.cli")
    register(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(["events", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    sys.exit(main())
