"""Whole-request error answers: every topic, partition, group or resource gets the error code.

When a handler rejects a request as a whole (not authorised, coordinator not here, shutting
down, an unexpected failure), Kafka still answers with the request's own shape: one entry per
topic/partition/group the request named, each carrying the error. `error_response(header,
request, code)` does that for every API in `apis.API_TABLE`, from the decoded kio request;
`ERROR_SHAPES` is the table of per-API shapes.

Fields the shape does not name take `build_response`'s defaults (Kafka's schema defaults, -1
offsets and ids where the schema says so).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from firth.kafka.protocol.codec import build_response
from firth.kafka.protocol.errors import ErrorCode
from firth.kafka.protocol.header import RequestHeader

Shape = Callable[[Any, int, str | None, int], dict[str, Any]]
"""(request, code, message, version) -> response fields."""


def _items(value: Any) -> tuple[Any, ...]:
    return tuple(value) if value else ()


def _produce(req: Any, code: int, message: str | None, version: int) -> dict[str, Any]:
    return {
        "responses": [
            {
                "name": topic.name,
                "partition_responses": [
                    {"index": part.index, "error_code": code, "base_offset": -1}
                    for part in topic.partition_data
                ],
            }
            for topic in req.topic_data
        ]
    }


def _fetch(req: Any, code: int, message: str | None, version: int) -> dict[str, Any]:
    return {
        "error_code": code,
        "session_id": 0,
        "responses": [
            {
                "topic": getattr(topic, "topic", ""),
                "topic_id": getattr(topic, "topic_id", None),
                "partitions": [
                    {"partition_index": part.partition, "error_code": code, "high_watermark": -1}
                    for part in topic.partitions
                ],
            }
            for topic in req.topics
        ],
    }


def _list_offsets(req: Any, code: int, message: str | None, version: int) -> dict[str, Any]:
    return {
        "topics": [
            {
                "name": topic.name,
                "partitions": [
                    {
                        "partition_index": part.partition_index,
                        "error_code": code,
                        "timestamp": -1,
                        "offset": -1,
                    }
                    for part in topic.partitions
                ],
            }
            for topic in req.topics
        ]
    }


def _metadata(req: Any, code: int, message: str | None, version: int) -> dict[str, Any]:
    return {
        "error_code": code,
        "controller_id": -1,
        "topics": [
            {"error_code": code, "name": topic.name, "topic_id": getattr(topic, "topic_id", None)}
            for topic in _items(req.topics)
        ],
    }


def _topic_partitions(req: Any, code: int, message: str | None, version: int) -> dict[str, Any]:
    # OffsetCommit and OffsetDelete: topics -> partitions -> error_code.
    return {
        "error_code": code,
        "topics": [
            {
                "name": topic.name,
                "partitions": [
                    {"partition_index": part.partition_index, "error_code": code}
                    for part in topic.partitions
                ],
            }
            for topic in req.topics
        ],
    }


def _offset_fetch(req: Any, code: int, message: str | None, version: int) -> dict[str, Any]:
    def topics(items: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": topic.name,
                "partitions": [
                    {
                        "partition_index": index,
                        "committed_offset": -1,
                        "metadata": "",
                        "error_code": code,
                    }
                    for index in topic.partition_indexes
                ],
            }
            for topic in _items(items)
        ]

    if version >= 8:
        return {
            "groups": [
                {"group_id": group.group_id, "topics": topics(group.topics), "error_code": code}
                for group in req.groups
            ]
        }
    return {"error_code": code, "topics": topics(req.topics)}


def _find_coordinator(req: Any, code: int, message: str | None, version: int) -> dict[str, Any]:
    if version >= 4:
        return {
            "coordinators": [
                {
                    "key": key,
                    "node_id": -1,
                    "port": -1,
                    "error_code": code,
                    "error_message": message,
                }
                for key in req.coordinator_keys
            ]
        }
    return {"error_code": code, "error_message": message, "node_id": -1, "port": -1}


def _error_code_only(req: Any, code: int, message: str | None, version: int) -> dict[str, Any]:
    return {"error_code": code, "error_message": message}


def _join_group(req: Any, code: int, message: str | None, version: int) -> dict[str, Any]:
    return {"error_code": code, "generation_id": -1, "member_id": req.member_id}


def _consumer_group_heartbeat(
    req: Any, code: int, message: str | None, version: int
) -> dict[str, Any]:
    return {
        "error_code": code,
        "error_message": message,
        "member_id": req.member_id,
        "member_epoch": 0,
        "heartbeat_interval": 0,
        "assignment": None,
    }


def failed_consumer_group(
    group_id: str, code: int, message: str | None = None, operations: int = -(2**31)
) -> dict[str, Any]:
    """One ConsumerGroupDescribe entry for a group that could not be described (also used by
    the handler when no consumer-group coordinator runs); -(2**31) is "operations not asked"."""
    return {
        "error_code": code,
        "error_message": message,
        "group_id": group_id,
        "group_state": "",
        "group_epoch": -1,
        "assignment_epoch": -1,
        "assignor_name": "",
        "members": [],
        "authorized_operations": operations,
    }


def _consumer_group_describe(
    req: Any, code: int, message: str | None, version: int
) -> dict[str, Any]:
    return {"groups": [failed_consumer_group(g, code, message) for g in req.group_ids]}


def _leave_group(req: Any, code: int, message: str | None, version: int) -> dict[str, Any]:
    members = getattr(req, "members", ())
    return {
        "error_code": code,
        "members": [
            {
                "member_id": member.member_id,
                "group_instance_id": member.group_instance_id,
                "error_code": code,
            }
            for member in members
        ],
    }


def _describe_groups(req: Any, code: int, message: str | None, version: int) -> dict[str, Any]:
    return {
        "groups": [
            {"error_code": code, "error_message": message, "group_id": group_id}
            for group_id in req.groups
        ]
    }


def _create_topics(req: Any, code: int, message: str | None, version: int) -> dict[str, Any]:
    return {
        "topics": [
            {
                "name": topic.name,
                "error_code": code,
                "error_message": message,
                "num_partitions": -1,
                "replication_factor": -1,
            }
            for topic in req.topics
        ]
    }


def _delete_topics(req: Any, code: int, message: str | None, version: int) -> dict[str, Any]:
    if version >= 6:
        entries = [(topic.name, topic.topic_id) for topic in req.topics]
    else:
        entries = [(name, None) for name in req.topic_names]
    return {
        "responses": [
            {"name": name, "topic_id": topic_id, "error_code": code, "error_message": message}
            for name, topic_id in entries
        ]
    }


def _init_producer_id(req: Any, code: int, message: str | None, version: int) -> dict[str, Any]:
    return {"error_code": code, "producer_id": -1, "producer_epoch": -1}


def _resources(field: str) -> Shape:
    def shape(req: Any, code: int, message: str | None, version: int) -> dict[str, Any]:
        return {
            field: [
                {
                    "error_code": code,
                    "error_message": message,
                    "resource_type": resource.resource_type,
                    "resource_name": resource.resource_name,
                }
                for resource in req.resources
            ]
        }

    return shape


def _create_partitions(req: Any, code: int, message: str | None, version: int) -> dict[str, Any]:
    return {
        "results": [
            {"name": topic.name, "error_code": code, "error_message": message}
            for topic in req.topics
        ]
    }


def _delete_groups(req: Any, code: int, message: str | None, version: int) -> dict[str, Any]:
    return {
        "results": [{"group_id": group_id, "error_code": code} for group_id in req.groups_names]
    }


def _api_versions(req: Any, code: int, message: str | None, version: int) -> dict[str, Any]:
    return {"error_code": code}


def _describe_cluster(req: Any, code: int, message: str | None, version: int) -> dict[str, Any]:
    return {"error_code": code, "error_message": message, "controller_id": -1}


ERROR_SHAPES: dict[int, Shape] = {
    0: _produce,
    1: _fetch,
    2: _list_offsets,
    3: _metadata,
    8: _topic_partitions,
    9: _offset_fetch,
    10: _find_coordinator,
    11: _join_group,
    12: _error_code_only,
    13: _leave_group,
    14: _error_code_only,
    15: _describe_groups,
    16: _error_code_only,
    18: _api_versions,
    19: _create_topics,
    20: _delete_topics,
    22: _init_producer_id,
    32: _resources("results"),
    37: _create_partitions,
    42: _delete_groups,
    44: _resources("responses"),
    47: _topic_partitions,
    60: _describe_cluster,
    68: _consumer_group_heartbeat,
    69: _consumer_group_describe,
}


def error_response(
    header: RequestHeader, request: Any, code: ErrorCode | int, message: str | None = None
) -> Any:
    """The response entity answering `request` with `code` everywhere it can carry one."""
    shape = ERROR_SHAPES[header.api_key]
    fields = shape(request, int(code), message, header.api_version)
    return build_response(header.api_key, header.api_version, fields)
