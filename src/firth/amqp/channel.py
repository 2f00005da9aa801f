"""One AMQP channel's broker-side state and the handlers of every channel method.

``Channel`` holds what RabbitMQ keeps per channel: consumers by tag, unacknowledged
deliveries by delivery tag (insertion-ordered, so ``multiple`` walks from the oldest), the
prefetch limits (basic.qos: ``global=false`` sets the limit of consumers created afterwards,
``global=true`` the channel's), the confirm mode and its pending confirms, the transaction
buffer, and the direct reply-to consumer. It implements the queue core's ``ConsumerChannel``.

``HANDLERS`` maps each method class to its handler; ``firth.amqp.server`` dispatches through
it. A handler raises ``AmqpChannelError``/``AmqpConnectionError`` (or a core error, which
``dispatch`` maps with ``amqp_error_for``), and the server closes the channel or connection.

Publisher confirms: each publish in confirm mode gets the next sequence number. A message is
confirmed once every durable queue that stored it has fsynced past it (the group commit's
futures); routed-to-nothing and transient messages are confirmed at once. Confirms go out in
order, one ``basic.ack multiple=true`` per run (``flush_confirms`` at the end of each batch of
input); a publish refused by a ``reject-publish`` queue is nacked.

Transactions buffer publishes and acks/nacks/rejects until commit; commit applies them in order
and answers commit-ok once the published messages are durable. Reading from the socket pauses
meanwhile, so later methods cannot overtake the commit-ok.
"""

from __future__ import annotations

import base64
import functools
import os
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from firth.amqp.codec import (
    LazyHeaders,
    PublishInfo,
    scan_publish,
    with_header,
    with_reply_to,
)
from firth.amqp.errors import amqp_error_for
from firth.amqp.protocol import (
    AmqpChannelError,
    AmqpConnectionError,
    Message,
    ReplyCode,
    Typed,
)
from firth.amqp.protocol import methods as m
from firth.broker.exchanges import RoutingError
from firth.broker.queues import Consumer, Queue, QueuedMessage
from firth.broker.queues.arguments import consumer_priority

if TYPE_CHECKING:
    import asyncio

    from firth.amqp.server import AmqpProtocol

REPLY_TO = "amq.rabbitmq.reply-to"
REPLY_TO_PREFIX = REPLY_TO + "."

_WAITING, _ACK, _NACK = 0, 1, 2


def _random_tag(prefix: str) -> str:
    return prefix + base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")


