"""Exchanges and routing, protocol-neutral: what a published message reaches.

``Router`` (router.py) holds a vhost's exchanges and bindings and answers
``route(exchange, routing_key, headers) -> set[str]`` of queue names; ``topic.py`` and
``headers.py`` hold the two non-trivial matchers; ``errors.py`` the error tree. The AMQP front
end maps the errors to reply codes; queues themselves live elsewhere (the router knows names).
"""

from firth.broker.exchanges.errors import (
    AccessRefused,
    CommandInvalid,
    NotFound,
    PreconditionFailed,
    RoutingError,
)
from firth.broker.exchanges.headers import HeadersPattern
from firth.broker.exchanges.router import (
    DEFAULT_EXCHANGE,
    EXCHANGE_TYPES,
    STANDARD_EXCHANGES,
    Binding,
    Exchange,
    Router,
)
from firth.broker.exchanges.topic import TopicTrie

__all__ = [
    "DEFAULT_EXCHANGE",
    "EXCHANGE_TYPES",
    "STANDARD_EXCHANGES",
    "AccessRefused",
    "Binding",
    "CommandInvalid",
    "Exchange",
    "HeadersPattern",
    "NotFound",
    "PreconditionFailed",
    "Router",
    "RoutingError",
    "TopicTrie",
]
