"""``firth groups list|describe|reset-offsets|delete``: consumer groups and their lag, at the terminal.

A hook of the ``firth`` command line (``register(subparsers)`` / ``run(args)``, see
``firth.cli``). Like the other client commands it talks to a running broker over the Kafka admin
API through confluent-kafka, so it works against any Kafka-compatible broker too:

- ``list``: ListGroups.
- ``describe GROUP``: DescribeGroups for state and members; OffsetFetch for committed offsets;
  ListOffsets (the consumer's watermark query) for log-end offsets; lag = log end − committed.
- ``reset-offsets GROUP --to-earliest|--to-latest|--to-datetime T|--shift-by N``: computes new
  offsets and commits them as a standalone commit (generation −1), which the coordinator accepts
  only while the group has no members; the command refuses earlier, naming the members.
- ``delete GROUP...``: DeleteGroups (refused by the broker for a group with members).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from dataclasses import asdict, dataclass
from typing import Any

from firth.cli.client import add_client_options, client_config, probe, translate
from firth.cli.errors import EXIT_OK, BrokerRefused, UsageError
from firth.cli.output import stdout_console

EMPTY_STATES = {"EMPTY", "DEAD"}
"""Group states in which offsets may be reset (nobody is consuming)."""


def register(subparsers: Any) -> None:
    groups = subparsers.add_parser(
        "groups",
        help="list, describe (with lag), reset offsets of and delete consumer groups",
        description="Administer consumer groups on a running broker.",
    )
    actions = groups.add_subparsers(dest="groups_command", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="list consumer groups")
    add_client_options(listing)
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")

    describe = actions.add_parser(
        "describe", help="state, members and per-partition committed offset, log end and lag"
    )
    add_client_options(describe)
    describe.add_argument("group", metavar="GROUP")
    describe.add_argument("--json", action="store_true", help="print JSON instead of tables")

    reset = actions.add_parser(
        "reset-offsets", help="move a group's committed offsets (only while it has no members)"
    )
    add_client_options(reset)
    reset.add_argument("group", metavar="GROUP")
    target = reset.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-earliest", action="store_true", help="the first offset kept")
    target.add_argument("--to-latest", action="store_true", help="the log end (skip everything)")
    target.add_argument(
        "--to-datetime",
        metavar="WHEN",
        help="the first record at or after WHEN (ISO 8601; no zone means UTC)",
    )
    target.add_argument(
        "--shift-by", type=int, metavar="N", help="move by N (negative: re-read N records)"
    )
    reset.add_argument(
        "--topic",
        action="append",
        metavar="TOPIC",
        help="reset every partition of TOPIC (repeatable; default: the partitions the group "
        "has committed offsets for)",
    )
    reset.add_argument("--dry-run", action="store_true", help="show the new offsets only")
    reset.add_argument("--json", action="store_true", help="print JSON instead of a table")

    delete = actions.add_parser("delete", help="delete groups and their committed offsets")
    add_client_options(delete)
    delete.add_argument("groups", metavar="GROUP", nargs="+")


def run(args: argparse.Namespace) -> int:
    command = {
        "list": list_groups,
        "describe": describe_group,
        "reset-offsets": reset_offsets,
        "delete": delete_groups,
    }[args.groups_command]
    command(args)
    return EXIT_OK


# ---------------------------------------------------------------------------- plumbing


def _admin(args: argparse.Namespace) -> Any:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(client_config(args))
    probe(admin, args)
    return admin


def _result(future: Any, args: argparse.Namespace) -> Any:
    from confluent_kafka import KafkaException

    try:
        return future.result(args.timeout)
    except KafkaException as exception:
        raise translate(exception, args.bootstrap) from None


def _state_name(state: Any) -> str:
    return str(getattr(state, "name", state))


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    log_end: int
    lag: int | None
    member: str | None


def _committed(admin: Any, args: argparse.Namespace, group: str) -> dict[tuple[str, int], int]:
    from confluent_kafka import ConsumerGroupTopicPartitions

    request = ConsumerGroupTopicPartitions(group)
    futures = admin.list_consumer_group_offsets([request])
    answer = _result(futures[group], args)
    return {
        (tp.topic, tp.partition): tp.offset
        for tp in answer.topic_partitions
        if tp.error is None and tp.offset >= 0
    }


def _offsets(
    admin: Any, args: argparse.Namespace, partitions: list[tuple[str, int]], spec: Any
) -> dict[tuple[str, int], int]:
    """ListOffsets for each partition with one OffsetSpec."""
    from confluent_kafka import TopicPartition

    if not partitions:
        return {}
    futures = admin.list_offsets({TopicPartition(t, p): spec for t, p in partitions})
    return {(tp.topic, tp.partition): _result(f, args).offset for tp, f in futures.items()}


def _partitions_of_topics(
    admin: Any, args: argparse.Namespace, topics: list[str]
) -> list[tuple[str, int]]:
    metadata = probe(admin, args)
    found: list[tuple[str, int]] = []
    for topic in topics:
        described = metadata.topics.get(topic)
        if described is None or described.error is not None:
            raise BrokerRefused(f"topic {topic!r} does not exist", "UNKNOWN_TOPIC_OR_PART")
        found.extend((topic, p) for p in sorted(described.partitions))
    return found


def _describe(admin: Any, args: argparse.Namespace, group: str) -> Any:
    futures = admin.describe_consumer_groups([group])
    return _result(futures[group], args)


# ---------------------------------------------------------------------------- commands


def list_groups(args: argparse.Namespace) -> None:
    admin = _admin(args)
    listed = _result(admin.list_consumer_groups(), args)
    rows = sorted(
        (g.group_id, _state_name(g.state), "simple" if g.is_simple_consumer_group else "consumer")
        for g in listed.valid
    )
    if args.json:
        print(json.dumps([{"group": g, "state": s, "type": t} for g, s, t in rows]))
        return
    from rich.table import Table

    table = Table("GROUP", "STATE", "TYPE", box=None)
    for row in rows:
        table.add_row(*row)
    stdout_console().print(table)


def group_lag(admin: Any, args: argparse.Namespace, group: str) -> tuple[Any, list[PartitionLag]]:
    """The group's description and, per partition it committed or is assigned, its lag."""
    from confluent_kafka.admin import OffsetSpec

    description = _describe(admin, args, group)
    owner: dict[tuple[str, int], str] = {}
    for member in description.members:
        assignment = member.assignment.topic_partitions if member.assignment else []
        for tp in assignment:
            owner[(tp.topic, tp.partition)] = member.member_id
    committed = _committed(admin, args, group)
    partitions = sorted(set(committed) | set(owner))
    log_end = _offsets(admin, args, partitions, OffsetSpec.latest())
    rows = []
    for key in partitions:
        done = committed.get(key)
        end = log_end[key]
        rows.append(
            PartitionLag(
                key[0],
                key[1],
                done,
                end,
                None if done is None else max(end - done, 0),
                owner.get(key),
            )
        )
    return description, rows


