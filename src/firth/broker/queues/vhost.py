"""One virtual host: its router, its queues, their definitions on disk, publish and dead-letter.

``VirtualHost`` is what a front end talks to. It owns:

- the ``Router`` (exchanges and bindings) and the ``Queue`` objects by name;
- declaring and deleting queues with RabbitMQ's rules: reserved ``amq.`` names (403),
  exclusive queues locked to their owner (405), inequivalent redeclare (406), server-named
  queues (``amq.gen-...``), passive declares, ``if-unused`` / ``if-empty``;
- durable definitions (durable exchanges, durable non-exclusive queues, and bindings between
  durable things) in ``definitions.json``, rewritten by atomic replace after each change and
  loaded at start; each durable queue's messages in its own ``QueueStore`` folder;
- ``enqueue``: a routed message into its queues, returning what the publisher must wait for
  (the logs and end offsets for the group commit) and whether any queue refused it;
- dead-lettering: a message leaving a queue with a reason is republished, deferred to the
  next loop turn so no queue is re-entered, through the queue's dead-letter exchange with
  headers the front end's ``PropertiesCodec`` writes (x-death and friends). A message that
  would go around a cycle with no rejection in it is dropped, as in RabbitMQ.

Timers and the clock come from the running asyncio loop; everything runs on its thread.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import decimal
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, Protocol

from firth.broker.exchanges import Router
from firth.broker.exchanges.router import freeze
from firth.broker.queues.arguments import QueueArguments
from firth.broker.queues.errors import (
    QueueAccessRefused,
    QueueNotFound,
    QueuePreconditionFailed,
    ResourceLocked,
)
from firth.broker.queues.message import QueuedMessage
from firth.broker.queues.queue import REFUSED, Consumer, Queue
from firth.broker.queues.store import QueueStore
from firth.fsutil import atomic_write
from firth.log import Log

logger = logging.getLogger(__name__)

DEFINITIONS_FILE = "definitions.json"
MESSAGE_OVERHEAD = 400
"""Bytes a queued message costs besides its body (the object, its properties, bookkeeping),
measured roughly with 100-byte messages on CPython 3.11."""


class PropertiesCodec(Protocol):
    """What the front end knows about its message properties that the core needs."""

    def dead_letter(
        self,
        properties: bytes,
        *,
        queue: str,
        reason: str,
        exchange: str,
        routing_keys: list[str],
        time_s: int,
    ) -> tuple[bytes, list[tuple[str, str]]]:
        """New properties for a dead-lettered message, and its deaths (queue, reason), newest
        first."""
        ...

    def headers(self, properties: bytes) -> Mapping[str, Any] | None: ...


# -- JSON form of argument tables ------------------------------------------------------------------


def _to_json(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime.datetime):
        return {"$time": value.timestamp()}
    if isinstance(value, float):
        return {"$float": value}
    if isinstance(value, Mapping):
        return {"$table": {str(k): _to_json(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        if "$bytes" in value:
            return bytes.fromhex(value["$bytes"])
        if "$decimal" in value:
            return decimal.Decimal(value["$decimal"])
        if "$time" in value:
            return datetime.datetime.fromtimestamp(value["$time"], datetime.UTC)
        if "$float" in value:
            return float(value["$float"])
        if "$table" in value:
            return {k: _from_json(v) for k, v in value["$table"].items()}
    return value


def _table_to_json(table: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): _to_json(v) for k, v in table.items()}


def _table_from_json(table: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _from_json(v) for k, v in table.items()}


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return f"'{str(value).lower()}'"
    if value is None:
        return "none"
    return f"'{value}'"


class VirtualHost:
    """One vhost (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        codec: PropertiesCodec,
        *,
        name: str = "/",
        fsync: bool = True,
    ) -> None:
        self.name = name
        self.directory = directory
        self.codec = codec
        self.fsync = fsync
        self.router = Router(name)
        self.queues: dict[str, Queue] = {}
        self._dirty_journals: set[QueueStore] = set()
        self._journal_flush_scheduled = False
        self._dead_letters: list[tuple[Queue, QueuedMessage, str]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.reply_targets: dict[str, Callable[[str, str, bytes, bytes], None]] = {}
        """Direct reply-to: suffix → deliver(exchange, routing_key, properties, body)."""

    # -- host services for queues ------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def schedule(self, delay_s: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return self.loop.call_later(delay_s, callback)

    def journal_dirty(self, store: QueueStore) -> None:
        self._dirty_journals.add(store)
        if not self._journal_flush_scheduled:
            self._journal_flush_scheduled = True
            self.loop.call_soon(self._write_journals)

    def write_pending(self) -> None:
        """Write every store's buffered messages and journal entries now. The front end calls
        this before sending output, so that a delivery never leaves before its DELIVERED
        entry is written (a SIGKILL in between would lose the redelivered flag)."""
        if self._dirty_journals:
            self._write_journals()

    def _write_journals(self) -> None:
        self._journal_flush_scheduled = False
        dirty, self._dirty_journals = self._dirty_journals, set()
        for store in dirty:
            try:
                store.write_pending()
            except Exception:
                logger.exception("writing queue storage in %s failed", store.directory)

    def queue_unused(self, queue: Queue, reason: str) -> None:
        if self.queues.get(queue.name) is queue:
            logger.debug("deleting queue %r (%s)", queue.name, reason)
            self._remove_queue(queue)

    # -- start and stop ----------------------------------------------------------------------------

    def load(self) -> None:
        """Read definitions and reopen durable queues (with their live messages)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / DEFINITIONS_FILE
        if not path.exists():
            return
        document = json.loads(path.read_text())
        for x in document.get("exchanges", []):
            try:
                self.router.declare_exchange(
                    x["name"],
                    x["type"],
                    durable=True,
                    auto_delete=x.get("auto_delete", False),
                    internal=x.get("internal", False),
                    arguments=_table_from_json(x.get("arguments", {})),
                )
            except Exception:
                logger.exception("cannot restore exchange %r", x.get("name"))
        for q in document.get("queues", []):
            try:
                self._create_queue(
                    q["name"],
                    durable=True,
                    exclusive_owner=None,
                    auto_delete=q.get("auto_delete", False),
                    arguments=_table_from_json(q.get("arguments", {})),
                    persist=False,
                )
            except Exception:
                logger.exception("cannot restore queue %r", q.get("name"))
        for b in document.get("bindings", []):
            try:
                arguments = _table_from_json(b.get("arguments", {}))
                if b["destination_type"] == "queue":
                    self.router.bind_queue(
                        b["destination"], b["source"], b["routing_key"], arguments
                    )
                else:
                    self.router.bind_exchange(
                        b["destination"], b["source"], b["routing_key"], arguments
                    )
            except Exception:
                logger.exception("cannot restore binding %r", b)

    def close(self) -> None:
        """Broker shutdown: write journals, close every store (no messages are dropped)."""
        self._write_journals()
        for queue in self.queues.values():
            queue.close()
            if queue.store is not None:
                queue.store.close()

    # -- definitions -------------------------------------------------------------------------------

    def _durable_destination(self, name: str, kind: str) -> bool:
        if kind == "queue":
            queue = self.queues.get(name)
            return queue is not None and queue.durable and queue.exclusive_owner is None
        exchange = self.router.exchanges.get(name)
        return exchange is not None and exchange.durable

    def save_definitions(self) -> None:
        exchanges = [
            {
                "name": x.name,
                "type": x.type,
                "auto_delete": x.auto_delete,
                "internal": x.internal,
                "arguments": _table_to_json(x.arguments),
            }
            for x in self.router.exchanges.values()
            if x.durable and x.name and not x.name.startswith("amq.")
        ]
        queues = [
            {
                "name": q.name,
                "auto_delete": q.auto_delete,
                "arguments": _table_to_json(q.raw_arguments),
            }
            for q in self.queues.values()
            if q.durable and q.exclusive_owner is None
        ]
        bindings = [
            {
                "source": b.source,
                "destination": b.destination,
                "destination_type": b.kind,
                "routing_key": b.routing_key,
                "arguments": _table_to_json(arguments),
            }
            for b, arguments in self.router.bindings()
            if self._durable_destination(b.source, "exchange")
            and self._durable_destination(b.destination, b.kind)
        ]
        document = {"exchanges": exchanges, "queues": queues, "bindings": bindings}
        atomic_write(
            self.directory / DEFINITIONS_FILE,
            json.dumps(document, indent=1).encode(),
            fsync=self.fsync,
        )

    # -- exchanges (persisting wrappers around the router) -----------------------------------------

    def declare_exchange(
        self,
        name: str,
        type_: str,
        *,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: Mapping[str, Any],
        passive: bool,
    ) -> None:
        existed = name in self.router.exchanges
        self.router.declare_exchange(
            name,
            type_,
            durable=durable,
            auto_delete=auto_delete,
            internal=internal,
            arguments=arguments,
            passive=passive,
        )
        if durable and not existed and not passive:
            self.save_definitions()

    def delete_exchange(self, name: str, *, if_unused: bool) -> None:
        exchange = self.router.exchanges.get(name)
        self.router.delete_exchange(name, if_unused=if_unused)
        if exchange is not None and exchange.durable:
            self.save_definitions()

    def bind_exchange(
        self, destination: str, source: str, routing_key: str, arguments: Mapping[str, Any]
    ) -> None:
        self.router.bind_exchange(destination, source, routing_key, arguments)
        if self._durable_destination(source, "exchange") and self._durable_destination(
            destination, "exchange"
        ):
            self.save_definitions()

    def unbind_exchange(
        self, destination: str, source: str, routing_key: str, arguments: Mapping[str, Any]
    ) -> None:
        self.router.unbind_exchange(destination, source, routing_key, arguments)
        self.save_definitions()

    # -- queues ------------------------------------------------------------------------------------

    def _check_owner(self, queue: Queue, owner: object) -> None:
        if queue.exclusive_owner is not None and queue.exclusive_owner is not owner:
            raise ResourceLocked(
                f"cannot obtain exclusive access to locked queue '{queue.name}' in vhost "
                f"'{self.name}'. It could be originally declared on another connection or the "
                "exclusive property value does not match that of the original declaration."
            )

    def _check_owner_of(self, name: str, owner: object) -> None:
        """``_check_owner`` for the queue ``name``, if there is one."""
        queue = self.queues.get(name)
        if queue is not None:
            self._check_owner(queue, owner)

    def lookup(self, name: str, owner: object) -> Queue:
        queue = self.queues.get(name)
        if queue is None:
            raise QueueNotFound(f"no queue '{name}' in vhost '{self.name}'")
        self._check_owner(queue, owner)
        return queue

    def declare_queue(
        self,
        name: str,
        *,
        owner: object,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: Mapping[str, Any] | None = None,
        passive: bool = False,
    ) -> Queue:
        arguments = dict(arguments or {})
        generated = not name and not passive
        if generated:
            name = "amq.gen-" + base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        existing = self.queues.get(name)
        if passive:
            if existing is None:
                raise QueueNotFound(f"no queue '{name}' in vhost '{self.name}'")
            self._check_owner(existing, owner)
            existing.touch()
            return existing
        if existing is not None:
            self._check_owner(existing, owner)
            checks = (
                ("durable", durable, existing.durable),
                ("exclusive", exclusive, existing.exclusive_owner is not None),
                ("auto_delete", auto_delete, existing.auto_delete),
            )
            for field, received, current in checks:
                if received != current:
                    raise QueuePreconditionFailed(
                        f"inequivalent arg '{field}' for queue '{name}' in vhost '{self.name}': "
                        f"received {_show(received)} but current is {_show(current)}"
                    )
            QueueArguments.parse(arguments)
            keys = set(arguments) | set(existing.raw_arguments)
            for key in sorted(keys):
                given, held = arguments.get(key), existing.raw_arguments.get(key)
                if freeze(given) != freeze(held):
                    raise QueuePreconditionFailed(
                        f"inequivalent arg '{key}' for queue '{name}' in vhost '{self.name}': "
                        f"received {_show(given)} but current is {_show(held)}"
                    )
            existing.touch()
            return existing
        if name.startswith("amq.") and not generated:
            raise QueueAccessRefused(f"queue name '{name}' contains reserved prefix 'amq.*'")
        return self._create_queue(
            name,
            durable=durable,
            exclusive_owner=owner if exclusive else None,
            auto_delete=auto_delete,
            arguments=arguments,
            persist=True,
        )

    def _queue_dir(self, name: str) -> Path:
        digest = hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        readable = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:48]
        return self.directory / "queues" / f"{readable}-{digest}"

    def _create_queue(
        self,
        name: str,
        *,
        durable: bool,
        exclusive_owner: object | None,
        auto_delete: bool,
        arguments: dict[str, Any],
        persist: bool,
    ) -> Queue:
        QueueArguments.parse(arguments)
        store = None
        messages: list[QueuedMessage] = []
        if durable and exclusive_owner is None:
            store = QueueStore(self._queue_dir(name), fsync=self.fsync)
            messages = store.open()
        queue = Queue(
            name,
            self,
            durable=durable,
            exclusive_owner=exclusive_owner,
            auto_delete=auto_delete,
            arguments=arguments,
            store=store,
        )
        if messages:
            queue.restore(messages)
        self.queues[name] = queue
        self.router.add_queue(name)
        if persist and store is not None:
            self.save_definitions()
        return queue

    def delete_queue(
        self, name: str, *, owner: object, if_unused: bool = False, if_empty: bool = False
    ) -> int:
        queue = self.queues.get(name)
        if queue is None:
            return 0
        self._check_owner(queue, owner)
        if if_unused and queue.consumers:
            raise QueuePreconditionFailed(f"queue '{name}' in vhost '{self.name}' in use")
        if if_empty and queue.ready_count:
            raise QueuePreconditionFailed(f"queue '{name}' in vhost '{self.name}' is not empty")
        count = queue.ready_count
        self._remove_queue(queue)
        return count

    def _remove_queue(self, queue: Queue) -> None:
        del self.queues[queue.name]
        durable = queue.store is not None
        had_durable_bindings = bool(self.router.bindings_of_queue(queue.name))
        self.router.remove_queue(queue.name)
        for consumer in queue.mark_deleted():
            consumer.channel.cancelled_by_queue(consumer)
        if queue.store is not None:
            self._dirty_journals.discard(queue.store)
            queue.store.delete()
        if durable or had_durable_bindings:
            self.save_definitions()

    def purge_queue(self, name: str, owner: object) -> int:
        return self.lookup(name, owner).purge()

    def bind_queue(
        self,
        queue: str,
        exchange: str,
        routing_key: str,
        arguments: Mapping[str, Any],
        owner: object,
    ) -> None:
        self._check_owner_of(queue, owner)
        self.router.bind_queue(queue, exchange, routing_key, arguments)
        if self._durable_destination(exchange, "exchange") and self._durable_destination(
            queue, "queue"
        ):
            self.save_definitions()

    def unbind_queue(
        self,
        queue: str,
        exchange: str,
        routing_key: str,
        arguments: Mapping[str, Any],
        owner: object,
    ) -> None:
        self._check_owner_of(queue, owner)
        self.router.unbind_queue(queue, exchange, routing_key, arguments)
        if self._durable_destination(queue, "queue"):
            self.save_definitions()

    def owner_gone(self, owner: object) -> None:
        """A connection closed: its exclusive queues go with it."""
        for queue in [q for q in self.queues.values() if q.exclusive_owner is owner]:
            self._remove_queue(queue)

    # -- publishing --------------------------------------------------------------------------------

    def enqueue(
        self, names: Collection[str], message: QueuedMessage
    ) -> tuple[bool, list[tuple[Log, int]]]:
        """Put ``message`` into each named queue: (refused by any, durability waits)."""
        refused = False
        waits: list[tuple[Log, int]] = []
        single = len(names) == 1
        queues = self.queues
        for name in names:
            queue = queues.get(name)
            if queue is None:
                continue
            result = queue.publish(message if single else message.copy())
            if result > 0:
                assert queue.store is not None and queue.store.log is not None
                waits.append((queue.store.log, result))
            elif result == REFUSED:
                refused = True
        return refused, waits

    def enqueue_one(
        self, queue: Queue, message: QueuedMessage
    ) -> tuple[bool, list[tuple[Log, int]]]:
        """``enqueue`` for one queue already looked up (the default exchange's publish)."""
        result = queue.publish(message)
        if result > 0:
            assert queue.store is not None and queue.store.log is not None
            return False, [(queue.store.log, result)]
        return result == REFUSED, []

    # -- dead-lettering ----------------------------------------------------------------------------

    def dead_letter(self, queue: Queue, message: QueuedMessage, reason: str) -> None:
        if not self._dead_letters:
            self.loop.call_soon(self._run_dead_letters)
        self._dead_letters.append((queue, message, reason))

    def _run_dead_letters(self) -> None:
        pending, self._dead_letters = self._dead_letters, []
        for queue, message, reason in pending:
            try:
                self._dead_letter_now(queue, message, reason)
            except Exception:
                logger.exception("dead-lettering from %r failed", queue.name)

    def _dead_letter_now(self, queue: Queue, message: QueuedMessage, reason: str) -> None:
        exchange = queue.args.dead_letter_exchange
        if exchange is None or exchange not in self.router.exchanges:
            return
        routing_key = queue.args.dead_letter_routing_key or message.routing_key
        properties, deaths = self.codec.dead_letter(
            message.properties,
            queue=queue.name,
            reason=reason,
            exchange=message.exchange,
            routing_keys=[message.routing_key],
            time_s=int(time.time()),
        )
        exchange_type = self.router.exchanges[exchange].type
        headers = self.codec.headers(properties) if exchange_type == "headers" else None
        try:
            targets = self.router.route(exchange, routing_key, headers)
        except Exception:
            return
        rejected = any(r == "rejected" for _, r in deaths)
        seen = {q for q, _ in deaths}
        if not rejected:
            targets = {t for t in targets if t not in seen}
        if not targets:
            return
        dead = QueuedMessage(
            exchange,
            routing_key,
            properties,
            message.body,
            persistent=message.persistent,
            timestamp=self.now_ms(),
            priority=message.priority,
        )
        self.enqueue(targets, dead)

    def memory_bytes(self) -> int:
        """An estimate of the memory the queues' messages take (the memory alarm's measure):
        body bytes plus ``MESSAGE_OVERHEAD`` per message held (ready or unacked)."""
        return sum(
            queue.ready_bytes + (queue.ready_count + queue.unacked_count) * MESSAGE_OVERHEAD
            for queue in self.queues.values()
        )

    # -- consumers ---------------------------------------------------------------------------------

    def consume(self, queue: Queue, consumer: Consumer) -> None:
        queue.add_consumer(consumer)
