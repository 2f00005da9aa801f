"""DescribeConfigs (32) and IncrementalAlterConfigs (44) for topic configs.

Topics: every key in firth.broker.topic_config.TOPIC_CONFIG_KEYS is described with its effective
value and whether it is a topic override or the broker default; only those keys can be set.
The broker resource (named by the node id) is described read-only: Firth's broker settings come
from its config file, environment and flags, so altering them over the wire is refused.
"""

from __future__ import annotations

from typing import Any

from firth.broker.errors import BrokerError, InvalidConfig, InvalidRequest
from firth.broker.topic_config import TOPIC_CONFIG_KEYS, effective_values
from firth.kafka.handlers import handles
from firth.kafka.handlers.context import RequestContext

RESOURCE_TOPIC = 2
RESOURCE_BROKER = 4

SOURCE_TOPIC = 1
SOURCE_STATIC_BROKER = 4
SOURCE_DEFAULT = 5

CONFIG_TYPES = {"BOOLEAN": 1, "STRING": 2, "INT": 3, "SHORT": 4, "LONG": 5, "LIST": 7}

OP_SET, OP_DELETE, OP_APPEND, OP_SUBTRACT = 0, 1, 2, 3


def _topic_configs(ctx: RequestContext, name: str, keys: Any, documentation: bool) -> list[dict]:
    topic = ctx.broker.catalog.get(name)
    values = effective_values(ctx.broker.catalog.defaults, topic.config)
    wanted = sorted(values) if keys is None else [k for k in keys if k in values]
    return [
        {
            "name": key,
            "value": values[key],
            "read_only": False,
            "config_source": SOURCE_TOPIC if key in topic.config else SOURCE_DEFAULT,
            "is_default": key not in topic.config,
            "is_sensitive": False,
            "synonyms": [],
            "config_type": CONFIG_TYPES.get(TOPIC_CONFIG_KEYS[key].kind, 0),
            "documentation": TOPIC_CONFIG_KEYS[key].documentation if documentation else None,
        }
        for key in wanted
    ]


def _broker_configs(ctx: RequestContext, keys: Any) -> list[dict]:
    settings = ctx.broker.settings
    defaults = settings.defaults
    values = {
        "log.retention.ms": (str(defaults.retention_ms), "LONG"),
        "log.retention.bytes": (str(defaults.retention_bytes), "LONG"),
        "log.segment.bytes": (str(defaults.segment_bytes), "INT"),
        "log.roll.ms": (str(defaults.segment_ms), "LONG"),
        "message.max.bytes": (str(defaults.max_message_bytes), "INT"),
        "num.partitions": (str(settings.num_partitions), "INT"),
        "auto.create.topics.enable": (str(settings.auto_create_topics).lower(), "BOOLEAN"),
        "default.replication.factor": ("1", "SHORT"),
        "broker.id": (str(settings.node_id), "INT"),
    }
    wanted = sorted(values) if keys is None else [k for k in keys if k in values]
    return [
        {
            "name": key,
            "value": values[key][0],
            "read_only": True,
            "config_source": SOURCE_STATIC_BROKER,
            "is_default": False,
            "is_sensitive": False,
            "synonyms": [],
            "config_type": CONFIG_TYPES[values[key][1]],
            "documentation": None,
        }
        for key in wanted
    ]


@handles(32)
async def describe_configs(ctx: RequestContext) -> bytes:
    request = ctx.decode()
    documentation = getattr(request, "include_documentation", False)
    results = []
    for resource in request.resources:
        result: dict[str, Any] = {
            "error_code": 0,
            "error_message": None,
            "resource_type": resource.resource_type,
            "resource_name": resource.resource_name,
            "configs": [],
        }
        try:
            if resource.resource_type == RESOURCE_TOPIC:
                result["configs"] = _topic_configs(
                    ctx, resource.resource_name, resource.configuration_keys, documentation
                )
            elif resource.resource_type == RESOURCE_BROKER:
                if resource.resource_name not in ("", str(ctx.broker.node_id)):
                    raise InvalidRequest(f"no broker {resource.resource_name!r} here")
                result["configs"] = _broker_configs(ctx, resource.configuration_keys)
            else:
                raise InvalidRequest(
                    f"resource type {resource.resource_type} is not supported (topics: 2, "
                    "broker: 4)"
                )
        except BrokerError as exc:
            result.update(error_code=exc.code, error_message=exc.message)
        results.append(result)
    return ctx.respond({"throttle_time": 0, "results": results})


def _apply(current: dict[str, str], changes: Any) -> dict[str, str]:
    updated = dict(current)
    for change in changes:
        if change.name not in TOPIC_CONFIG_KEYS:
            raise InvalidConfig(
                f"unknown or unsupported topic config {change.name!r}; supported: "
                + ", ".join(sorted(TOPIC_CONFIG_KEYS))
            )
        if change.config_operation == OP_SET:
            if change.value is None:
                raise InvalidConfig(f"{change.name}: SET needs a value")
            updated[change.name] = change.value
        elif change.config_operation == OP_DELETE:
            updated.pop(change.name, None)
        elif change.config_operation in (OP_APPEND, OP_SUBTRACT):
            raise InvalidConfig(
                f"{change.name}: APPEND and SUBTRACT apply only to list configs; use SET"
            )
        else:
            raise InvalidRequest(f"unknown config operation {change.config_operation}")
    return updated


@handles(44)
async def incremental_alter_configs(ctx: RequestContext) -> bytes:
    request = ctx.decode()
    catalog = ctx.broker.catalog
    responses = []
    for resource in request.resources:
        response: dict[str, Any] = {
            "error_code": 0,
            "error_message": None,
            "resource_type": resource.resource_type,
            "resource_name": resource.resource_name,
        }
        try:
            if resource.resource_type == RESOURCE_BROKER:
                raise InvalidRequest(
                    "broker configs are read-only over the wire: set them in Firth's config "
                    "file, environment or flags and restart"
                )
            if resource.resource_type != RESOURCE_TOPIC:
                raise InvalidRequest(f"resource type {resource.resource_type} is not supported")
            topic = catalog.get(resource.resource_name)
            updated = _apply(topic.config, resource.configs)
            catalog.set_config(topic.name, updated, validate_only=request.validate_only)
        except BrokerError as exc:
            response.update(error_code=exc.code, error_message=exc.message)
        responses.append(response)
    return ctx.respond({"throttle_time": 0, "responses": responses})
