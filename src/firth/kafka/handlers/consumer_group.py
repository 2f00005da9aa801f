"""ConsumerGroupHeartbeat (68) and ConsumerGroupDescribe (69): the Kafka face of KIP-848 groups.

Translates between the wire and `ConsumerGroupCoordinator.heartbeat`: topic ids on the wire,
topic names in the coordinator (owned partitions of a topic id this broker does not know are
dropped: the topic is gone), the client host as Kafka reports it ("/127.0.0.1"). v0 lets the
coordinator generate member ids; from v1 the client generates its own and must send it.

ConsumerGroupDescribe answers GROUP_ID_NOT_FOUND for a group that is not a consumer group
(unknown, or classic), which is what makes admin clients fall back to DescribeGroups.
"""

from __future__ import annotations

import datetime
import uuid
from collections import defaultdict
from typing import Any

from firth.broker.catalog import Catalog
from firth.broker.groups import ErrorCode, GroupCoordinator
from firth.broker.groups.assignors import Partition
from firth.broker.groups.consumer_groups import HeartbeatRequest
from firth.broker.groups.protocols import DualProtocolCoordinator
from firth.broker.groups.results import OffsetFetchResult
from firth.kafka.handlers import handles
from firth.kafka.handlers.context import RequestContext
from firth.kafka.protocol.error_responses import failed_consumer_group

CONSUMER_GROUP_HEARTBEAT, CONSUMER_GROUP_DESCRIBE = 68, 69

NOT_PROVIDED = -(2**31)
"""authorized_operations when the client did not ask for them."""

GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)
"""READ, DELETE and DESCRIBE: what anyone may do to a group here (there are no ACLs)."""

CONSUMER_MEMBER_TYPE = 1
"""ConsumerGroupDescribe v1 member_type: the member speaks the consumer protocol."""


def _ms(value: Any) -> int:
    if isinstance(value, datetime.timedelta):
        return value // datetime.timedelta(milliseconds=1)
    return int(value)


@handles(CONSUMER_GROUP_HEARTBEAT)
async def consumer_group_heartbeat(ctx: RequestContext) -> bytes:
    request = ctx.decode()
    coordinator = ctx.broker.groups
    if not isinstance(coordinator, DualProtocolCoordinator):
        return ctx.respond(
            {
                "throttle_time": 0,
                "error_code": int(ErrorCode.COORDINATOR_NOT_AVAILABLE),
                "error_message": "the group coordinator is not available",
                "member_id": request.member_id,
                "member_epoch": 0,
                "heartbeat_interval": 0,
                "assignment": None,
            }
        )
    catalog = ctx.broker.catalog
    owned = None
    if request.topic_partitions is not None:
        pairs: list[tuple[str, int]] = []
        for entry in request.topic_partitions:
            topic = catalog.by_id.get(entry.topic_id) if entry.topic_id is not None else None
            if topic is not None:
                pairs.extend((topic.name, int(p)) for p in entry.partitions)
        owned = frozenset(pairs)
    names = request.subscribed_topic_names
    result = coordinator.consumer_groups.heartbeat(
        HeartbeatRequest(
            group_id=request.group_id,
            member_id=request.member_id,
            member_epoch=request.member_epoch,
            instance_id=request.instance_id,
            rack_id=request.rack_id,
            rebalance_timeout_ms=_ms(request.rebalance_timeout),
            subscribed_topic_names=None if names is None else tuple(names),
            subscribed_topic_regex=getattr(request, "subscribed_topic_regex", None),
            server_assignor=request.server_assignor,
            owned=owned,
            client_id=ctx.header.client_id or "",
            client_host=f"/{ctx.peer_host}",
            member_id_required=ctx.version >= 1,
        )
    )
    assignment = None
    if result.assignment is not None:
        by_topic: dict[uuid.UUID, list[int]] = defaultdict(list)
        for name, partition in sorted(result.assignment):
            topic = catalog.topics.get(name)
            if topic is not None:
                by_topic[topic.topic_id].append(partition)
        assignment = {
            "topic_partitions": [
                {"topic_id": topic_id, "partitions": parts} for topic_id, parts in by_topic.items()
            ]
        }
    return ctx.respond(
        {
            "throttle_time": 0,
            "error_code": int(result.error),
            "error_message": result.message,
            "member_id": result.member_id,
            "member_epoch": result.member_epoch,
            "heartbeat_interval": result.heartbeat_interval_ms,
            "assignment": assignment,
        }
    )


def _described_assignment(catalog: Catalog, partitions: frozenset[Partition]) -> dict[str, Any]:
    by_topic: dict[str, list[int]] = defaultdict(list)
    for name, partition in sorted(partitions):
        by_topic[name].append(partition)
    return {
        "topic_partitions": [
            {"topic_id": catalog.topics[name].topic_id, "topic_name": name, "partitions": parts}
            for name, parts in by_topic.items()
            if name in catalog.topics
        ]
    }


@handles(CONSUMER_GROUP_DESCRIBE)
async def consumer_group_describe(ctx: RequestContext) -> bytes:
    request = ctx.decode()
    coordinator = ctx.broker.groups
    catalog = ctx.broker.catalog
    operations = GROUP_OPERATIONS if request.include_authorized_operations else NOT_PROVIDED
    described = []
    for group_id in request.group_ids:
        if not isinstance(coordinator, DualProtocolCoordinator):
            described.append(
                failed_consumer_group(
                    group_id, int(ErrorCode.COORDINATOR_NOT_AVAILABLE), operations=operations
                )
            )
            continue
        d = coordinator.consumer_groups.describe(group_id)
        described.append(
            {
                "error_code": int(d.error),
                "error_message": d.message,
                "group_id": group_id,
                "group_state": d.state,
                "group_epoch": d.group_epoch,
                "assignment_epoch": d.assignment_epoch,
                "assignor_name": d.assignor,
                "members": [
                    {
                        "member_id": m.member_id,
                        "instance_id": m.instance_id,
                        "rack_id": m.rack_id,
                        "member_epoch": m.member_epoch,
                        "client_id": m.client_id,
                        "client_host": m.client_host,
                        "subscribed_topic_names": list(m.subscribed_topic_names),
                        "subscribed_topic_regex": m.subscribed_topic_regex,
                        "assignment": _described_assignment(catalog, m.assignment),
                        "target_assignment": _described_assignment(catalog, m.target_assignment),
                        "member_type": CONSUMER_MEMBER_TYPE,
                    }
                    for m in d.members
                ],
                "authorized_operations": operations,
            }
        )
    return ctx.respond({"throttle_time": 0, "groups": described})


def fenced_fetch(
    coordinator: GroupCoordinator | None, group_id: str, request: Any, result: OffsetFetchResult
) -> OffsetFetchResult:
    """OffsetFetch v9 to a consumer group: refused (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH) when
    it names a member (a member id and an epoch of 0 or more) that is not in it at that epoch."""
    if not isinstance(coordinator, DualProtocolCoordinator):
        return result
    consumer_groups = coordinator.consumer_groups
    if not consumer_groups.owns(group_id):
        return result
    error = consumer_groups.fetch_error(group_id, request.member_id, request.member_epoch)
    return result if error is None else OffsetFetchResult(error)
