"""``firth serve``: build a Config from flags, env and file, set up logging, run the broker.

The broker itself (start, signals, graceful stop) is ``firth.app.run``; this module only turns
the command line into a Config and reports a bad one as a usage error.

The hidden ``--ready-file PATH`` is for programs that start ``firth serve`` as a subprocess
(``firth.testing.broker_process``): once the Kafka listener accepts connections, the bound
"host:port" is written to PATH (atomically, so a reader never sees half of it), from
``firth.app.run``'s ``on_started`` hook, so a port-0 listen address reports the port it got.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from firth.cli.errors import UsageError
from firth.config import Config, ConfigError, format_host_port

# Flag → Config field, for error messages that name the flag the person typed.
FLAG_LABELS = {
    "data_dir": "--data-dir",
    "kafka_listen": "--kafka-listen",
    "kafka_advertised": "--kafka-advertised",
    "amqp_listen": "--amqp-listen",
    "auto_create_topics": "--no-auto-create-topics",
    "num_partitions": "--num-partitions",
    "log_level": "--log-level",
    "fsync": "--unsafe-no-fsync",
}

DESCRIPTION = """\
Run a Firth broker in the foreground until SIGINT (Ctrl-C) or SIGTERM, then stop gracefully.

Safe defaults: data in ./firth-data, the Kafka listener on 127.0.0.1:9092 (loopback only:
nothing else on the network can connect), every acknowledged write fsynced to disk.

Settings come from, highest first: these flags, FIRTH_<SETTING> environment variables (e.g.
FIRTH_DATA_DIR, FIRTH_KAFKA_ADVERTISED), the TOML file given by --config or FIRTH_CONFIG, and
the defaults. See docs/cli.md for every setting.
"""


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    del parents  # serve is not a client command
    parser = subparsers.add_parser(
        "serve",
        help="run the broker",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="FILE", type=Path, help="TOML config file")
    parser.add_argument(
        "--data-dir", metavar="DIR", help="folder for all data (default: ./firth-data)"
    )
    parser.add_argument(
        "--kafka-listen",
        metavar="HOST:PORT",
        help="Kafka listener address (default: 127.0.0.1:9092; port 0 picks a free one; "
        "0.0.0.0 exposes the broker to the network)",
    )
    parser.add_argument(
        "--kafka-advertised",
        metavar="HOST:PORT",
        help="address clients are told to connect to (default: the listen address)",
    )
    parser.add_argument(
        "--amqp-listen",
        metavar="HOST:PORT",
        help="AMQP 0-9-1 (RabbitMQ clients) listener address (default: 127.0.0.1:5672; "
        "port 0 picks a free one; an empty value turns it off)",
    )
    parser.add_argument(
        "--no-auto-create-topics",
        action="store_true",
        help="refuse to create topics on first use (clients must create them)",
    )
    parser.add_argument(
        "--num-partitions",
        metavar="N",
        help="partition count of auto-created topics (default: 1)",
    )
    parser.add_argument(
        "--log-level",
        metavar="LEVEL",
        help="DEBUG, INFO, WARNING, ERROR or CRITICAL (default: INFO)",
    )
    parser.add_argument(
        "--unsafe-no-fsync",
        action="store_true",
        help="never fsync: acknowledged messages are lost on a crash (for tests only)",
    )
    parser.add_argument("--ready-file", metavar="PATH", type=Path, help=argparse.SUPPRESS)
    parser.set_defaults(handler=serve)


def load_config(args: argparse.Namespace, env: Any = None) -> Config:
    """The Config for ``firth serve`` with these arguments; flags not given do not override."""
    try:
        return Config.load(
            args.config,
            env=os.environ if env is None else env,
            labels=FLAG_LABELS,
            data_dir=args.data_dir,
            kafka_listen=args.kafka_listen,
            kafka_advertised=args.kafka_advertised,
            amqp_listen=args.amqp_listen,
            auto_create_topics=False if args.no_auto_create_topics else None,
            num_partitions=args.num_partitions,
            log_level=args.log_level,
            fsync=False if args.unsafe_no_fsync else None,
        )
    except ConfigError as error:
        raise UsageError(str(error)) from None


def setup_logging(level: str) -> None:
    """Log records to stderr: rich formatting on a terminal, plain lines otherwise."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)


def serve(args: argparse.Namespace) -> int:
    config = load_config(args)
    setup_logging(config.log_level)
    log = logging.getLogger("firth.serve")
    log.info(
        "starting: data in %s, Kafka listener on %s%s%s",
        config.data_dir.resolve(),
        config.kafka_listen,
        f", advertised as {config.kafka_advertised}" if config.kafka_advertised else "",
        f", AMQP listener on {config.amqp_listen}" if config.amqp_listen else "",
    )
    if not config.fsync:
        log.warning(
            "fsync is OFF: acknowledged messages can be lost on a crash; use only for tests"
        )
    from firth import app

    if args.ready_file is None:
        return app.run(config)
    ready_file = args.ready_file

    def on_started(running: app.FirthApp) -> None:
        amqp = running.amqp_address
        if amqp is not None:  # beside the ready file, written first (see firth.testing.process)
            write_ready_file(
                ready_file.with_name(ready_file.name + ".amqp"), format_host_port(*amqp)
            )
        write_ready_file(ready_file, format_host_port(*running.kafka_address))

    return app.run(config, on_started=on_started)


def write_ready_file(path: Path, address: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(address + "\n")
    os.replace(temporary, path)