def describe_group(args: argparse.Namespace) -> None:
    admin = _admin(args)
    description, rows = group_lag(admin, args, args.group)
    state = _state_name(description.state)
    if state == "DEAD" and not description.members and not rows:
        raise _not_found(args.group)
    members = [
        {
            "member_id": m.member_id,
            "group_instance_id": m.group_instance_id,
            "client_id": m.client_id,
            "host": m.host,
            "partitions": sorted(
                f"{tp.topic}-{tp.partition}"
                for tp in (m.assignment.topic_partitions if m.assignment else [])
            ),
        }
        for m in description.members
    ]
    if args.json:
        print(
            json.dumps(
                {
                    "group": args.group,
                    "state": state,
                    "assignor": description.partition_assignor,
                    "members": members,
                    "partitions": [asdict(row) for row in rows],
                    "total_lag": sum(row.lag or 0 for row in rows),
                }
            )
        )
        return
    from rich.table import Table

    console = stdout_console()
    console.print(
        f"group {args.group}: {state}, assignor {description.partition_assignor or '-'}, "
        f"{len(members)} members"
    )
    if members:
        table = Table("MEMBER", "INSTANCE", "CLIENT", "HOST", "PARTITIONS", box=None)
        for m in members:
            table.add_row(
                m["member_id"],
                m["group_instance_id"] or "-",
                m["client_id"],
                m["host"],
                ",".join(m["partitions"]) or "-",
            )
        console.print(table)
    table = Table("TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG", "MEMBER", box=None)
    for row in rows:
        table.add_row(
            row.topic,
            str(row.partition),
            "-" if row.committed is None else str(row.committed),
            str(row.log_end),
            "-" if row.lag is None else str(row.lag),
            row.member or "-",
        )
    console.print(table)
    console.print(f"total lag {sum(row.lag or 0 for row in rows)}")


