"""Errors of the routing core, protocol-neutral, each naming the condition by its kind.

The AMQP front end maps ``kind`` to a reply code (``NOT_FOUND`` 404, ``ACCESS_REFUSED`` 403,
``PRECONDITION_FAILED`` 406, ``COMMAND_INVALID`` 503 for an unknown exchange type, as RabbitMQ
answers each); a Kafka-facing caller can read ``code`` like any ``BrokerError``.
"""

from __future__ import annotations

from firth.broker.errors import BrokerError


class RoutingError(BrokerError):
    kind = "internal"


class NotFound(RoutingError):
    """An exchange or queue that does not exist (AMQP 404)."""

    kind = "not_found"


class AccessRefused(RoutingError):
    """A reserved name (``amq.*``, the default exchange) or an internal exchange (AMQP 403)."""

    kind = "access_refused"


class PreconditionFailed(RoutingError):
    """Redeclared with other properties, in-use delete, invalid binding arguments (AMQP 406)."""

    kind = "precondition_failed"


class CommandInvalid(RoutingError):
    """An unknown exchange type (AMQP 503, a connection error in RabbitMQ)."""

    kind = "command_invalid"
