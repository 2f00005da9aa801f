"""Topic configuration: the Kafka config keys Firth honours, their validation and defaults.

A topic stores only its overrides (key -> string value, as Kafka does); the effective value of a
key is the override if present, else the broker default. The table below is the one place that
says which keys exist: DescribeConfigs lists exactly these, CreateTopics and
IncrementalAlterConfigs accept exactly these, and anything else is refused with INVALID_CONFIG
rather than silently stored and ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from firth.log import LogConfig


class ConfigError(ValueError):
    """A config key or value Firth does not accept; the message says which and why."""


def _long(min_value: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ConfigError(f"expected an integer, got {text!r}") from None
        if value < min_value:
            raise ConfigError(f"must be at least {min_value}, got {value}")
        return value

    return parse


def _cleanup_policy(text: str) -> str:
    if text.strip() != "delete":
        raise ConfigError(
            f"cleanup.policy {text!r} is not supported: Firth implements only 'delete' "
            "(log compaction is not implemented yet)"
        )
    return "delete"


def _timestamp_type(text: str) -> str:
    if text.strip() != "CreateTime":
        raise ConfigError(
            f"message.timestamp.type {text!r} is not supported: Firth keeps producer timestamps "
            "(CreateTime)"
        )
    return "CreateTime"


@dataclass(frozen=True, slots=True)
class ConfigKey:
    name: str
    kind: str  # Kafka's config type name, reported by DescribeConfigs v3+
    parse: Callable[[str], object]
    documentation: str


TOPIC_CONFIG_KEYS: dict[str, ConfigKey] = {
    key.name: key
    for key in (
        ConfigKey(
            "retention.ms",
            "LONG",
            _long(-1),
            "How long to keep a segment after its newest record; -1 keeps forever.",
        ),
        ConfigKey(
            "retention.bytes",
            "LONG",
            _long(-1),
            "Largest size a partition may grow to before old segments are deleted; -1 is no limit.",
        ),
        ConfigKey("segment.bytes", "INT", _long(14), "Size at which the active segment is rolled."),
        ConfigKey("segment.ms", "LONG", _long(1), "Age at which the active segment is rolled."),
        ConfigKey(
            "max.message.bytes",
            "INT",
            _long(0),
            "Largest record batch (after compression) the topic accepts.",
        ),
        ConfigKey(
            "cleanup.policy", "LIST", _cleanup_policy, "Only 'delete' (retention) is supported."
        ),
        ConfigKey(
            "message.timestamp.type",
            "STRING",
            _timestamp_type,
            "Only CreateTime: batches are stored with the producer's timestamps.",
        ),
    )
}


def validate_overrides(overrides: Mapping[str, str | None]) -> dict[str, str]:
    """Check every key and value; return the overrides with None values dropped."""
    clean: dict[str, str] = {}
    for name, value in overrides.items():
        key = TOPIC_CONFIG_KEYS.get(name)
        if key is None:
            raise ConfigError(
                f"unknown or unsupported topic config {name!r}; supported: "
                + ", ".join(sorted(TOPIC_CONFIG_KEYS))
            )
        if value is None:
            continue
        try:
            key.parse(value)
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc}") from None
        clean[name] = value
    return clean


@dataclass(frozen=True, slots=True)
class BrokerDefaults:
    """Broker-wide defaults that topic overrides replace."""

    retention_ms: int = 7 * 24 * 3600 * 1000
    retention_bytes: int = -1
    segment_bytes: int = 1 << 30
    segment_ms: int = 7 * 24 * 3600 * 1000
    max_message_bytes: int = 1048588

    def default_values(self) -> dict[str, str]:
        return {
            "retention.ms": str(self.retention_ms),
            "retention.bytes": str(self.retention_bytes),
            "segment.bytes": str(self.segment_bytes),
            "segment.ms": str(self.segment_ms),
            "max.message.bytes": str(self.max_message_bytes),
            "cleanup.policy": "delete",
            "message.timestamp.type": "CreateTime",
        }


def effective_values(defaults: BrokerDefaults, overrides: Mapping[str, str]) -> dict[str, str]:
    values = defaults.default_values()
    values.update(overrides)
    return values


def log_config(defaults: BrokerDefaults, overrides: Mapping[str, str]) -> LogConfig:
    values = effective_values(defaults, overrides)
    return LogConfig(
        segment_bytes=int(values["segment.bytes"]),
        segment_ms=int(values["segment.ms"]),
        retention_ms=int(values["retention.ms"]),
        retention_bytes=int(values["retention.bytes"]),
        max_message_bytes=int(values["max.message.bytes"]),
    )
