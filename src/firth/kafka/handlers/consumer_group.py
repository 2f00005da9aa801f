"""ConsumerGroupHeartbeat (KIP-848, API key 68): the Kafka face of `consumer_groups`.

Translates between the wire and `ConsumerGroupCoordinator.heartbeat`: topic ids on the wire,
topic names in the coordinator (owned partitions of a topic id this broker does not know are
dropped: the topic is gone), the client host as Kafka reports it ("/127.0.0.1"). v0 lets the
coordinator generate member ids; from v1 the client generates its own and must send it.
"""

from __future__ import annotations

import datetime
import uuid
from collections import defaultdict
from typing import Any

from firth.broker.groups import ErrorCode
from firth.broker.groups.consumer_groups import HeartbeatRequest
from firth.broker.groups.protocols import DualProtocolCoordinator
from firth.kafka.handlers import handles
from firth.kafka.handlers.context import RequestContext

CONSUMER_GROUP_HEARTBEAT = 68


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
