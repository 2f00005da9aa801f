"""``firth consume TOPIC``: print a topic's messages, one per line, without a consumer group.

Partitions are assigned directly (``assign``), so nothing is committed and no group is joined.
Where to start is resolved to a concrete offset per partition before assigning:

    (no option)        the beginning, or with --follow the end (only new messages)
    --from-beginning   the log start offset
    --offset N         N (clamped into the partition's range); a negative N means N before the end
    --from-timestamp T the first message with timestamp >= T (ISO 8601, or epoch milliseconds)

Without ``--follow`` the command stops when every assigned partition has been read up to the
high watermark it had when the command started (or librdkafka reports end-of-partition), so
``firth consume T`` prints the topic as it is and exits. Messages are printed as their value;
``--show-*`` flags prefix fields separated by tabs, or ``--format`` gives a template.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from firth.cli.client import (
    client_config,
    non_negative_int,
    partitions_of,
    positive_int,
    probe,
    translate,
    translate_error,
    unreachable,
)
from firth.cli.errors import EXIT_INTERRUPTED, UsageError
from firth.cli.output import stderr_console

FIELDS = ("topic", "partition", "offset", "timestamp", "time", "key", "value", "headers")
POLL_S = 0.2


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "consume",
        parents=parents,
        help="print a topic's messages",
        description="Print the messages of TOPIC, one per line, then exit at the end of the "
        "topic (or keep waiting with --follow). No consumer group is used; nothing is committed.",
        epilog="--format fields: " + ", ".join("{" + name + "}" for name in FIELDS),
    )
    parser.add_argument("topic", metavar="TOPIC")
    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        "--from-beginning",
        action="store_true",
        help="start at the first message (the default unless --follow)",
    )
    start.add_argument(
        "--offset",
        type=int,
        metavar="N",
        help="start at offset N in each partition (negative: N messages before the end)",
    )
    start.add_argument(
        "--from-timestamp",
        metavar="TIME",
        help="start at the first message at or after TIME (ISO 8601, UTC unless a zone is "
        "given, or epoch milliseconds)",
    )
    parser.add_argument(
        "--partition", type=non_negative_int, metavar="N", help="read partition N only"
    )
    parser.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="keep waiting for new messages (Ctrl-C to stop); without a start option, "
        "only new messages are shown",
    )
    parser.add_argument(
        "--max-messages", type=positive_int, metavar="N", help="stop after N messages"
    )
    parser.add_argument("--show-key", action="store_true", help="print the key before the value")
    parser.add_argument(
        "--show-headers", action="store_true", help="print headers as k=v,k=v before the value"
    )
    parser.add_argument("--show-offset", action="store_true", help="print partition:offset first")
    parser.add_argument(
        "--show-timestamp", action="store_true", help="print the timestamp (ISO 8601, UTC)"
    )
    parser.add_argument(
        "--format",
        metavar="TEMPLATE",
        help=r"print each message with this template, e.g. '{offset}\t{key}={value}' "
        r"(\t and \n are understood); overrides --show-*",
    )
    parser.set_defaults(handler=consume)


# --- start positions --------------------------------------------------------------------------


def parse_timestamp(text: str) -> int:
    """Epoch milliseconds from ``text``: an integer, or ISO 8601 (UTC when no zone is given)."""
    stripped = text.strip()
    if stripped.lstrip("-").isdigit():
        return int(stripped)
    try:
        moment = datetime.datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--from-timestamp {text!r} is neither epoch milliseconds nor ISO 8601 "
            "(e.g. 2026-11-26T22:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1000)


def _start_offsets(
    consumer: Consumer, args: argparse.Namespace, partitions: list[int], ends: dict[int, int]
) -> dict[int, int]:
    """The concrete first offset to read in each partition."""
    starts: dict[int, int] = {}
    lows: dict[int, int] = {}
    for partition in partitions:
        lows[partition], ends[partition] = _watermarks(consumer, args, partition)
    if args.from_timestamp is not None:
        timestamp = parse_timestamp(args.from_timestamp)
        wanted = [TopicPartition(args.topic, partition, timestamp) for partition in partitions]
        try:
            found = consumer.offsets_for_times(wanted, timeout=args.timeout)
        except KafkaException as exception:
            raise translate(exception, args.bootstrap, args.topic) from None
        for tp in found:
            if tp.error is not None:
                raise translate_error(tp.error, args.bootstrap, args.topic)
            # -1: no message at or after the timestamp, so start at the end.
            starts[tp.partition] = tp.offset if tp.offset >= 0 else ends[tp.partition]
        return starts
    for partition in partitions:
        low, high = lows[partition], ends[partition]
        if args.offset is not None:
            wanted_offset = args.offset if args.offset >= 0 else high + args.offset
            starts[partition] = min(max(wanted_offset, low), high)
        elif args.follow and not args.from_beginning:
            starts[partition] = high
        else:
            starts[partition] = low
    return starts


def _watermarks(consumer: Consumer, args: argparse.Namespace, partition: int) -> tuple[int, int]:
    try:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(args.topic, partition), timeout=args.timeout, cached=False
        )
    except KafkaException as exception:
        raise translate(exception, args.bootstrap, args.topic) from None
    return int(low), int(high)


# --- printing ---------------------------------------------------------------------------------


def _text(data: bytes | None) -> str:
    return "null" if data is None else data.decode("utf-8", "backslashreplace")


def _headers_text(headers: list[tuple[str, bytes | None]] | None) -> str:
    return ",".join(
        name if value is None else f"{name}={_text(value)}" for name, value in headers or ()
    )


def _fields(message: Any) -> dict[str, Any]:
    timestamp_type, timestamp = message.timestamp()
    moment = (
        datetime.datetime.fromtimestamp(timestamp / 1000, datetime.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
        if timestamp_type != 0 and timestamp >= 0
        else ""
    )
    return {
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "timestamp": timestamp,
        "time": moment,
        "key": _text(message.key()),
        "value": _text(message.value()),
        "headers": _headers_text(message.headers()),
    }


def _template(args: argparse.Namespace) -> str:
    if args.format is not None:
        template = args.format.replace("\\t", "\t").replace("\\n", "\n")
        try:
            template.format_map(dict.fromkeys(FIELDS, ""))
        except (KeyError, IndexError, ValueError) as error:
            raise UsageError(
                f"--format {args.format!r} is not a valid template ({error}); "
                f"fields: {', '.join('{' + name + '}' for name in FIELDS)}"
            ) from None
        return template
    parts = []
    if args.show_offset:
        parts.append("{partition}:{offset}")
    if args.show_timestamp:
        parts.append("{time}")
    if args.show_key:
        parts.append("{key}")
    if args.show_headers:
        parts.append("{headers}")
    parts.append("{value}")
    return "\t".join(parts)


# --- the command ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Progress:
    """Per-partition read positions against the end each partition had at the start."""

    ends: dict[int, int]
    positions: dict[int, int]

    def done(self, partition: int) -> bool:
        return self.positions[partition] >= self.ends[partition]

    def all_done(self) -> bool:
        return all(self.done(partition) for partition in self.positions)


def consume(args: argparse.Namespace) -> int:
    template = _template(args)
    if args.from_timestamp is not None:
        parse_timestamp(args.from_timestamp)  # a usage error before any connection
    consumer = Consumer(
        client_config(
            args,
            **{
                # A group id is required by the client library; it is never used to join or
                # commit, because partitions are assigned directly and auto-commit is off.
                "group.id": "firth-cli",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                "allow.auto.create.topics": False,
            },
        )
    )
    try:
        return _consume(consumer, args, template)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        consumer.close()


def _consume(consumer: Consumer, args: argparse.Namespace, template: str) -> int:
    partitions = partitions_of(probe(consumer, args), args.topic, args.bootstrap)
    if args.partition is not None:
        if args.partition not in partitions:
            raise UsageError(
                f"topic {args.topic!r} has partitions 0-{len(partitions) - 1}; "
                f"there is no partition {args.partition}"
            )
        partitions = [args.partition]
    ends: dict[int, int] = {}
    starts = _start_offsets(consumer, args, partitions, ends)
    progress = _Progress(ends=ends, positions=dict(starts))
    consumer.assign([TopicPartition(args.topic, p, offset) for p, offset in starts.items()])
    count = 0
    last_progress = time.monotonic()
    output = sys.stdout
    while args.follow or not progress.all_done():
        if args.max_messages is not None and count >= args.max_messages:
            break
        message = consumer.poll(POLL_S)
        if message is None:
            if not args.follow and time.monotonic() - last_progress > args.timeout:
                raise unreachable(args.bootstrap)
            continue
        last_progress = time.monotonic()
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                partition = int(message.partition() or 0)
                progress.positions[partition] = max(
                    progress.positions[partition], progress.ends[partition]
                )
                continue
            if error.fatal() or not error.retriable():
                raise translate_error(error, args.bootstrap, args.topic)
            continue
        progress.positions[int(message.partition() or 0)] = int(message.offset() or 0) + 1
        # A reader that went away (`| head`) raises BrokenPipeError, which main() ends quietly.
        output.write(template.format_map(_fields(message)) + "\n")
        if args.follow:
            output.flush()
        count += 1
    output.flush()
    noun = "message" if count == 1 else "messages"
    stderr_console().print(f"{count} {noun} from {args.topic}")
    return 0
