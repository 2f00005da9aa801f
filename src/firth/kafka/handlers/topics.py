"""CreateTopics (19), DeleteTopics (20), CreatePartitions (37): topic administration.

Firth is one node, so a replication factor other than 1 (or -1, "broker default") is refused
with INVALID_REPLICATION_FACTOR, and manual replica assignments may only name this node.
Errors are per topic, with a message saying what to change.
"""

from __future__ import annotations

from typing import Any

from firth.broker.errors import BrokerError, InvalidReplicationFactor, InvalidRequest
from firth.broker.topic_config import effective_values
from firth.kafka.handlers import handles
from firth.kafka.handlers.context import RequestContext

CONFIG_SOURCE_DEFAULT = 5
CONFIG_SOURCE_TOPIC = 1


def _check_replication(ctx: RequestContext, factor: int, assignments: Any) -> int | None:
    """Returns the partition count implied by manual assignments, if any."""
    if factor not in (-1, 1):
        raise InvalidReplicationFactor(
            f"replication factor {factor} is not possible: Firth is a single node (use 1 or -1)"
        )
    if not assignments:
        return None
    for assignment in assignments:
        if list(assignment.broker_ids) != [ctx.broker.node_id]:
            raise InvalidRequest(
                f"replica assignment {list(assignment.broker_ids)} names nodes other than "
                f"this one ({ctx.broker.node_id})"
            )
    indexes = sorted(a.partition_index for a in assignments)
    if indexes != list(range(len(indexes))):
        raise InvalidRequest("replica assignments must cover partitions 0..N-1 exactly once")
    return len(indexes)


@handles(19)
async def create_topics(ctx: RequestContext) -> bytes:
    request = ctx.decode()
    broker = ctx.broker
    results: list[dict[str, Any]] = []
    seen: set[str] = set()
    for wanted in request.topics:
        result: dict[str, Any] = {
            "name": wanted.name,
            "topic_id": None,
            "error_code": 0,
            "error_message": None,
            "topic_config_error_code": 0,
            "num_partitions": -1,
            "replication_factor": -1,
            "configs": None,
        }
        try:
            if wanted.name in seen:
                raise InvalidRequest(f"topic {wanted.name!r} appears twice in the request")
            seen.add(wanted.name)
            from_assignments = _check_replication(
                ctx, wanted.replication_factor, wanted.assignments
            )
            count = wanted.num_partitions
            if from_assignments is not None:
                if count not in (-1, from_assignments):
                    raise InvalidRequest("give either num_partitions or assignments, not both")
                count = from_assignments
            if count == -1:
                count = broker.settings.num_partitions
            overrides = {c.name: c.value for c in wanted.configs}
            topic = broker.catalog.create_topic(
                wanted.name, count, overrides, validate_only=request.validate_only
            )
            values = effective_values(broker.catalog.defaults, topic.config)
            result.update(
                topic_id=topic.topic_id,
                num_partitions=count,
                replication_factor=1,
                configs=[
                    {
                        "name": key,
                        "value": value,
                        "read_only": False,
                        "config_source": CONFIG_SOURCE_TOPIC
                        if key in topic.config
                        else CONFIG_SOURCE_DEFAULT,
                        "is_sensitive": False,
                    }
                    for key, value in sorted(values.items())
                ],
            )
        except BrokerError as exc:
            result.update(error_code=exc.code, error_message=exc.message)
        results.append(result)
    return ctx.respond({"throttle_time": 0, "topics": results})


@handles(20)
async def delete_topics(ctx: RequestContext) -> bytes:
    request = ctx.decode()
    catalog = ctx.broker.catalog
    if ctx.version >= 6:
        wanted = [(t.name, t.topic_id) for t in request.topics]
    else:
        wanted = [(name, None) for name in request.topic_names]
    results: list[dict[str, Any]] = []
    for name, topic_id in wanted:
        result: dict[str, Any] = {
            "name": name,
            "topic_id": topic_id,
            "error_code": 0,
            "error_message": None,
        }
        try:
            if name is None and topic_id is not None:
                topic = catalog.by_id.get(topic_id)
                if topic is None:
                    result.update(error_code=100, error_message="unknown topic id")
                    results.append(result)
                    continue
                name = topic.name
            assert name is not None
            topic = catalog.delete_topic(name)
            result.update(name=topic.name, topic_id=topic.topic_id)
        except BrokerError as exc:
            result.update(error_code=exc.code, error_message=exc.message)
        results.append(result)
    return ctx.respond({"throttle_time": 0, "responses": results})


@handles(37)
async def create_partitions(ctx: RequestContext) -> bytes:
    request = ctx.decode()
    catalog = ctx.broker.catalog
    results: list[dict[str, Any]] = []
    for wanted in request.topics:
        result: dict[str, Any] = {"name": wanted.name, "error_code": 0, "error_message": None}
        try:
            if wanted.assignments:
                for assignment in wanted.assignments:
                    if list(assignment.broker_ids) != [ctx.broker.node_id]:
                        raise InvalidRequest(
                            f"replica assignment {list(assignment.broker_ids)} names nodes "
                            "other than this one"
                        )
            catalog.add_partitions(wanted.name, wanted.count, validate_only=request.validate_only)
        except BrokerError as exc:
            result.update(error_code=exc.code, error_message=exc.message)
        results.append(result)
    return ctx.respond({"throttle_time": 0, "results": results})
