"""Metadata (3) and DescribeCluster (60): the one-broker cluster and its topics.

Firth is a single node: it leads every partition, its replica set and ISR are [itself]. Topics
named in a Metadata request that do not exist are created when the broker allows
auto-creation and the request asks for it (v4+ flag; always for v0-v3, as Kafka did).
"""

from __future__ import annotations

from typing import Any

from firth.broker.catalog import Topic
from firth.broker.errors import BrokerError
from firth.kafka.handlers import handles
from firth.kafka.handlers.context import RequestContext
from firth.kafka.protocol.errors import ErrorCode

UNSUPPORTED_ENDPOINT_TYPE = 115

AUTHORIZED_OPERATIONS_OMITTED = -(2**31)
"""Kafka's sentinel for 'authorized operations not requested'."""


def _topic_entry(ctx: RequestContext, topic: Topic) -> dict[str, Any]:
    node = ctx.broker.node_id
    return {
        "error_code": 0,
        "name": topic.name,
        "topic_id": topic.topic_id,
        "is_internal": False,
        "partitions": [
            {
                "error_code": 0,
                "partition_index": partition.index,
                "leader_id": node,
                "leader_epoch": 0,
                "replica_nodes": [node],
                "isr_nodes": [node],
                "offline_replicas": [],
            }
            for partition in topic.partitions
        ],
        "topic_authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
    }


def _error_entry(name: str | None, topic_id: Any, code: int) -> dict[str, Any]:
    return {
        "error_code": code,
        "name": name,
        "topic_id": topic_id,
        "is_internal": False,
        "partitions": [],
        "topic_authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
    }


@handles(3)
async def metadata(ctx: RequestContext) -> bytes:
    request = ctx.decode()
    catalog = ctx.broker.catalog
    requested = request.topics
    if ctx.version == 0 and requested is not None and len(requested) == 0:
        requested = None  # v0: an empty list means all topics
    allow_create = getattr(request, "allow_auto_topic_creation", True)
    topics: list[dict[str, Any]] = []
    if requested is None:
        topics = [_topic_entry(ctx, topic) for topic in catalog.topics.values()]
    else:
        for wanted in requested:
            name = wanted.name
            topic_id = getattr(wanted, "topic_id", None)
            if name is None and topic_id is not None:
                topic = catalog.by_id.get(topic_id)
                if topic is None:
                    topics.append(_error_entry(None, topic_id, ErrorCode.UNKNOWN_TOPIC_ID))
                else:
                    topics.append(_topic_entry(ctx, topic))
                continue
            if name is None:
                continue
            topic = catalog.topics.get(name)
            if topic is None and allow_create:
                try:
                    if ctx.broker.auto_create(name):
                        topic = catalog.topics.get(name)
                except BrokerError as exc:
                    topics.append(_error_entry(name, None, exc.code))
                    continue
            if topic is None:
                topics.append(_error_entry(name, None, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
            else:
                topics.append(_topic_entry(ctx, topic))
    return ctx.respond(
        {
            "throttle_time": 0,
            "brokers": [
                {
                    "node_id": ctx.broker.node_id,
                    "host": ctx.advertised.host,
                    "port": ctx.advertised.port,
                    "rack": None,
                }
            ],
            "cluster_id": ctx.broker.cluster_id,
            "controller_id": ctx.broker.node_id,
            "topics": topics,
            "cluster_authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
        }
    )


@handles(60)
async def describe_cluster(ctx: RequestContext) -> bytes:
    request = ctx.decode()
    endpoint_type = getattr(request, "endpoint_type", 1)
    if endpoint_type != 1:  # 1 = brokers; 2 = controllers, which a single node has none of
        return ctx.respond(
            {
                "throttle_time": 0,
                "error_code": UNSUPPORTED_ENDPOINT_TYPE,
                "error_message": "Firth has no separate controller endpoints",
                "endpoint_type": endpoint_type,
                "cluster_id": ctx.broker.cluster_id,
                "controller_id": -1,
                "brokers": [],
                "cluster_authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
            }
        )
    return ctx.respond(
        {
            "throttle_time": 0,
            "error_code": 0,
            "error_message": None,
            "endpoint_type": 1,
            "cluster_id": ctx.broker.cluster_id,
            "controller_id": ctx.broker.node_id,
            "brokers": [
                {
                    "broker_id": ctx.broker.node_id,
                    "host": ctx.advertised.host,
                    "port": ctx.advertised.port,
                    "rack": None,
                }
            ],
            "cluster_authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
        }
    )
