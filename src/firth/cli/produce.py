"""``firth produce TOPIC``: each line of stdin becomes one message; reports what was acknowledged.

A line is the bytes up to a newline (the newline, and a carriage return before it, are not part
of the message). With ``--key-separator SEP`` the text before the first SEP is the key and the
rest the value; a line without SEP is an input error. Headers given with ``--header`` go on every
message. The exit code is 0 only when the broker acknowledged every message (with ``--acks 0``
the broker never answers, so "acknowledged" then means "sent").
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from confluent_kafka import KafkaError, Producer

from firth.cli.client import (
    client_config,
    key_values,
    non_negative_int,
    partitions_of,
    probe,
    translate_error,
)
from firth.cli.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    BrokerRefused,
    BrokerUnreachable,
    CliError,
    UsageError,
)
from firth.cli.output import stderr_console

COMPRESSION = ("none", "gzip", "snappy", "lz4", "zstd")
ACKS = ("all", "1", "0")
# How long librdkafka keeps retrying one message before reporting it failed.
MIN_DELIVERY_TIMEOUT_S = 30.0
# How long to wait for outstanding acknowledgements after Ctrl-C.
INTERRUPTED_FLUSH_S = 3.0


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "produce",
        parents=parents,
        help="send each line of stdin as a message",
        description="Send each line of stdin to TOPIC as one message, then report how many "
        "the broker acknowledged.",
    )
    parser.add_argument("topic", metavar="TOPIC")
    parser.add_argument(
        "--key-separator",
        metavar="SEP",
        help="split each line at the first SEP into key and value",
    )
    parser.add_argument(
        "--header",
        action="append",
        metavar="KEY=VALUE",
        help="add a header to every message (repeatable)",
    )
    parser.add_argument(
        "--partition",
        type=non_negative_int,
        metavar="N",
        help="send every message to partition N (default: by key hash, or spread)",
    )
    parser.add_argument(
        "--acks", choices=ACKS, default="all", help="acknowledgement level (default: all)"
    )
    parser.add_argument(
        "--compression", choices=COMPRESSION, default="none", help="batch compression codec"
    )
    parser.set_defaults(handler=produce)


@dataclass(slots=True)
class _Tally:
    """Delivery reports counted by the producer's callback (runs inside poll/flush)."""

    sent: int = 0
    acknowledged: int = 0
    failed: int = 0
    first_error: KafkaError | None = None
    partitions: set[int] = field(default_factory=set)

    def on_delivery(self, error: KafkaError | None, message: Any) -> None:
        if error is None:
            self.acknowledged += 1
            self.partitions.add(message.partition())
        else:
            self.failed += 1
            if self.first_error is None:
                self.first_error = error


def _lines(stream: BinaryIO) -> Iterator[bytes]:
    for raw in stream:
        line = raw[:-1] if raw.endswith(b"\n") else raw
        yield line[:-1] if line.endswith(b"\r") else line


def produce(args: argparse.Namespace) -> int:
    headers = [(key, value.encode()) for key, value in key_values(args.header, "--header")]
    separator = args.key_separator.encode() if args.key_separator is not None else None
    if separator == b"":
        raise UsageError("--key-separator must not be empty")
    delivery_timeout_s = max(args.timeout, MIN_DELIVERY_TIMEOUT_S)
    producer = Producer(
        client_config(
            args,
            **{
                "acks": args.acks,
                "compression.type": args.compression,
                "linger.ms": 5,
                "message.timeout.ms": int(delivery_timeout_s * 1000),
            },
        )
    )
    # Naming the topic lets a broker with auto-create make it, as any producer would.
    partitions = partitions_of(probe(producer, args, args.topic), args.topic, args.bootstrap)
    if args.partition is not None and args.partition not in partitions:
        raise UsageError(
            f"topic {args.topic!r} has partitions 0-{len(partitions) - 1}; "
            f"there is no partition {args.partition}"
        )
    tally = _Tally()
    if sys.stdin.isatty():
        stderr_console().print(
            f"type messages for {args.topic}, one per line; Ctrl-D to finish", style="dim"
        )
    extra: dict[str, Any] = {} if args.partition is None else {"partition": args.partition}
    if headers:
        extra["headers"] = headers
    problem: CliError | None = None
    interrupted = False
    try:
        for number, line in enumerate(_lines(sys.stdin.buffer), start=1):
            key: bytes | None = None
            value = line
            if separator is not None:
                key, found, value = line.partition(separator)
                if not found:
                    problem = UsageError(
                        f"line {number} has no key separator {args.key_separator!r}; "
                        f"stopped there ({tally.sent} lines before it were sent)"
                    )
                    break
            _send(producer, args.topic, value, key, extra, tally)
    except KeyboardInterrupt:
        interrupted = True
    # flush() returns how many messages are still waiting; they fail after message.timeout.ms.
    # After Ctrl-C, wait only briefly: the person wants out, and the report says what is missing.
    try:
        producer.flush(INTERRUPTED_FLUSH_S if interrupted else delivery_timeout_s + 5)
    except KeyboardInterrupt:
        interrupted = True
    _report(args, tally)
    if problem is not None:
        raise problem
    if interrupted:
        return EXIT_INTERRUPTED
    if tally.failed or tally.acknowledged < tally.sent:
        if tally.first_error is not None:
            reason = translate_error(tally.first_error, args.bootstrap, args.topic)
            if isinstance(reason, BrokerUnreachable):
                raise reason
            raise BrokerRefused(f"{tally.failed} of {tally.sent} messages failed: {reason}")
        return EXIT_FAILED
    return 0


def _send(
    producer: Producer,
    topic: str,
    value: bytes,
    key: bytes | None,
    extra: dict[str, Any],
    tally: _Tally,
) -> None:
    while True:
        try:
            producer.produce(topic, value, key, on_delivery=tally.on_delivery, **extra)
            break
        except BufferError:
            # The local queue is full: let deliveries drain before trying again.
            producer.poll(0.1)
    tally.sent += 1
    producer.poll(0)


def _report(args: argparse.Namespace, tally: _Tally) -> None:
    console = stderr_console()
    noun = "message" if tally.sent == 1 else "messages"
    if tally.acknowledged == tally.sent:
        console.print(
            f"{tally.acknowledged} {noun} acknowledged by {args.bootstrap} "
            f"(topic {args.topic}, acks={args.acks})"
        )
    else:
        console.print(
            f"[red]{tally.acknowledged} of {tally.sent} {noun} acknowledged[/]; "
            f"{tally.failed} failed, {tally.sent - tally.acknowledged - tally.failed} unanswered"
        )
