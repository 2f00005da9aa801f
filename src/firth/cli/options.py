"""Options and argument types shared by the client commands, without loading librdkafka.

Kept apart from ``firth.cli.client`` so that building the parser for ``firth serve`` (or for
``--help``) does not import confluent_kafka.
"""

from __future__ import annotations

import argparse
import os

BOOTSTRAP_ENV = "FIRTH_BOOTSTRAP"
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_TIMEOUT_S = 10.0


def add_client_options(parser: argparse.ArgumentParser) -> None:
    """Add --bootstrap and --timeout to a client subcommand's parser (hooks may reuse this)."""
    parser.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        default=os.environ.get(BOOTSTRAP_ENV, DEFAULT_BOOTSTRAP),
        help=f"broker to talk to (default: ${BOOTSTRAP_ENV} or {DEFAULT_BOOTSTRAP})",
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=positive_float,
        default=DEFAULT_TIMEOUT_S,
        help=f"give up on an unanswered broker after this long (default: {DEFAULT_TIMEOUT_S:g})",
    )


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def positive_int(text: str) -> int:
    value = non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
