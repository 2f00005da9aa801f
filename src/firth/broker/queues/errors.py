"""Errors of the queue core, protocol-neutral, each naming its condition by ``kind``.

The kinds are the routing core's (``firth.broker.exchanges.errors``) plus ``resource_locked``
(an exclusive queue used from another connection, AMQP 405); the AMQP front end maps each kind
to RabbitMQ's reply code in ``firth.amqp.errors``.
"""

from __future__ import annotations

from firth.broker.exchanges.errors import RoutingError


class QueueError(RoutingError):
    """Base of the queue core's errors."""

    kind = "internal"


class QueueNotFound(QueueError):
    kind = "not_found"


class QueueAccessRefused(QueueError):
    kind = "access_refused"


class QueuePreconditionFailed(QueueError):
    """Inequivalent redeclare, bad or unknown argument, in-use or non-empty delete (406)."""

    kind = "precondition_failed"


class ResourceLocked(QueueError):
    """An exclusive queue (or exclusive consumer) owned by someone else (405)."""

    kind = "resource_locked"
