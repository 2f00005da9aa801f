"""Queue and consumer arguments: RabbitMQ's ``x-`` arguments, parsed and checked once.

A queue's behaviour comes from its declare arguments. Every argument Firth implements has a
row in ``QUEUE_ARGUMENTS`` (name → parser); anything else is refused with PRECONDITION_FAILED
naming it, so a client is never told a feature works when it does not (RabbitMQ 3.10 stores
and ignores unknown ones; this is a documented difference).

``x-queue-type`` accepts ``classic`` and ``quorum``. Firth has one queue engine: every durable
queue stores its messages in a log, so "quorum" means what it means on one node: the same
durable queue, with the delivery limit (``x-delivery-limit``) available, as on any durable
queue here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from firth.broker.queues.errors import QueuePreconditionFailed

OVERFLOW_MODES = ("drop-head", "reject-publish", "reject-publish-dlx")
QUEUE_TYPES = ("classic", "quorum")


def _text(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return value


def _integer(minimum: int, maximum: int | None = None) -> Callable[[str, Any], int]:
    def parse(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise QueuePreconditionFailed(
                f"invalid arg '{name}': expected an integer, got {_show(value)}"
            )
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise QueuePreconditionFailed(f"invalid arg '{name}': {value} must be {bound}")
        return value

    return parse


def _choice(options: tuple[str, ...]) -> Callable[[str, Any], str]:
    def parse(name: str, value: Any) -> str:
        value = _text(value)
        if value not in options:
            raise QueuePreconditionFailed(
                f"invalid arg '{name}': {_show(value)} is not one of {', '.join(options)}"
            )
        return str(value)

    return parse


def _string(name: str, value: Any) -> str:
    value = _text(value)
    if not isinstance(value, str):
        raise QueuePreconditionFailed(f"invalid arg '{name}': expected a string")
    return value


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise QueuePreconditionFailed(f"invalid arg '{name}': expected a boolean")
    return value


def _show(value: Any) -> str:
    return repr(value)[:60]


QUEUE_ARGUMENTS: dict[str, Callable[[str, Any], Any]] = {
    "x-message-ttl": _integer(0),
    "x-expires": _integer(1),
    "x-max-length": _integer(0),
    "x-max-length-bytes": _integer(0),
    "x-overflow": _choice(OVERFLOW_MODES),
    "x-dead-letter-exchange": _string,
    "x-dead-letter-routing-key": _string,
    "x-max-priority": _integer(0, 255),
    "x-delivery-limit": _integer(0),
    "x-single-active-consumer": _boolean,
    "x-queue-type": _choice(QUEUE_TYPES),
}
"""Every queue argument Firth implements, with its parser (raises on a bad value)."""

CONSUMER_ARGUMENTS: dict[str, Callable[[str, Any], Any]] = {
    "x-priority": _integer(-(2**31), 2**31 - 1),
}


@dataclass(frozen=True, slots=True)
class QueueArguments:
    """The parsed, checked arguments of one queue; ``None`` means not set."""

    message_ttl: int | None = None
    expires: int | None = None
    max_length: int | None = None
    max_length_bytes: int | None = None
    overflow: str = "drop-head"
    dead_letter_exchange: str | None = None
    dead_letter_routing_key: str | None = None
    max_priority: int = 0
    delivery_limit: int | None = None
    single_active_consumer: bool = False
    queue_type: str = "classic"

    @classmethod
    def parse(cls, arguments: Mapping[str, Any] | None) -> QueueArguments:
        """Check every argument; raises QueuePreconditionFailed naming the first bad one."""
        values: dict[str, Any] = {}
        for name, raw in (arguments or {}).items():
            parser = QUEUE_ARGUMENTS.get(name)
            if parser is None:
                raise QueuePreconditionFailed(
                    f"queue argument '{name}' is not supported by Firth "
                    "(refused rather than ignored; see docs/amqp.md)"
                )
            values[name] = parser(name, raw)
        if "x-dead-letter-routing-key" in values and "x-dead-letter-exchange" not in values:
            raise QueuePreconditionFailed(
                "invalid arg 'x-dead-letter-routing-key': requires 'x-dead-letter-exchange'"
            )
        return cls(
            message_ttl=values.get("x-message-ttl"),
            expires=values.get("x-expires"),
            max_length=values.get("x-max-length"),
            max_length_bytes=values.get("x-max-length-bytes"),
            overflow=values.get("x-overflow", "drop-head"),
            dead_letter_exchange=values.get("x-dead-letter-exchange"),
            dead_letter_routing_key=values.get("x-dead-letter-routing-key"),
            max_priority=values.get("x-max-priority", 0),
            delivery_limit=values.get("x-delivery-limit"),
            single_active_consumer=values.get("x-single-active-consumer", False),
            queue_type=values.get("x-queue-type", "classic"),
        )


def consumer_priority(arguments: Mapping[str, Any] | None) -> int:
    """A consumer's ``x-priority`` (default 0); unknown consumer arguments are refused."""
    priority = 0
    for name, raw in (arguments or {}).items():
        parser = CONSUMER_ARGUMENTS.get(name)
        if parser is None:
            raise QueuePreconditionFailed(
                f"consumer argument '{name}' is not supported by Firth (see docs/amqp.md)"
            )
        priority = parser(name, raw)
    return priority