class Channel:
    """Broker-side state of one open channel (see the module docstring)."""

    def __init__(self, protocol: AmqpProtocol, number: int) -> None:
        self.protocol = protocol
        self.number = number
        self.vhost = protocol.server.vhost
        self.conn = protocol.conn
        self.consumers: dict[str, Consumer] = {}
        self.unacked: dict[int, tuple[Queue, QueuedMessage, Consumer | None]] = {}
        self.unacked_count = 0
        self.next_tag = 1
        self.prefetch = 0
        self.global_prefetch = 0
        self.flow_active = True
        self.closed = False
        # confirms
        self.confirming = False
        self._confirm_seq = 0
        self._pending: deque[list[int]] = deque()
        """[seq, state, outstanding] per unconfirmed publish, in order."""
        self._confirm_dirty = False
        self._durable_groups: dict[Any, list[Any]] = {}
        """log → [highest end offset, confirm entries] of this batch, registered at its end."""
        # transactions
        self.tx: list[tuple[str, Any]] | None = None
        # direct reply-to
        self.reply_suffix: str | None = None
        self.reply_consumer: str | None = None

    # -- ConsumerChannel ---------------------------------------------------------------------------

    @property
    def blocked(self) -> bool:
        return self.protocol.writing_paused or not self.flow_active or self.closed

    def deliver(self, consumer: Consumer, message: QueuedMessage) -> None:
        tag = self.next_tag
        self.next_tag = tag + 1
        queue = consumer.queue
        if not consumer.no_ack:
            self.unacked[tag] = (queue, message, consumer)
            self.unacked_count += 1
        properties = message.properties
        if message.returns and queue.counts_deliveries:
            properties = with_header(properties, "x-delivery-count", Typed("l", message.returns))
        self.conn.send_deliver(
            self.number,
            consumer.tag,
            tag,
            message.redelivered,
            message.exchange,
            message.routing_key,
            properties,
            message.body,
        )
        self.protocol.request_flush()

    def cancelled_by_queue(self, consumer: Consumer) -> None:
        if self.consumers.pop(consumer.tag, None) is None or self.closed:
            return
        if self.protocol.cancel_notify:
            self.conn.send_method(self.number, m.BasicCancel(consumer.tag, True))
            self.protocol.request_flush()

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        """The channel is gone: cancel its consumers and requeue what it had unacked."""
        if self.closed:
            return
        self.closed = True
        for consumer in list(self.consumers.values()):
            consumer.queue.remove_consumer(consumer)
        self.consumers.clear()
        if self.reply_suffix is not None:
            self.vhost.reply_targets.pop(self.reply_suffix, None)
        self._requeue_all()

    def _requeue_all(self) -> None:
        entries = list(self.unacked.values())
        self.unacked.clear()
        self.unacked_count = 0
        touched: set[Queue] = set()
        for queue, message, consumer in entries:
            if consumer is not None:
                consumer.unacked -= 1
            queue.reject(message, True)
            touched.add(queue)
        for queue in touched:
            queue.dispatch()

    def resume(self) -> None:
        """Output drained (or flow re-enabled): let the queues we consume from deliver."""
        for queue in {c.queue for c in self.consumers.values()}:
            queue.dispatch()

    # -- helpers -----------------------------------------------------------------------------------

    def _error(
        self, code: ReplyCode, text: str, method: m.Method | None = None
    ) -> AmqpChannelError:
        return AmqpChannelError(
            code,
            text,
            method.CLASS_ID if method else 0,
            method.METHOD_ID if method else 0,
            channel=self.number,
        )

    def _send(self, method: m.Method) -> None:
        self.conn.send_method(self.number, method)

    @property
    def owner(self) -> object:
        return self.protocol

    # -- exchange class ----------------------------------------------------------------------------

    def exchange_declare(self, method: m.ExchangeDeclare) -> None:
        self.vhost.declare_exchange(
            method.exchange,
            method.type,
            durable=method.durable,
            auto_delete=method.auto_delete,
            internal=method.internal,
            arguments=method.arguments,
            passive=method.passive,
        )
        if not method.nowait:
            self._send(m.ExchangeDeclareOk())

    def exchange_delete(self, method: m.ExchangeDelete) -> None:
        self.vhost.delete_exchange(method.exchange, if_unused=method.if_unused)
        if not method.nowait:
            self._send(m.ExchangeDeleteOk())

    def exchange_bind(self, method: m.ExchangeBind) -> None:
        self.vhost.bind_exchange(
            method.destination, method.source, method.routing_key, method.arguments
        )
        if not method.nowait:
            self._send(m.ExchangeBindOk())

    def exchange_unbind(self, method: m.ExchangeUnbind) -> None:
        self.vhost.unbind_exchange(
            method.destination, method.source, method.routing_key, method.arguments
        )
        if not method.nowait:
            self._send(m.ExchangeUnbindOk())

    # -- queue class -------------------------------------------------------------------------------

    def queue_declare(self, method: m.QueueDeclare) -> None:
        queue = self.vhost.declare_queue(
            method.queue,
            owner=self.owner,
            durable=method.durable,
            exclusive=method.exclusive,
            auto_delete=method.auto_delete,
            arguments=method.arguments,
            passive=method.passive,
        )
        if not method.nowait:
            self._send(m.QueueDeclareOk(queue.name, queue.message_count, queue.consumer_count))

    def queue_bind(self, method: m.QueueBind) -> None:
        self.vhost.bind_queue(
            method.queue, method.exchange, method.routing_key, method.arguments, self.owner
        )
        if not method.nowait:
            self._send(m.QueueBindOk())

    def queue_unbind(self, method: m.QueueUnbind) -> None:
        self.vhost.unbind_queue(
            method.queue, method.exchange, method.routing_key, method.arguments, self.owner
        )
        self._send(m.QueueUnbindOk())

    def queue_purge(self, method: m.QueuePurge) -> None:
        count = self.vhost.purge_queue(method.queue, self.owner)
        if not method.nowait:
            self._send(m.QueuePurgeOk(count))

    def queue_delete(self, method: m.QueueDelete) -> None:
        count = self.vhost.delete_queue(
            method.queue,
            owner=self.owner,
            if_unused=method.if_unused,
            if_empty=method.if_empty,
        )
        if not method.nowait:
            self._send(m.QueueDeleteOk(count))

    # -- basic: consumers --------------------------------------------------------------------------

    def basic_qos(self, method: m.BasicQos) -> None:
        if method.prefetch_size:
            raise AmqpConnectionError(
                ReplyCode.NOT_IMPLEMENTED,
                f"prefetch_size!=0 ({method.prefetch_size})",
                method.CLASS_ID,
                method.METHOD_ID,
            )
        if method.global_:
            self.global_prefetch = method.prefetch_count
        else:
            self.prefetch = method.prefetch_count
        self._send(m.BasicQosOk())
        self.resume()

    def basic_consume(self, method: m.BasicConsume) -> None:
        tag = method.consumer_tag or _random_tag("amq.ctag-")
        if tag in self.consumers or tag == self.reply_consumer:
            raise AmqpConnectionError(
                ReplyCode.NOT_ALLOWED,
                f"attempt to reuse consumer tag '{tag}'",
                method.CLASS_ID,
                method.METHOD_ID,
            )
        if method.queue == REPLY_TO:
            if not method.no_ack:
                raise self._error(
                    ReplyCode.PRECONDITION_FAILED,
                    "reply consumer cannot acknowledge",
                    method,
                )
            if self.reply_consumer is not None:
                raise self._error(
                    ReplyCode.PRECONDITION_FAILED, "reply consumer already set", method
                )
            self.reply_consumer = tag
            self.reply_suffix = _random_tag("")
            self.vhost.reply_targets[self.reply_suffix] = self._reply_deliver
            if not method.nowait:
                self._send(m.BasicConsumeOk(tag))
            return
        queue = self.vhost.lookup(method.queue, self.owner)
        consumer = Consumer(
            tag,
            self,
            queue,
            no_ack=method.no_ack,
            prefetch=self.prefetch,
            priority=consumer_priority(method.arguments),
            exclusive=method.exclusive,
        )
        queue.touch()
        if queue.consumers and (method.exclusive or queue.consumers[0].exclusive):
            raise self._error(
                ReplyCode.ACCESS_REFUSED,
                f"queue '{queue.name}' in vhost '/' in exclusive use",
                method,
            )
        self.consumers[tag] = consumer
        if not method.nowait:
            self._send(m.BasicConsumeOk(tag))
        queue.add_consumer(consumer)

    def _reply_deliver(self, exchange: str, routing_key: str, props: bytes, body: bytes) -> None:
        if self.closed or self.reply_consumer is None:
            return
        tag = self.next_tag
        self.next_tag = tag + 1
        self.conn.send_deliver(
            self.number, self.reply_consumer, tag, False, exchange, routing_key, props, body
        )
        self.protocol.request_flush()

    def basic_cancel(self, method: m.BasicCancel) -> None:
        tag = method.consumer_tag
        consumer = self.consumers.pop(tag, None)
        if consumer is not None:
            consumer.queue.remove_consumer(consumer)
        elif tag == self.reply_consumer:
            self.reply_consumer = None
            if self.reply_suffix is not None:
                self.vhost.reply_targets.pop(self.reply_suffix, None)
                self.reply_suffix = None
        if not method.nowait:
            self._send(m.BasicCancelOk(tag))

    # -- basic: publish ----------------------------------------------------------------------------

    def basic_publish(self, message: Message) -> None:
        method = message.method
        assert isinstance(method, m.BasicPublish)
        self.publish(
            method.exchange,
            method.routing_key,
            method.mandatory | (method.immediate << 1),
            message.header.properties_bytes,
            message.body,
        )

    def publish(
        self, exchange: str, routing_key: str, bits: int, props: bytes, body: bytes
    ) -> None:
        """basic.publish: ``bits`` has mandatory in bit 0, immediate in bit 1; ``props`` are
        the content header's flags and properties as sent. The connection's publish sink for
        this channel (single-frame messages, parsed in place), and ``basic_publish`` for the
        rest."""
        if bits & 2:
            raise AmqpConnectionError(ReplyCode.NOT_IMPLEMENTED, "immediate=true", 60, 40)
        try:
            info = scan_publish(props)
        except (IndexError, ValueError) as error:
            raise AmqpConnectionError(
                ReplyCode.SYNTAX_ERROR, f"malformed content header: {error}", 60, 40
            ) from None
        now = time.time_ns() // 1_000_000
        expires_at = -1
        if not info.plain:
            if info.user_id is not None and info.user_id != self.conn.username:
                raise self._publish_error(
                    f"user_id property set to '{info.user_id}' but authenticated user was "
                    f"'{self.conn.username}'"
                )
            if info.expiration is not None:
                text = info.expiration
                if not text.isdigit():
                    raise self._publish_error(
                        f"invalid expiration '{text}': must be a non-negative integer (ms)"
                    )
                expires_at = now + int(text)
            if info.reply_to == REPLY_TO:
                if self.reply_suffix is None:
                    raise self._publish_error("fast reply consumer does not exist")
                props = with_reply_to(props, REPLY_TO_PREFIX + self.reply_suffix)
        self.protocol.published = True
        if self.tx is not None:
            self.tx.append(
                ("publish", (exchange, routing_key, bits, props, body, info, now, expires_at))
            )
            return
        self._publish(exchange, routing_key, bits, props, body, info, now, expires_at, None)

    def _publish_error(self, text: str) -> AmqpChannelError:
        return AmqpChannelError(ReplyCode.PRECONDITION_FAILED, text, 60, 40, channel=self.number)

    def _publish(
        self,
        exchange: str,
        routing_key: str,
        bits: int,
        props: bytes,
        body: bytes,
        info: PublishInfo,
        now: int,
        expires_at: int,
        waits_out: list[Any] | None,
    ) -> None:
        vhost = self.vhost
        if exchange:
            try:
                names = vhost.router.route(exchange, routing_key, LazyHeaders(props))
            except RoutingError as error:
                raise amqp_error_for(
                    error, channel=self.number, class_id=60, method_id=40
                ) from None
            if not names:
                self._unroutable(exchange, routing_key, bits, props, body)
                return
            queue = None
        else:  # the default exchange: the queue of that name, or the reply-to pseudo-queue
            queue = vhost.queues.get(routing_key)
            if queue is None:
                if routing_key.startswith(REPLY_TO_PREFIX):
                    target = vhost.reply_targets.get(routing_key[len(REPLY_TO_PREFIX) :])
                    if target is not None:
                        target(exchange, routing_key, props, body)
                        self._confirm_now(_ACK)
                        return
                self._unroutable(exchange, routing_key, bits, props, body)
                return
        message = QueuedMessage(
            exchange,
            routing_key,
            props,
            body,
            info.delivery_mode == 2,
            now,
            expires_at,
            info.priority,
        )
        if queue is None:  # routed by an exchange to ``names``
            refused, waits = vhost.enqueue(names, message)
        else:
            refused, waits = vhost.enqueue_one(queue, message)
        if waits_out is not None:
            waits_out.extend(waits)
        if not self.confirming:
            return
        if refused:
            self._confirm_now(_NACK)
        elif not waits:
            self._confirm_now(_ACK)
        else:
            self._confirm_later(waits)

    def _unroutable(
        self, exchange: str, routing_key: str, bits: int, props: bytes, body: bytes
    ) -> None:
        if bits & 1:
            self._return(exchange, routing_key, props, body)
        self._confirm_now(_ACK)

    def _return(self, exchange: str, routing_key: str, props: bytes, body: bytes) -> None:
        self.conn.send_content(
            self.number,
            m.BasicReturn(312, "NO_ROUTE", exchange, routing_key),
            props,
            body,
        )

    # -- confirms ----------------------------------------------------------------------------------

    def confirm_select(self, method: m.ConfirmSelect) -> None:
        if self.tx is not None:
            raise self._error(
                ReplyCode.PRECONDITION_FAILED,
                "cannot switch from tx to confirm mode",
                method,
            )
        self.confirming = True
        if not method.nowait:
            self._send(m.ConfirmSelectOk())

    def _confirm_now(self, state: int) -> None:
        if not self.confirming:
            return
        self._confirm_seq += 1
        self._pending.append([self._confirm_seq, state, 0])
        self._mark_confirms()

    def _confirm_later(self, waits: list[Any]) -> None:
        self._confirm_seq += 1
        entry = [self._confirm_seq, _WAITING, len(waits)]
        self._pending.append(entry)
        groups = self._durable_groups
        for log, end in waits:
            group = groups.get(log)
            if group is None:
                groups[log] = [end, [entry]]
            else:
                if end > group[0]:
                    group[0] = end
                group[1].append(entry)
        self._mark_confirms()

    def _register_durable_waits(self) -> None:
        """One group-commit future per log for all of this batch's confirms waiting on it."""
        groups, self._durable_groups = self._durable_groups, {}
        group_commit = self.protocol.server.group_commit
        for log, (end, entries) in groups.items():
            future = group_commit.durable_future(log, end) if group_commit else None
            if future is None:
                self._durable_entries(entries, failed=False)
            else:
                future.add_done_callback(functools.partial(self._durable, entries))

    def _durable(self, entries: list[list[int]], future: asyncio.Future[None]) -> None:
        failed = future.cancelled() or future.exception() is not None
        self._durable_entries(entries, failed)
        if not self.closed:
            self.flush_confirms()
            self.protocol.request_flush()

    @staticmethod
    def _durable_entries(entries: list[list[int]], failed: bool) -> None:
        for entry in entries:
            if failed:
                entry[1] = _NACK
            entry[2] -= 1
            if entry[2] <= 0 and entry[1] == _WAITING:
                entry[1] = _ACK

    def _mark_confirms(self) -> None:
        if not self._confirm_dirty:
            self._confirm_dirty = True
            self.protocol.dirty_channels.add(self)

    def flush_confirms(self) -> None:
        self._confirm_dirty = False
        if self._durable_groups:
            self._register_durable_waits()
        pending = self._pending
        ack_upto = 0
        while pending and pending[0][1] != _WAITING:
            seq, state, _ = pending.popleft()
            if state == _ACK:
                ack_upto = seq
            else:
                if ack_upto:
                    self._send(m.BasicAck(ack_upto, True))
                    ack_upto = 0
                self._send(m.BasicNack(seq, False, False))
        if ack_upto:
            self._send(m.BasicAck(ack_upto, True))

    # -- basic: get and settle ---------------------------------------------------------------------

    def basic_get(self, method: m.BasicGet) -> None:
        queue = self.vhost.lookup(method.queue, self.owner)
        message = queue.get(method.no_ack)
        if message is None:
            self._send(m.BasicGetEmpty())
            return
        tag = self.next_tag
        self.next_tag = tag + 1
        if not method.no_ack:
            self.unacked[tag] = (queue, message, None)
            self.unacked_count += 1
        properties = message.properties
        if message.returns and queue.counts_deliveries:
            properties = with_header(properties, "x-delivery-count", Typed("l", message.returns))
        self.conn.send_content(
            self.number,
            m.BasicGetOk(
                tag, message.redelivered, message.exchange, message.routing_key, queue.ready_count
            ),
            properties,
            message.body,
        )

    def _take(
        self, tag: int, multiple: bool, method: m.Method
    ) -> list[tuple[Queue, QueuedMessage]]:
        unacked = self.unacked
        taken: list[tuple[Queue, QueuedMessage]] = []
        if multiple:
            if tag == 0:
                keys = list(unacked)
            else:
                keys = []
                for key in unacked:
                    if key > tag:
                        break
                    keys.append(key)
            known = not tag or bool(keys) or tag in unacked
        else:
            known = tag in unacked
            keys = [tag]
        if not known:
            raise self._error(ReplyCode.PRECONDITION_FAILED, f"unknown delivery tag {tag}", method)
        for key in keys:
            queue, message, consumer = unacked.pop(key)
            if consumer is not None:
                consumer.unacked -= 1
            taken.append((queue, message))
        self.unacked_count -= len(keys)
        return taken

    def _settle(self, kind: str, method: Any) -> None:
        if kind == "ack":
            taken = self._take(method.delivery_tag, method.multiple, method)
            for queue, message in taken:
                queue.ack(message)
        else:
            multiple = method.multiple if kind == "nack" else False
            taken = self._take(method.delivery_tag, multiple, method)
            for queue, message in taken:
                queue.reject(message, method.requeue)
        if self.global_prefetch:
            self.resume()
        else:
            for queue in {queue for queue, _ in taken}:
                queue.dispatch()

    def basic_ack(self, method: m.BasicAck) -> None:
        self._settle_or_hold("ack", method, method.multiple)

    def basic_nack(self, method: m.BasicNack) -> None:
        self._settle_or_hold("nack", method, method.multiple)

    def basic_reject(self, method: m.BasicReject) -> None:
        self._settle_or_hold("reject", method, False)

    def _settle_or_hold(self, kind: str, method: Any, multiple: bool) -> None:
        """Settle now or, in a transaction, check the tag now and settle at commit."""
        if self.tx is not None:
            self._check_tag(method.delivery_tag, multiple, method)
            self.tx.append((kind, method))
            return
        self._settle(kind, method)

    def _check_tag(self, tag: int, multiple: bool, method: m.Method) -> None:
        if not (multiple and tag == 0) and tag not in self.unacked:
            raise self._error(ReplyCode.PRECONDITION_FAILED, f"unknown delivery tag {tag}", method)

    def basic_recover(self, method: m.BasicRecover | m.BasicRecoverAsync) -> None:
        self._requeue_all()
        if isinstance(method, m.BasicRecover):
            self._send(m.BasicRecoverOk())

    # -- channel.flow ------------------------------------------------------------------------------

    def channel_flow(self, method: m.ChannelFlow) -> None:
        self.flow_active = method.active
        self._send(m.ChannelFlowOk(method.active))
        if method.active:
            self.resume()

    # -- tx ----------------------------------------------------------------------------------------

    def tx_select(self, method: m.TxSelect) -> None:
        if self.confirming:
            raise self._error(
                ReplyCode.PRECONDITION_FAILED, "cannot switch from confirm to tx mode", method
            )
        if self.tx is None:
            self.tx = []
        self._send(m.TxSelectOk())

    def _require_tx(self, method: m.Method) -> list[tuple[str, Any]]:
        if self.tx is None:
            raise self._error(ReplyCode.PRECONDITION_FAILED, "channel is not transactional", method)
        return self.tx

    def tx_commit(self, method: m.TxCommit) -> None:
        actions = self._require_tx(method)
        self.tx = []
        waits: list[Any] = []
        for kind, payload in actions:
            if kind == "publish":
                exchange, routing_key, bits, props, body, info, now, expires_at = payload
                self._publish(
                    exchange, routing_key, bits, props, body, info, now, expires_at, waits
                )
            else:
                self._settle(kind, payload)
        group_commit = self.protocol.server.group_commit
        futures = [
            f
            for log, end in waits
            if group_commit is not None and (f := group_commit.durable_future(log, end)) is not None
        ]
        if not futures:
            self._send(m.TxCommitOk())
            return
        self.protocol.hold()
        remaining = [len(futures)]

        def done(_future: asyncio.Future[None]) -> None:
            remaining[0] -= 1
            if remaining[0] == 0:
                if not self.closed:
                    self._send(m.TxCommitOk())
                self.protocol.release()

        for future in futures:
            future.add_done_callback(done)

    def tx_rollback(self, method: m.TxRollback) -> None:
        self._require_tx(method)
        self.tx = []
        self._send(m.TxRollbackOk())


