"""``firth queues|exchanges|bindings|amqp``: AMQP administration and a quick look at messages.

- ``firth queues list`` (ready, unacked, consumers, rates), ``firth exchanges list`` and
  ``firth bindings list`` ask the broker's local admin socket (``<data dir>/__amqp/admin.sock``,
  see ``firth.amqp.admin``), because AMQP 0-9-1 itself cannot list anything. They therefore
  run on the broker's machine, as its user, with ``--data-dir`` (or ``FIRTH_DATA_DIR``) naming
  its data folder.
- ``firth queues purge|delete``, ``firth amqp publish`` and ``firth amqp get`` are ordinary AMQP
  clients (pika) talking to ``--url`` (default ``$FIRTH_AMQP_URL`` or
  ``amqp://guest:guest@127.0.0.1:5672/``), so they work against any RabbitMQ as well.

Hooked into the ``firth`` command by ``firth.cli`` (``register(subparsers)`` / ``run(args)``).
Exit codes follow the rest of the CLI: 1 the broker refused, 2 usage, 3 broker unreachable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from firth.cli.errors import EXIT_OK, BrokerRefused, BrokerUnreachable, CliError, UsageError

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        default=None,
        help="the broker's data folder (default: $FIRTH_DATA_DIR or ./firth-data)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=None,
        help=f"AMQP URL of the broker (default: $FIRTH_AMQP_URL or {DEFAULT_URL})",
    )


def register(subparsers: Any) -> None:
    queues = subparsers.add_parser(
        "queues", help="list, purge and delete AMQP queues", description=__doc__
    )
    queue_actions = queues.add_subparsers(dest="amqp_action", metavar="ACTION", required=True)
    listing = queue_actions.add_parser("list", help="queues with ready/unacked/consumers/rates")
    _data_dir_option(listing)
    purge = queue_actions.add_parser("purge", help="drop a queue's ready messages")
    purge.add_argument("name", metavar="QUEUE")
    _url_option(purge)
    delete = queue_actions.add_parser("delete", help="delete a queue")
    delete.add_argument("name", metavar="QUEUE")
    delete.add_argument("--if-unused", action="store_true", help="only if it has no consumers")
    delete.add_argument("--if-empty", action="store_true", help="only if it has no messages")
    _url_option(delete)

    exchanges = subparsers.add_parser("exchanges", help="list AMQP exchanges")
    exchange_actions = exchanges.add_subparsers(dest="amqp_action", metavar="ACTION", required=True)
    _data_dir_option(exchange_actions.add_parser("list", help="every exchange"))

    bindings = subparsers.add_parser("bindings", help="list AMQP bindings")
    binding_actions = bindings.add_subparsers(dest="amqp_action", metavar="ACTION", required=True)
    _data_dir_option(binding_actions.add_parser("list", help="every binding"))

    amqp = subparsers.add_parser("amqp", help="publish or get one AMQP message")
    amqp_actions = amqp.add_subparsers(dest="amqp_action", metavar="ACTION", required=True)
    publish = amqp_actions.add_parser(
        "publish", help="publish a message (body from the argument or stdin), with a confirm"
    )
    publish.add_argument("exchange", metavar="EXCHANGE", help='exchange ("" for the default)')
    publish.add_argument("routing_key", metavar="ROUTING_KEY")
    publish.add_argument("body", metavar="BODY", nargs="?", help="message body (default: stdin)")
    publish.add_argument("--persistent", action="store_true", help="delivery_mode 2")
    publish.add_argument("--mandatory", action="store_true", help="fail if unroutable")
    publish.add_argument(
        "--header", action="append", default=[], metavar="K=V", help="a header (repeatable)"
    )
    publish.add_argument("--content-type", default=None)
    publish.add_argument("--correlation-id", default=None)
    publish.add_argument("--reply-to", default=None)
    publish.add_argument("--expiration", default=None, metavar="MS")
    publish.add_argument("--priority", type=int, default=None)
    _url_option(publish)
    get = amqp_actions.add_parser("get", help="get messages from a queue (basic.get)")
    get.add_argument("queue", metavar="QUEUE")
    get.add_argument("--count", type=int, default=1, metavar="N", help="at most N (default 1)")
    get.add_argument(
        "--requeue", action="store_true", help="put them back (redelivered) instead of acking"
    )
    get.add_argument("--json", action="store_true", help="one JSON object per message")
    _url_option(get)


def run(args: argparse.Namespace) -> int:
    actions: dict[tuple[str, str], Callable[[argparse.Namespace], int]] = {
        ("queues", "list"): _queues_list,
        ("queues", "purge"): _queues_purge,
        ("queues", "delete"): _queues_delete,
        ("exchanges", "list"): _exchanges_list,
        ("bindings", "list"): _bindings_list,
        ("amqp", "publish"): _publish,
        ("amqp", "get"): _get,
    }
    return actions[(args.command, args.amqp_action)](args)


# -- listing via the admin socket ------------------------------------------------------------------


def _admin(args: argparse.Namespace, op: str) -> list[dict[str, Any]]:
    from firth.amqp.admin import request

    data_dir = Path(args.data_dir or os.environ.get("FIRTH_DATA_DIR") or "firth-data")
    path = data_dir / "__amqp" / "admin.sock"
    if not path.exists():
        raise BrokerUnreachable(
            f"no broker admin socket at {path}: is `firth serve` running with --data-dir "
            f"{data_dir} and its AMQP listener on?"
        )
    try:
        answer = request(path, op)
    except OSError as error:
        raise BrokerUnreachable(f"cannot reach the broker at {path}: {error}") from None
    if "error" in answer:
        raise BrokerRefused(str(answer["error"]))
    rows: list[dict[str, Any]] = answer[op]
    return rows


def _print_rows(args: argparse.Namespace, rows: list[dict[str, Any]], columns: list[str]) -> None:
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    from rich.table import Table

    from firth.cli.output import stdout_console

    table = Table(box=None, header_style="bold")
    for column in columns:
        table.add_column(column.replace("_", " "))
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    stdout_console().print(table)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return "" if value is None else str(value)


def _queues_list(args: argparse.Namespace) -> int:
    rows = _admin(args, "queues")
    _print_rows(
        args,
        rows,
        [
            "name",
            "durable",
            "ready",
            "unacked",
            "consumers",
            "publish_rate",
            "deliver_rate",
            "ack_rate",
            "arguments",
        ],
    )
    return EXIT_OK


def _exchanges_list(args: argparse.Namespace) -> int:
    rows = _admin(args, "exchanges")
    for row in rows if not args.json else ():
        row["name"] = row["name"] or "(default)"
    _print_rows(args, rows, ["name", "type", "durable", "auto_delete", "internal", "arguments"])
    return EXIT_OK


def _bindings_list(args: argparse.Namespace) -> int:
    rows = _admin(args, "bindings")
    for row in rows if not args.json else ():
        row["source"] = row["source"] or "(default)"
    _print_rows(
        args, rows, ["source", "destination", "destination_type", "routing_key", "arguments"]
    )
    return EXIT_OK


# -- AMQP clients ----------------------------------------------------------------------------------


def _connect(args: argparse.Namespace) -> Any:
    import pika
    import pika.exceptions

    url = args.url or os.environ.get("FIRTH_AMQP_URL") or DEFAULT_URL
    try:
        parameters = pika.URLParameters(url)
    except Exception as error:
        raise UsageError(f"--url {url!r} is not an AMQP URL: {error}") from None
    parameters.connection_attempts = 1
    parameters.socket_timeout = 5
    try:
        return pika.BlockingConnection(parameters)
    except pika.exceptions.ProbableAuthenticationError as error:
        raise BrokerRefused(f"login refused at {url}: {error}") from None
    except pika.exceptions.AMQPConnectionError as error:
        raise BrokerUnreachable(f"no AMQP broker reachable at {url} ({error!r})") from None


def _refused(error: Any) -> CliError:
    return BrokerRefused(f"the broker refused: {error.reply_code} {error.reply_text}")


def _with_channel(args: argparse.Namespace, action: Callable[[Any], int]) -> int:
    import pika.exceptions

    connection = _connect(args)
    try:
        return action(connection.channel())
    except pika.exceptions.ChannelClosedByBroker as error:
        raise _refused(error) from None
    except pika.exceptions.ConnectionClosedByBroker as error:
        raise _refused(error) from None
    finally:
        if connection.is_open:
            connection.close()


def _queues_purge(args: argparse.Namespace) -> int:
    def action(channel: Any) -> int:
        count = channel.queue_purge(args.name).method.message_count
        print(f"purged {count} messages from {args.name}")
        return EXIT_OK

    return _with_channel(args, action)


def _queues_delete(args: argparse.Namespace) -> int:
    def action(channel: Any) -> int:
        channel.queue_declare(args.name, passive=True)  # 404 for a missing queue, here
        count = channel.queue_delete(
            args.name, if_unused=args.if_unused, if_empty=args.if_empty
        ).method.message_count
        print(f"deleted {args.name} ({count} messages)")
        return EXIT_OK

    return _with_channel(args, action)


def _publish(args: argparse.Namespace) -> int:
    import pika
    import pika.exceptions

    body = args.body.encode() if args.body is not None else sys.stdin.buffer.read()
    headers: dict[str, str] = {}
    for item in args.header:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--header {item!r}: expected KEY=VALUE")
        headers[key] = value
    properties = pika.BasicProperties(
        delivery_mode=2 if args.persistent else None,
        headers=headers or None,
        content_type=args.content_type,
        correlation_id=args.correlation_id,
        reply_to=args.reply_to,
        expiration=args.expiration,
        priority=args.priority,
    )

    def action(channel: Any) -> int:
        channel.confirm_delivery()
        try:
            channel.basic_publish(
                args.exchange, args.routing_key, body, properties, mandatory=args.mandatory
            )
        except pika.exceptions.UnroutableError:
            raise BrokerRefused("unroutable: no queue is bound for that routing key") from None
        except pika.exceptions.NackError:
            raise BrokerRefused("the broker nacked the message (a queue is full?)") from None
        print(f"published {len(body)} bytes (confirmed)", file=sys.stderr)
        return EXIT_OK

    return _with_channel(args, action)


def _get(args: argparse.Namespace) -> int:
    def action(channel: Any) -> int:
        tags = []
        for _ in range(max(args.count, 1)):
            method, properties, body = channel.basic_get(args.queue, auto_ack=False)
            if method is None:
                break
            tags.append(method.delivery_tag)
            if args.json:
                record = {
                    "exchange": method.exchange,
                    "routing_key": method.routing_key,
                    "redelivered": method.redelivered,
                    "properties": {
                        k: v
                        for k, v in vars(properties).items()
                        if v is not None and not k.startswith("_")
                    },
                    "body": body.decode("utf-8", "replace"),
                }
                print(json.dumps(record, default=str))
            else:
                sys.stdout.buffer.write(body + b"\n")
        if not tags:
            print(f"{args.queue} is empty", file=sys.stderr)
        elif args.requeue:
            channel.basic_nack(tags[-1], multiple=True, requeue=True)
        else:
            channel.basic_ack(tags[-1], multiple=True)
        return EXIT_OK

    return _with_channel(args, action)
