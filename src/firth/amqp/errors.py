"""Where broker-core errors become AMQP replies: one table from error kind to reply code.

The routing core (``firth.broker.exchanges``) raises protocol-neutral errors that name their
kind; the AMQP front end answers them with the code RabbitMQ uses for the same condition.
Most are channel errors; an unknown exchange type is a connection error in RabbitMQ (503).
"""

from __future__ import annotations

from firth.amqp.protocol import AmqpChannelError, AmqpConnectionError, AmqpError, ReplyCode
from firth.broker.exchanges import RoutingError

ROUTING_REPLIES: dict[str, tuple[ReplyCode, bool]] = {
    "not_found": (ReplyCode.NOT_FOUND, False),
    "access_refused": (ReplyCode.ACCESS_REFUSED, False),
    "precondition_failed": (ReplyCode.PRECONDITION_FAILED, False),
    "resource_locked": (ReplyCode.RESOURCE_LOCKED, False),
    "command_invalid": (ReplyCode.COMMAND_INVALID, True),
    "internal": (ReplyCode.INTERNAL_ERROR, True),
}
"""Error kind → (reply code, closes the whole connection?)."""


def amqp_error_for(
    error: RoutingError, *, channel: int, class_id: int = 0, method_id: int = 0
) -> AmqpError:
    """The AMQP error to answer ``error`` with, raised by the method (class_id, method_id)."""
    code, hard = ROUTING_REPLIES.get(error.kind, (ReplyCode.INTERNAL_ERROR, True))
    if hard:
        return AmqpConnectionError(code, error.message, class_id, method_id)
    return AmqpChannelError(code, error.message, class_id, method_id, channel=channel)