def _parse_when(text: str) -> int:
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--to-datetime {text!r} is not an ISO 8601 date and time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return int(when.timestamp() * 1000)


def reset_offsets(args: argparse.Namespace) -> None:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import OffsetSpec

    when = _parse_when(args.to_datetime) if args.to_datetime else None
    admin = _admin(args)
    description = _describe(admin, args, args.group)
    state = _state_name(description.state)
    if description.members or state not in EMPTY_STATES:
        raise BrokerRefused(
            f"group {args.group!r} is {state} with {len(description.members)} members; stop "
            "its consumers first (offsets can only be reset while nobody consumes)",
            "NON_EMPTY_GROUP",
        )
    committed = _committed(admin, args, args.group)
    partitions = _partitions_of_topics(admin, args, args.topic) if args.topic else sorted(committed)
    if not partitions:
        raise UsageError(
            f"group {args.group!r} has no committed offsets; name the topics with --topic"
        )
    earliest = _offsets(admin, args, partitions, OffsetSpec.earliest())
    latest = _offsets(admin, args, partitions, OffsetSpec.latest())
    if args.to_earliest:
        target = earliest
    elif args.to_latest:
        target = latest
    elif when is not None:
        found = _offsets(admin, args, partitions, OffsetSpec.for_timestamp(when))
        # No record at or after the moment: start at the log end, as Kafka's tool does.
        target = {key: latest[key] if found[key] < 0 else found[key] for key in partitions}
    else:
        target = {}
        for key in partitions:
            current = committed.get(key, latest[key])
            target[key] = min(max(current + args.shift_by, earliest[key]), latest[key])
    rows: list[dict[str, Any]] = [
        {"topic": t, "partition": p, "old": committed.get((t, p)), "new": target[(t, p)]}
        for t, p in partitions
    ]
    if not args.dry_run:
        request = ConsumerGroupTopicPartitions(
            args.group, [TopicPartition(t, p, target[(t, p)]) for t, p in partitions]
        )
        futures = admin.alter_consumer_group_offsets([request])
        answer = _result(futures[args.group], args)
        failed = [tp for tp in answer.topic_partitions if tp.error is not None]
        if failed:
            raise BrokerRefused(
                "the broker refused the new offsets: "
                + ", ".join(f"{tp.topic}-{tp.partition}: {tp.error.name()}" for tp in failed)
            )
    if args.json:
        print(json.dumps({"group": args.group, "applied": not args.dry_run, "partitions": rows}))
        return
    from rich.table import Table

    table = Table("TOPIC", "PARTITION", "OLD", "NEW", box=None)
    for row in rows:
        old = row["old"]
        table.add_row(
            str(row["topic"]),
            str(row["partition"]),
            "-" if old is None else str(old),
            str(row["new"]),
        )
    console = stdout_console()
    console.print(table)
    console.print("dry run: nothing changed" if args.dry_run else f"reset {len(rows)} partitions")


def _not_found(group: str) -> BrokerRefused:
    return BrokerRefused(
        f"group {group!r} does not exist (`firth groups list` shows the groups)",
        "GROUP_ID_NOT_FOUND",
    )


def delete_groups(args: argparse.Namespace) -> None:
    admin = _admin(args)
    futures = admin.delete_consumer_groups(list(args.groups))
    for group, future in futures.items():
        try:
            _result(future, args)
        except BrokerRefused as refused:
            if refused.error_name == "GROUP_ID_NOT_FOUND":
                raise _not_found(group) from None
            if refused.error_name == "NON_EMPTY_GROUP":
                raise BrokerRefused(
                    f"group {group!r} has members; stop its consumers first", "NON_EMPTY_GROUP"
                ) from None
            raise
        print(f"deleted group {group}", file=sys.stdout)
