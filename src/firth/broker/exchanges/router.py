"""Exchanges, bindings and routing for one virtual host: protocol-neutral and in memory.

``Router`` owns the exchanges of a vhost and every binding (exchange → queue and exchange →
exchange). It knows queue names only (``add_queue``/``remove_queue``), never queue contents;
the default exchange binds every known queue by its name implicitly. Durability is the
caller's business: ``Router.definitions()`` lists what a durable catalog must persist.

``route(exchange, routing_key, headers)`` returns the set of queue names a message goes to:

- the exchange's type picks matching bindings (direct: equal key; fanout: all; topic: trie,
  see topic.py; headers: see headers.py);
- bindings to exchanges put those exchanges on a work list; a set of visited exchanges makes
  cycles harmless, and the result is a set, so each queue gets exactly one copy;
- an exchange none of whose bindings matched hands the message to its ``alternate-exchange``
  (if that exists), as RabbitMQ does at every step of the walk.

Declaration rules follow RabbitMQ: ``amq.*`` names and the default exchange cannot be declared
(except passively) or deleted (ACCESS_REFUSED); a redeclare must match type, durable,
auto-delete, internal and ``alternate-exchange`` (PRECONDITION_FAILED); an unknown type is COMMAND_INVALID.
An auto-delete exchange goes away when its last binding as source is removed.

Not thread-safe: the broker calls it from its event loop only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from firth.broker.exchanges.errors import (
    AccessRefused,
    CommandInvalid,
    NotFound,
    PreconditionFailed,
)
from firth.broker.exchanges.headers import HeadersPattern
from firth.broker.exchanges.topic import TopicTrie

DEFAULT_EXCHANGE = ""
EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers")

STANDARD_EXCHANGES: dict[str, tuple[str, bool]] = {
    "amq.direct": ("direct", False),
    "amq.fanout": ("fanout", False),
    "amq.topic": ("topic", False),
    "amq.headers": ("headers", False),
    "amq.match": ("headers", False),
    "amq.rabbitmq.trace": ("topic", True),
}
"""The pre-declared exchanges of every vhost: name → (type, internal). All durable."""

SUPPORTED_EXCHANGE_ARGUMENTS = frozenset({"alternate-exchange"})
"""Exchange arguments with an effect here; others are kept (RabbitMQ keeps them too)."""

DestinationKind = Literal["queue", "exchange"]


def freeze(value: Any) -> Any:
    """A hashable, order-insensitive form of an argument value (dicts, lists nested)."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return value


@dataclass(frozen=True, slots=True)
class Binding:
    """One binding. Identity is all five fields, as in RabbitMQ (arguments compared frozen)."""

    source: str
    destination: str
    kind: DestinationKind
    routing_key: str
    arguments_key: Any = ()

    @classmethod
    def make(
        cls,
        source: str,
        destination: str,
        kind: DestinationKind,
        routing_key: str,
        arguments: Mapping[str, Any] | None = None,
    ) -> Binding:
        return cls(source, destination, kind, routing_key, freeze(arguments or {}))


@dataclass(slots=True)
class Exchange:
    """An exchange and the bindings whose source it is, indexed for its type."""

    name: str
    type: str
    durable: bool = True
    auto_delete: bool = False
    internal: bool = False
    arguments: dict[str, Any] = field(default_factory=dict)
    bindings: dict[Binding, Mapping[str, Any]] = field(default_factory=dict)
    _direct: dict[str, set[Binding]] = field(default_factory=dict)
    _topic: TopicTrie[Binding] = field(default_factory=TopicTrie)
    _headers: dict[Binding, HeadersPattern] = field(default_factory=dict)

    @property
    def alternate_exchange(self) -> str | None:
        value = self.arguments.get("alternate-exchange")
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return value if isinstance(value, str) else None

    def add(self, binding: Binding, arguments: Mapping[str, Any]) -> None:
        if binding in self.bindings:
            return
        if self.type == "headers":
            self._headers[binding] = HeadersPattern.from_arguments(arguments)
        elif self.type == "topic":
            self._topic.add(binding.routing_key, binding)
        elif self.type == "direct":
            self._direct.setdefault(binding.routing_key, set()).add(binding)
        self.bindings[binding] = dict(arguments)

    def remove(self, binding: Binding) -> bool:
        if self.bindings.pop(binding, None) is None:
            return False
        if self.type == "headers":
            self._headers.pop(binding, None)
        elif self.type == "topic":
            self._topic.remove(binding.routing_key, binding)
        elif self.type == "direct":
            keyed = self._direct.get(binding.routing_key)
            if keyed is not None:
                keyed.discard(binding)
                if not keyed:
                    del self._direct[binding.routing_key]
        return True

    def match(self, routing_key: str, headers: Mapping[str, Any] | None) -> Iterable[Binding]:
        if self.type == "direct":
            return self._direct.get(routing_key, ())
        if self.type == "fanout":
            return self.bindings.keys()
        if self.type == "topic":
            return self._topic.match(routing_key)
        return [b for b, pattern in self._headers.items() if pattern.matches(headers)]

    def equivalent(
        self,
        type_: str,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: Mapping[str, Any],
    ) -> str | None:
        """``None`` if a redeclare with these values is equivalent, else what differs.

        As in RabbitMQ, only ``alternate-exchange`` among the arguments must match; other
        exchange arguments may differ on redeclare.
        """
        checks: tuple[tuple[str, Any, Any], ...] = (
            ("type", type_, self.type),
            ("durable", durable, self.durable),
            ("auto_delete", auto_delete, self.auto_delete),
            ("internal", internal, self.internal),
            (
                "alternate-exchange",
                freeze(arguments.get("alternate-exchange")),
                freeze(self.arguments.get("alternate-exchange")),
            ),
        )
        for name, received, current in checks:
            if received != current:
                return f"arg '{name}' for exchange '{self.name}': received {_show(received)} but current is {_show(current)}"
        return None


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return f"'{str(value).lower()}'"
    if value is None:
        return "none"
    return f"'{value}'"


