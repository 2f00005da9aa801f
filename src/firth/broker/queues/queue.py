"""One queue's state: ready messages, unacknowledged ones, consumers, and the rules between.

Ready messages live in one sub-queue per priority level (one level without x-max-priority).
A level is a deque of fresh messages in arrival order plus a heap of requeued ones keyed by
``seq``; the next message of a level is the smaller of the two heads, so a requeued message
goes back to its place (RabbitMQ's behaviour) at O(log n). Levels drain highest first.

Dispatch (``dispatch``) hands ready messages to consumers that can take one: a consumer is
full when its own prefetch (basic.qos global=false) or its channel's (global=true) is reached,
or when its channel cannot write (backpressure). Consumers of the highest priority
(``x-priority``) that can take are served round-robin; with ``x-single-active-consumer`` only
the oldest consumer receives.

Expiry (x-message-ttl, per-message expiration) is decided at the head, as in RabbitMQ: when a
message reaches the head of its level (during dispatch, get, or the head-expiry timer) and its
time has passed, it is dead-lettered ("expired") or dropped. Length limits count ready
messages and body bytes; ``drop-head`` dead-letters from the head ("maxlen"),
``reject-publish`` refuses the new message (the publisher gets a nack) and
``reject-publish-dlx`` also dead-letters it. A message returned more often than
``x-delivery-limit`` is dead-lettered ("delivery_limit").

Everything here runs on the event loop thread; the queue asks its host (the virtual host) for
the clock, timers, dead-letter routing and its own deletion.
"""

from __future__ import annotations

import heapq
import logging
from collections import deque
from typing import Any, Protocol

from firth.broker.queues.arguments import QueueArguments
from firth.broker.queues.errors import QueueAccessRefused
from firth.broker.queues.message import QueuedMessage
from firth.broker.queues.store import DELIVERED, RETURNED, SETTLED, QueueStore
from firth.log import LogError

logger = logging.getLogger(__name__)

REFUSED = -1
"""``Queue.publish`` result: refused by a reject-publish overflow."""


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class QueueHost(Protocol):
    """What a queue needs from its virtual host."""

    def now_ms(self) -> int: ...

    def schedule(self, delay_s: float, callback: Any) -> TimerHandle: ...

    def dead_letter(self, queue: Queue, message: QueuedMessage, reason: str) -> None: ...

    def queue_unused(self, queue: Queue, reason: str) -> None: ...

    def journal_dirty(self, store: QueueStore) -> None: ...


class ConsumerChannel(Protocol):
    """The channel side of a consumer (the AMQP channel implements it)."""

    unacked_count: int
    global_prefetch: int

    @property
    def blocked(self) -> bool:
        """True while the connection cannot take more output (write backpressure)."""
        ...

    def deliver(self, consumer: Consumer, message: QueuedMessage) -> None: ...

    def cancelled_by_queue(self, consumer: Consumer) -> None: ...


class Consumer:
    __slots__ = (
        "channel",
        "exclusive",
        "no_ack",
        "prefetch",
        "priority",
        "queue",
        "tag",
        "unacked",
    )

    def __init__(
        self,
        tag: str,
        channel: ConsumerChannel,
        queue: Queue,
        *,
        no_ack: bool = False,
        prefetch: int = 0,
        priority: int = 0,
        exclusive: bool = False,
    ) -> None:
        self.tag = tag
        self.channel = channel
        self.queue = queue
        self.no_ack = no_ack
        self.prefetch = prefetch
        self.priority = priority
        self.exclusive = exclusive
        self.unacked = 0

    def can_take(self) -> bool:
        channel = self.channel
        if channel.blocked:
            return False
        if self.no_ack:
            return True
        if self.prefetch and self.unacked >= self.prefetch:
            return False
        return not (channel.global_prefetch and channel.unacked_count >= channel.global_prefetch)


class _Level:
    """Ready messages of one priority: fresh ones in a deque, requeued ones in a heap."""

    __slots__ = ("fresh", "requeued")

    def __init__(self) -> None:
        self.fresh: deque[QueuedMessage] = deque()
        self.requeued: list[tuple[int, QueuedMessage]] = []

    def head(self) -> QueuedMessage | None:
        fresh, requeued = self.fresh, self.requeued
        if requeued:
            if fresh and fresh[0].seq < requeued[0][0]:
                return fresh[0]
            return requeued[0][1]
        return fresh[0] if fresh else None

    def pop(self) -> QueuedMessage:
        fresh, requeued = self.fresh, self.requeued
        if requeued and (not fresh or requeued[0][0] < fresh[0].seq):
            return heapq.heappop(requeued)[1]
        return fresh.popleft()

    def __len__(self) -> int:
        return len(self.fresh) + len(self.requeued)


