"""``firth topics create|list|describe|delete|alter``: topic administration over the Kafka admin API.

Each subcommand is one or two admin requests (CreateTopics, Metadata, ListOffsets through the
consumer's watermark query, DescribeConfigs, DeleteTopics, IncrementalAlterConfigs,
CreatePartitions). Listing asks for metadata of all topics, never of one by name, because a
metadata request naming an unknown topic may auto-create it on a broker that allows that.
``--json`` prints machine-readable output instead of tables, for scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import Future
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)
from rich.table import Table

from firth.cli.client import (
    client_config,
    key_values,
    partitions_of,
    positive_int,
    probe,
    translate,
    unreachable,
)
from firth.cli.errors import BrokerRefused, UsageError
from firth.cli.output import stderr_console, stdout_console


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    topics = subparsers.add_parser(
        "topics",
        help="create, list, describe, alter and delete topics",
        description="Administer topics on a running broker.",
    )
    actions = topics.add_subparsers(dest="topics_command", metavar="ACTION", required=True)

    create = actions.add_parser("create", parents=parents, help="create a topic")
    create.add_argument("name", metavar="NAME")
    create.add_argument(
        "--partitions",
        type=positive_int,
        metavar="N",
        help="partition count (default: the broker's num_partitions)",
    )
    create.add_argument(
        "--config",
        action="append",
        metavar="KEY=VALUE",
        help="topic config, e.g. retention.ms=86400000 (repeatable)",
    )
    create.set_defaults(handler=create_topic)

    listing = actions.add_parser("list", parents=parents, help="list topics")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(handler=list_topics)

    describe = actions.add_parser(
        "describe", parents=parents, help="show a topic's partitions, offsets and configs"
    )
    describe.add_argument("name", metavar="NAME")
    describe.add_argument("--json", action="store_true", help="print JSON instead of tables")
    describe.set_defaults(handler=describe_topic)

    delete = actions.add_parser("delete", parents=parents, help="delete a topic and its data")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(handler=delete_topic)

    alter = actions.add_parser(
        "alter", parents=parents, help="change a topic's configs or add partitions"
    )
    alter.add_argument("name", metavar="NAME")
    alter.add_argument(
        "--config",
        action="append",
        metavar="KEY=VALUE",
        help="set a topic config (repeatable)",
    )
    alter.add_argument(
        "--delete-config",
        action="append",
        metavar="KEY",
        help="remove a topic config, back to the broker default (repeatable)",
    )
    alter.add_argument(
        "--partitions", type=positive_int, metavar="N", help="grow the topic to N partitions"
    )
    alter.set_defaults(handler=alter_topic)


def _admin(args: argparse.Namespace) -> AdminClient:
    return AdminClient(client_config(args))


def _wait(future: Future[Any], args: argparse.Namespace, topic: str) -> Any:
    try:
        return future.result(timeout=args.timeout + 5)
    except KafkaException as exception:
        raise translate(exception, args.bootstrap, topic) from None
    except TimeoutError:
        raise unreachable(args.bootstrap) from None


def create_topic(args: argparse.Namespace) -> int:
    configs = dict(key_values(args.config, "--config"))
    admin = _admin(args)
    probe(admin, args)
    # -1 asks the broker for its defaults (num_partitions; replication is always 1 here).
    partitions = args.partitions if args.partitions is not None else -1
    replication = 1 if args.partitions is not None else -1
    new = NewTopic(
        args.name, num_partitions=partitions, replication_factor=replication, config=configs
    )
    futures = admin.create_topics(
        [new], request_timeout=args.timeout, operation_timeout=args.timeout
    )
    _wait(futures[args.name], args, args.name)
    count = len(partitions_of(probe(admin, args), args.name, args.bootstrap))
    plural = "partition" if count == 1 else "partitions"
    stderr_console().print(f"created topic [bold]{args.name}[/] with {count} {plural}")
    return 0


def list_topics(args: argparse.Namespace) -> int:
    metadata = probe(_admin(args), args)
    rows = sorted((name, len(topic.partitions)) for name, topic in metadata.topics.items())
    if args.json:
        print(json.dumps([{"name": name, "partitions": count} for name, count in rows]))
        return 0
    if not rows:
        stderr_console().print("no topics (create one with `firth topics create NAME`)")
        return 0
    table = Table("Topic", "Partitions", box=None, header_style="bold")
    for name, count in rows:
        table.add_row(name, str(count))
    stdout_console().print(table)
    return 0


def describe_topic(args: argparse.Namespace) -> int:
    admin = _admin(args)
    metadata = probe(admin, args)
    partition_ids = partitions_of(metadata, args.name, args.bootstrap)
    topic_metadata = metadata.topics[args.name]
    consumer = Consumer(
        client_config(args, **{"group.id": "firth-cli", "enable.auto.commit": False})
    )
    try:
        partitions = []
        for partition in partition_ids:
            try:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(args.name, partition), timeout=args.timeout, cached=False
                )
            except KafkaException as exception:
                raise translate(exception, args.bootstrap, args.name) from None
            partitions.append(
                {
                    "partition": partition,
                    "leader": topic_metadata.partitions[partition].leader,
                    "log_start_offset": low,
                    "high_watermark": high,
                }
            )
    finally:
        consumer.close()
    resource = ConfigResource(ResourceType.TOPIC, args.name)
    futures = admin.describe_configs([resource], request_timeout=args.timeout)
    entries: dict[str, ConfigEntry] = _wait(futures[resource], args, args.name)
    configs = {
        name: {"value": entry.value, "source": _source_name(entry.source)}
        for name, entry in sorted(entries.items())
    }
    if args.json:
        print(json.dumps({"name": args.name, "partitions": partitions, "configs": configs}))
        return 0
    console = stdout_console()
    console.print(f"[bold]{args.name}[/]: {len(partitions)} partitions")
    table = Table(
        "Partition",
        "Leader",
        "Log start",
        "High watermark",
        "Messages",
        box=None,
        header_style="bold",
    )
    for row in partitions:
        span = row["high_watermark"] - row["log_start_offset"]
        table.add_row(
            str(row["partition"]),
            str(row["leader"]),
            str(row["log_start_offset"]),
            str(row["high_watermark"]),
            str(span),
        )
    console.print(table)
    if configs:
        console.print()
        config_table = Table("Config", "Value", "Source", box=None, header_style="bold")
        for name, entry in configs.items():
            config_table.add_row(name, str(entry["value"]), str(entry["source"]))
        console.print(config_table)
    return 0


_SOURCE_NAMES = {
    ConfigSource.DYNAMIC_TOPIC_CONFIG: "topic",
    ConfigSource.DEFAULT_CONFIG: "default",
    ConfigSource.STATIC_BROKER_CONFIG: "broker",
    ConfigSource.DYNAMIC_BROKER_CONFIG: "broker",
    ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG: "broker",
}


def _source_name(source: object) -> str:
    """Where a config value comes from: set on the topic, a broker setting, or the default."""
    # confluent-kafka gives the ConfigSource enum or its integer value, depending on the call.
    try:
        return _SOURCE_NAMES.get(ConfigSource(source), "unknown")
    except ValueError:
        return "unknown"


def delete_topic(args: argparse.Namespace) -> int:
    admin = _admin(args)
    partitions_of(probe(admin, args), args.name, args.bootstrap)
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(f"deleting topic {args.name!r} loses its data: add --yes to confirm")
        answer = input(f"Delete topic {args.name!r} and all its messages? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            stderr_console().print("not deleted")
            return 1
    futures = admin.delete_topics(
        [args.name], request_timeout=args.timeout, operation_timeout=args.timeout
    )
    _wait(futures[args.name], args, args.name)
    stderr_console().print(f"deleted topic [bold]{args.name}[/]")
    return 0


def alter_topic(args: argparse.Namespace) -> int:
    sets = key_values(args.config, "--config")
    deletes = args.delete_config or []
    if not sets and not deletes and args.partitions is None:
        raise UsageError(
            "nothing to alter: give --config KEY=VALUE, --delete-config KEY or --partitions N"
        )
    admin = _admin(args)
    current = len(partitions_of(probe(admin, args), args.name, args.bootstrap))
    done = []
    if sets or deletes:
        entries = [
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
            for key, value in sets
        ] + [
            ConfigEntry(key, None, incremental_operation=AlterConfigOpType.DELETE)
            for key in deletes
        ]
        resource = ConfigResource(ResourceType.TOPIC, args.name, incremental_configs=entries)
        altered = admin.incremental_alter_configs([resource], request_timeout=args.timeout)
        _wait(altered[resource], args, args.name)
        done.append("configs updated")
    if args.partitions is not None:
        if args.partitions < current:
            raise BrokerRefused(
                f"topic {args.name!r} has {current} partitions; partitions can only be added",
                "INVALID_PARTITIONS",
            )
        if args.partitions > current:
            futures = admin.create_partitions(
                [NewPartitions(args.name, args.partitions)],
                request_timeout=args.timeout,
                operation_timeout=args.timeout,
            )
            _wait(futures[args.name], args, args.name)
            done.append(f"partitions {current} -> {args.partitions}")
        else:
            done.append(f"already {current} partitions")
    stderr_console().print(f"altered topic [bold]{args.name}[/]: " + "; ".join(done))
    return 0