Handler = Callable[[Channel, Any], None]

HANDLERS: dict[type[m.Method], Handler] = {
    m.ExchangeDeclare: Channel.exchange_declare,
    m.ExchangeDelete: Channel.exchange_delete,
    m.ExchangeBind: Channel.exchange_bind,
    m.ExchangeUnbind: Channel.exchange_unbind,
    m.QueueDeclare: Channel.queue_declare,
    m.QueueBind: Channel.queue_bind,
    m.QueueUnbind: Channel.queue_unbind,
    m.QueuePurge: Channel.queue_purge,
    m.QueueDelete: Channel.queue_delete,
    m.BasicQos: Channel.basic_qos,
    m.BasicConsume: Channel.basic_consume,
    m.BasicCancel: Channel.basic_cancel,
    m.BasicPublish: Channel.basic_publish,
    m.BasicGet: Channel.basic_get,
    m.BasicAck: Channel.basic_ack,
    m.BasicNack: Channel.basic_nack,
    m.BasicReject: Channel.basic_reject,
    m.BasicRecover: Channel.basic_recover,
    m.BasicRecoverAsync: Channel.basic_recover,
    m.ChannelFlow: Channel.channel_flow,
    m.ConfirmSelect: Channel.confirm_select,
    m.TxSelect: Channel.tx_select,
    m.TxCommit: Channel.tx_commit,
    m.TxRollback: Channel.tx_rollback,
}
"""Method class → handler, for methods on an open channel."""
