"""Queues, protocol-neutral: a queue is a log of messages plus its acknowledgement state.

Modules: ``arguments`` (queue and consumer arguments, validated; unknown ones refused),
``message`` (a queued message and its stored form), ``store`` (a durable queue's log and its
settle journal on disk), ``queue`` (ready sub-queues per priority, unacked messages, consumers
and dispatch, TTL, length limits), ``deadletter`` (what dead-lettering records), ``vhost``
(one virtual host: the router, the queues, definitions on disk, publish and dead-letter
routing). The AMQP front end drives them; nothing here knows a wire format.
"""

from firth.broker.queues.arguments import QueueArguments
from firth.broker.queues.errors import (
    QueueAccessRefused,
    QueueError,
    QueueNotFound,
    QueuePreconditionFailed,
    ResourceLocked,
)
from firth.broker.queues.message import QueuedMessage
from firth.broker.queues.queue import Consumer, ConsumerChannel, Queue
from firth.broker.queues.vhost import PropertiesCodec, VirtualHost

__all__ = [
    "Consumer",
    "ConsumerChannel",
    "PropertiesCodec",
    "Queue",
    "QueueAccessRefused",
    "QueueArguments",
    "QueueError",
    "QueueNotFound",
    "QueuePreconditionFailed",
    "QueuedMessage",
    "ResourceLocked",
    "VirtualHost",
]