class Queue:
    """One queue (see the module docstring)."""

    def __init__(
        self,
        name: str,
        host: QueueHost,
        *,
        durable: bool = False,
        exclusive_owner: object | None = None,
        auto_delete: bool = False,
        arguments: dict[str, Any] | None = None,
        store: QueueStore | None = None,
    ) -> None:
        self.name = name
        self.host = host
        self.durable = durable
        self.exclusive_owner = exclusive_owner
        self.auto_delete = auto_delete
        self.raw_arguments = dict(arguments or {})
        self.args = QueueArguments.parse(arguments)
        self.store = store
        self.counts_deliveries = (
            self.args.delivery_limit is not None or self.args.queue_type == "quorum"
        )
        """Redeliveries carry x-delivery-count (quorum queues, or any with a delivery limit)."""
        self.levels = [_Level() for _ in range(self.args.max_priority + 1)]
        self._single = len(self.levels) == 1
        self._limited = self.args.max_length is not None or self.args.max_length_bytes is not None
        """A length limit applies (the arguments never change after declare)."""
        self._plain = self._single and not self._limited and self.args.message_ttl is None
        """No limit, no queue TTL, one priority level: ``publish`` takes its short path."""
        self.ready_count = 0
        self.ready_bytes = 0
        self._unacked: dict[int, QueuedMessage] = {}
        """Delivered, not yet settled, by seq (compaction rewrites them too)."""
        self.consumers: list[Consumer] = []
        self._had_consumers = False
        self._rr = 0
        self._next_seq = 0
        self._expiry_timer: TimerHandle | None = None
        self._expiry_at = -1
        self._expires_timer: TimerHandle | None = None
        self.last_used = host.now_ms()
        self.deleted = False
        self.published = 0
        self.delivered = 0
        self.acked = 0
        self.settled = 0
        """Counters: every message published here is ready, unacked or settled."""
        if self.args.expires is not None:
            self._schedule_unused_check(self.args.expires)

    # -- loading -----------------------------------------------------------------------------------

    def restore(self, messages: list[QueuedMessage]) -> None:
        """Put messages loaded from the store back as ready (in their stored order)."""
        for message in messages:
            self._enqueue(message)
        self._schedule_expiry()

    # -- publishing --------------------------------------------------------------------------------

    def publish(self, message: QueuedMessage) -> int:
        """Add a message; returns REFUSED, 0, or the log end offset to wait durable for."""
        if self._plain:  # the common queue: what the general path below does, inlined
            wait = 0
            store = self.store
            if store is not None and message.persistent:
                wait = store.append(message)
                self.host.journal_dirty(store)
            message.seq = self._next_seq
            self._next_seq += 1
            self.levels[0].fresh.append(message)
            self.ready_count += 1
            self.ready_bytes += len(message.body)
            self.published += 1
            if self.consumers:
                self.dispatch(message.timestamp)
            if message.expires_at >= 0:
                self._expire_heads(self.host.now_ms())
                self._schedule_expiry()
            return wait
        args = self.args
        if args.overflow != "drop-head" and (
            (args.max_length is not None and self.ready_count >= args.max_length)
            or (
                args.max_length_bytes is not None
                and self.ready_bytes + len(message.body) > args.max_length_bytes
            )
        ):
            if args.overflow == "reject-publish-dlx":
                self.host.dead_letter(self, message, "maxlen")
            return REFUSED
        if args.message_ttl is not None:
            expires_at = message.timestamp + args.message_ttl
            if message.expires_at < 0 or expires_at < message.expires_at:
                message.expires_at = expires_at
        wait = 0
        store = self.store
        if store is not None and message.persistent:
            wait = store.append(message)
            self.host.journal_dirty(store)
        self._enqueue(message)
        self.published += 1
        if self._limited:
            self._enforce_length()
        if self.consumers:
            self.dispatch(message.timestamp)
        if message.expires_at >= 0:
            self._expire_heads(self.host.now_ms())
            self._schedule_expiry()
        return wait

    def _enqueue(self, message: QueuedMessage) -> None:
        message.seq = self._next_seq
        self._next_seq += 1
        if self._single:
            self.levels[0].fresh.append(message)
        else:
            self.levels[min(message.priority, self.args.max_priority)].fresh.append(message)
        self.ready_count += 1
        self.ready_bytes += len(message.body)

    def _enforce_length(self) -> None:
        args = self.args
        while self.ready_count and (
            (args.max_length is not None and self.ready_count > args.max_length)
            or (args.max_length_bytes is not None and self.ready_bytes > args.max_length_bytes)
        ):
            message = self._pop_head()
            if message is None:
                break
            self._dead_letter_or_drop(message, "maxlen")

    # -- taking messages ---------------------------------------------------------------------------

    def _pop_head(self) -> QueuedMessage | None:
        """The next ready message regardless of expiry (highest level first)."""
        levels = self.levels
        if self._single:
            level = levels[0]
            if not len(level):
                return None
            message = level.pop()
        else:
            for level in reversed(levels):
                if len(level):
                    message = level.pop()
                    break
            else:
                return None
        self.ready_count -= 1
        self.ready_bytes -= len(message.body)
        return message

    def _pop_live(self, now_ms: int) -> QueuedMessage | None:
        """The next ready message that has not expired; expired heads are disposed of."""
        while True:
            message = self._pop_head()
            if message is None:
                return None
            expires_at = message.expires_at
            if expires_at < 0 or expires_at >= now_ms:
                return message
            self._dead_letter_or_drop(message, "expired")

    def dispatch(self, now_ms: int = -1) -> None:
        """Deliver ready messages to consumers that can take them.

        A message is live until the millisecond after its expiry time, so that a message with
        TTL 0 reaches a consumer waiting when it is published (``now_ms`` is then its
        publish time).
        """
        if not self.consumers or not self.ready_count or self.deleted:
            return
        if now_ms < 0:
            now_ms = self.host.now_ms()
        store = self.store
        while self.ready_count:
            consumer = self._pick()
            if consumer is None:
                break
            message = self._pop_live(now_ms)
            if message is None:
                break
            self.delivered += 1
            if consumer.no_ack:
                consumer.channel.deliver(consumer, message)
                self._settle(message)
            else:
                self._unacked[message.seq] = message
                consumer.unacked += 1
                if store is not None and message.offset >= 0:
                    store.note(DELIVERED, message)
                    self.host.journal_dirty(store)
                consumer.channel.deliver(consumer, message)
        if self._expiry_timer is None and self.ready_count:
            self._schedule_expiry()

    def _pick(self) -> Consumer | None:
        consumers = self.consumers
        if self.args.single_active_consumer:
            first = consumers[0]
            return first if first.can_take() else None
        count = len(consumers)
        top = consumers[0].priority
        if consumers[-1].priority == top:
            start = self._rr
            for step in range(count):
                index = (start + step) % count
                consumer = consumers[index]
                if consumer.can_take():
                    self._rr = index + 1
                    return consumer
            return None
        # consumers are sorted by priority, highest first: serve the first group with room
        index = 0
        while index < count:
            priority = consumers[index].priority
            end = index
            while end < count and consumers[end].priority == priority:
                end += 1
            size = end - index
            for step in range(size):
                position = index + (self._rr + step) % size
                consumer = consumers[position]
                if consumer.can_take():
                    self._rr = (self._rr + step + 1) % size
                    return consumer
            index = end
        return None

    def get(self, no_ack: bool) -> QueuedMessage | None:
        """basic.get: the next live message, or None."""
        self.touch()
        message = self._pop_live(self.host.now_ms())
        if message is None:
            return None
        self.delivered += 1
        if no_ack:
            self._settle(message)
        else:
            self._unacked[message.seq] = message
            store = self.store
            if store is not None and message.offset >= 0:
                store.note(DELIVERED, message)
                self.host.journal_dirty(store)
        return message

    # -- settling ----------------------------------------------------------------------------------

    def ack(self, message: QueuedMessage) -> None:
        self._unacked.pop(message.seq, None)
        self.acked += 1
        self._settle(message)

    def reject(self, message: QueuedMessage, requeue: bool) -> None:
        """nack/reject/recover/channel close of an unacked message."""
        self._unacked.pop(message.seq, None)
        if self.deleted:
            return
        if not requeue:
            self._dead_letter_or_drop(message, "rejected")
            return
        message.returns += 1
        limit = self.args.delivery_limit
        if limit is not None and message.returns > limit:
            self._dead_letter_or_drop(message, "delivery_limit")
            return
        message.redelivered = True
        store = self.store
        if store is not None and message.offset >= 0:
            store.note(RETURNED, message)
            self.host.journal_dirty(store)
        level = self.levels[0 if self._single else min(message.priority, self.args.max_priority)]
        heapq.heappush(level.requeued, (message.seq, message))
        self.ready_count += 1
        self.ready_bytes += len(message.body)

    def _dead_letter_or_drop(self, message: QueuedMessage, reason: str) -> None:
        if self.args.dead_letter_exchange is not None:
            self.host.dead_letter(self, message, reason)
        self._settle(message)

    def _settle(self, message: QueuedMessage) -> None:
        self.settled += 1
        store = self.store
        if store is not None and message.offset >= 0 and not self.deleted:
            store.note(SETTLED, message)
            self.host.journal_dirty(store)
            if store.wants_compaction():
                try:
                    store.compact(self._stored_live(), frozenset(self._unacked))
                except (OSError, LogError) as error:
                    # Reclaiming space failed (a full disk, an I/O error): the store goes on
                    # with the generation it has, the settle stands, and a later check
                    # tries again. Failing the settle would fail the ack, and its connection.
                    logger.warning("compaction of queue %r failed: %s", self.name, error)

    def _stored_live(self) -> list[QueuedMessage]:
        """Every unsettled message (ready and unacked) that is in the store."""
        live = [m for m in self._unacked.values() if m.offset >= 0]
        for level in self.levels:
            live.extend(m for m in level.fresh if m.offset >= 0)
            live.extend(m for _, m in level.requeued if m.offset >= 0)
        return live

    # -- expiry ------------------------------------------------------------------------------------

    def _expire_heads(self, now_ms: int) -> None:
        for level in self.levels:
            while True:
                head = level.head()
                if head is None or head.expires_at < 0 or head.expires_at >= now_ms:
                    break
                level.pop()
                self.ready_count -= 1
                self.ready_bytes -= len(head.body)
                self._dead_letter_or_drop(head, "expired")

    def _schedule_expiry(self) -> None:
        earliest = -1
        for level in self.levels:
            head = level.head()
            if (
                head is not None
                and head.expires_at >= 0
                and (earliest < 0 or head.expires_at < earliest)
            ):
                earliest = head.expires_at
        if earliest < 0:
            return
        if self._expiry_timer is not None:
            if self._expiry_at <= earliest:
                return
            self._expiry_timer.cancel()
        self._expiry_at = earliest
        delay = max(0.0, (earliest - self.host.now_ms()) / 1000) + 0.001
        self._expiry_timer = self.host.schedule(delay, self._on_expiry_timer)

    def _on_expiry_timer(self) -> None:
        self._expiry_timer = None
        self._expiry_at = -1
        if self.deleted:
            return
        self._expire_heads(self.host.now_ms())
        self._schedule_expiry()

    # -- x-expires ---------------------------------------------------------------------------------

    def touch(self) -> None:
        """The queue was used (declare, get, consume): restart its x-expires clock."""
        self.last_used = self.host.now_ms()

    def _schedule_unused_check(self, delay_ms: int) -> None:
        self._expires_timer = self.host.schedule(delay_ms / 1000, self._on_unused_check)

    def _on_unused_check(self) -> None:
        self._expires_timer = None
        expires = self.args.expires
        if self.deleted or expires is None:
            return
        if self.consumers:
            self._schedule_unused_check(expires)
            return
        idle = self.host.now_ms() - self.last_used
        if idle >= expires:
            self.host.queue_unused(self, "expired")
        else:
            self._schedule_unused_check(expires - idle)

    # -- consumers ---------------------------------------------------------------------------------

    def add_consumer(self, consumer: Consumer) -> None:
        if consumer.exclusive and self.consumers:
            raise QueueAccessRefused(
                f"queue '{self.name}' in vhost '/' has consumers; cannot consume exclusively"
            )
        if self.consumers and self.consumers[0].exclusive:
            raise QueueAccessRefused(f"queue '{self.name}' in vhost '/' has an exclusive consumer")
        consumers = self.consumers
        index = len(consumers)
        while index > 0 and consumers[index - 1].priority < consumer.priority:
            index -= 1
        consumers.insert(index, consumer)
        self._had_consumers = True
        self.touch()
        self.dispatch()

    def remove_consumer(self, consumer: Consumer) -> None:
        try:
            self.consumers.remove(consumer)
        except ValueError:
            return
        self.touch()
        if self.consumers:
            self.dispatch()
        elif self.auto_delete and self._had_consumers and not self.deleted:
            self.host.queue_unused(self, "auto_delete")

    # -- whole-queue operations --------------------------------------------------------------------

    def purge(self) -> int:
        """Drop every ready message (unacked ones stay); returns how many."""
        count = 0
        while (message := self._pop_head()) is not None:
            self._settle(message)
            count += 1
        return count

    def close(self) -> None:
        """Stop timers (broker shutdown); the store is closed by the owner."""
        for timer in (self._expiry_timer, self._expires_timer):
            if timer is not None:
                timer.cancel()
        self._expiry_timer = self._expires_timer = None

    def mark_deleted(self) -> list[Consumer]:
        """The queue is gone: stop timers; returns its consumers (to be told)."""
        self.deleted = True
        self.close()
        consumers, self.consumers = self.consumers, []
        return consumers

    @property
    def unacked_count(self) -> int:
        return len(self._unacked)

    @property
    def message_count(self) -> int:
        return self.ready_count

    @property
    def consumer_count(self) -> int:
        return len(self.consumers)