class Router:
    """Exchanges and bindings of one virtual host (see the module docstring)."""

    def __init__(self, vhost: str = "/") -> None:
        self.vhost = vhost
        self.exchanges: dict[str, Exchange] = {DEFAULT_EXCHANGE: Exchange("", "direct")}
        for name, (type_, internal) in STANDARD_EXCHANGES.items():
            self.exchanges[name] = Exchange(name, type_, durable=True, internal=internal)
        self.queues: set[str] = set()
        self._queue_bindings: dict[str, set[Binding]] = {}
        """Bindings whose destination is a queue, by queue: unbinding on queue delete."""
        self._exchange_bindings: dict[str, set[Binding]] = {}
        """Bindings whose destination is an exchange, by that exchange."""

    # -- exchanges ---------------------------------------------------------------------------------

    def _not_found(self, name: str) -> NotFound:
        return NotFound(f"no exchange '{name}' in vhost '{self.vhost}'")

    def get(self, name: str) -> Exchange:
        exchange = self.exchanges.get(name)
        if exchange is None:
            raise self._not_found(name)
        return exchange

    def declare_exchange(
        self,
        name: str,
        type_: str,
        *,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: Mapping[str, Any] | None = None,
        passive: bool = False,
    ) -> Exchange:
        """Create or check an exchange; returns it. See the module docstring for the rules."""
        arguments = dict(arguments or {})
        existing = self.exchanges.get(name)
        if passive:
            if existing is None:
                raise self._not_found(name)
            return existing
        if name == DEFAULT_EXCHANGE or (name.startswith("amq.") and existing is None):
            raise AccessRefused(
                f"exchange name '{name}' contains reserved prefix 'amq.'"
                if name
                else "operation not permitted on the default exchange"
            )
        if type_ not in EXCHANGE_TYPES:
            raise CommandInvalid(f"invalid exchange type '{type_}'")
        alternate = arguments.get("alternate-exchange")
        if alternate is not None and not isinstance(alternate, str | bytes):
            raise PreconditionFailed(
                f"invalid arg 'alternate-exchange' for exchange '{name}': expected a string"
            )
        if existing is not None:
            difference = existing.equivalent(type_, durable, auto_delete, internal, arguments)
            if difference is not None:
                head, _, tail = difference.partition(": ")
                raise PreconditionFailed(f"inequivalent {head} in vhost '{self.vhost}': {tail}")
            return existing
        exchange = Exchange(name, type_, durable, auto_delete, internal, arguments)
        self.exchanges[name] = exchange
        return exchange

    def delete_exchange(self, name: str, *, if_unused: bool = False) -> None:
        """Delete an exchange and every binding from or to it.

        Deleting an exchange that does not exist succeeds, as in RabbitMQ 3.x (idempotent).
        """
        if name == DEFAULT_EXCHANGE or name.startswith("amq."):
            raise AccessRefused(f"operation not permitted on exchange '{name or '(default)'}'")
        exchange = self.exchanges.get(name)
        if exchange is None:
            return
        if if_unused and exchange.bindings:
            raise PreconditionFailed(f"exchange '{name}' in vhost '{self.vhost}' in use")
        for binding in list(exchange.bindings):
            self._forget(binding)
        for binding in list(self._exchange_bindings.get(name, ())):
            self._unbind(binding, auto_delete=True)
        self._exchange_bindings.pop(name, None)
        del self.exchanges[name]

    # -- queues ------------------------------------------------------------------------------------

    def add_queue(self, name: str) -> None:
        """A queue now exists: the default exchange routes its name to it."""
        self.queues.add(name)

    def remove_queue(self, name: str) -> None:
        """A queue is gone: drop it and all its bindings (auto-deleting exchanges as needed)."""
        self.queues.discard(name)
        for binding in list(self._queue_bindings.get(name, ())):
            self._unbind(binding, auto_delete=True)
        self._queue_bindings.pop(name, None)

    # -- bindings ----------------------------------------------------------------------------------

    def bind_queue(
        self,
        queue: str,
        exchange: str,
        routing_key: str,
        arguments: Mapping[str, Any] | None = None,
    ) -> Binding:
        if exchange == DEFAULT_EXCHANGE:
            raise AccessRefused("operation not permitted on the default exchange")
        if queue not in self.queues:
            raise NotFound(f"no queue '{queue}' in vhost '{self.vhost}'")
        source = self.get(exchange)
        binding = Binding.make(exchange, queue, "queue", routing_key, arguments)
        source.add(binding, arguments or {})
        self._queue_bindings.setdefault(queue, set()).add(binding)
        return binding

    def unbind_queue(
        self,
        queue: str,
        exchange: str,
        routing_key: str,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        """Remove a binding; absent bindings are fine (RabbitMQ answers unbind-ok)."""
        if exchange == DEFAULT_EXCHANGE:
            raise AccessRefused("operation not permitted on the default exchange")
        if queue not in self.queues:
            raise NotFound(f"no queue '{queue}' in vhost '{self.vhost}'")
        self.get(exchange)
        self._unbind(Binding.make(exchange, queue, "queue", routing_key, arguments), True)

    def bind_exchange(
        self,
        destination: str,
        source: str,
        routing_key: str,
        arguments: Mapping[str, Any] | None = None,
    ) -> Binding:
        if DEFAULT_EXCHANGE in (source, destination):
            raise AccessRefused("operation not permitted on the default exchange")
        self.get(destination)
        exchange = self.get(source)
        binding = Binding.make(source, destination, "exchange", routing_key, arguments)
        exchange.add(binding, arguments or {})
        self._exchange_bindings.setdefault(destination, set()).add(binding)
        return binding

    def unbind_exchange(
        self,
        destination: str,
        source: str,
        routing_key: str,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        if DEFAULT_EXCHANGE in (source, destination):
            raise AccessRefused("operation not permitted on the default exchange")
        self.get(destination)
        self.get(source)
        self._unbind(Binding.make(source, destination, "exchange", routing_key, arguments), True)

    def _unbind(self, binding: Binding, auto_delete: bool) -> None:
        self._forget(binding)
        source = self.exchanges.get(binding.source)
        if (
            auto_delete
            and source is not None
            and source.auto_delete
            and not source.bindings
            and source.name in self.exchanges
        ):
            self.delete_exchange(source.name)

    def _forget(self, binding: Binding) -> None:
        source = self.exchanges.get(binding.source)
        if source is not None:
            source.remove(binding)
        index = self._queue_bindings if binding.kind == "queue" else self._exchange_bindings
        group = index.get(binding.destination)
        if group is not None:
            group.discard(binding)
            if not group:
                del index[binding.destination]

    def bindings(self) -> list[tuple[Binding, Mapping[str, Any]]]:
        """Every explicit binding with its arguments (the default exchange's are implicit)."""
        return [
            (binding, arguments)
            for exchange in self.exchanges.values()
            for binding, arguments in exchange.bindings.items()
        ]

    def bindings_of_queue(self, queue: str) -> set[Binding]:
        return set(self._queue_bindings.get(queue, ()))

    # -- routing -----------------------------------------------------------------------------------

    def route(
        self, exchange: str, routing_key: str, headers: Mapping[str, Any] | None = None
    ) -> set[str]:
        """Queue names for a message published to ``exchange``.

        Raises ``NotFound`` for an unknown exchange and ``AccessRefused`` for an internal one
        (what basic.publish answers); exchanges reached through bindings may be internal.
        """
        if exchange == DEFAULT_EXCHANGE:
            return {routing_key} if routing_key in self.queues else set()
        start = self.get(exchange)
        if start.internal:
            raise AccessRefused(f"cannot publish to internal exchange '{exchange}'")
        queues: set[str] = set()
        visited: set[str] = set()
        pending = [start]
        while pending:
            current = pending.pop()
            if current.name in visited:
                continue
            visited.add(current.name)
            matched = False
            for binding in current.match(routing_key, headers):
                matched = True
                if binding.kind == "queue":
                    queues.add(binding.destination)
                else:
                    target = self.exchanges.get(binding.destination)
                    if target is not None:
                        pending.append(target)
            if not matched:
                alternate_name = current.alternate_exchange
                alternate = self.exchanges.get(alternate_name) if alternate_name else None
                if alternate is not None:
                    pending.append(alternate)
        return queues

    def definitions(self) -> dict[str, Any]:
        """Durable exchanges and bindings between durable things, for a catalog to persist."""
        return {
            "exchanges": [
                {
                    "name": x.name,
                    "type": x.type,
                    "auto_delete": x.auto_delete,
                    "internal": x.internal,
                    "arguments": x.arguments,
                }
                for x in self.exchanges.values()
                if x.durable and x.name and not x.name.startswith("amq.")
            ],
            "bindings": [
                {
                    "source": b.source,
                    "destination": b.destination,
                    "destination_type": b.kind,
                    "routing_key": b.routing_key,
                    "arguments": dict(arguments),
                }
                for b, arguments in self.bindings()
            ],
        }
