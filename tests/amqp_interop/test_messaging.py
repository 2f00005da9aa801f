"""Messaging over pika (blocking): mandatory and basic.return, consume and cancel, the consumer
cancel notification, basic.get, ack/nack/reject (multiple, requeue, place kept), basic.qos per
consumer and per channel, basic.recover, publisher confirms and transactions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
import pika.spec
import pytest

from tests.amqp_interop.helpers import Channel, drain, get, message_count, pump_until, wait_for

pytestmark = pytest.mark.timeout(60)

Name = Callable[[str], str]
Connect = Callable[[], pika.BlockingConnection]
Delivery = tuple[pika.spec.Basic.Deliver, pika.spec.BasicProperties, bytes]


def filled(channel: Channel, queue: str, *bodies: bytes) -> str:
    """Declare ``queue`` and publish ``bodies`` to it with confirms (so they are all there)."""
    channel.queue_declare(queue)
    confirmer = channel.connection.channel()
    confirmer.confirm_delivery()
    for body in bodies:
        confirmer.basic_publish("", queue, body)
    confirmer.close()
    return queue


class Collector:
    """A basic.consume callback that keeps every delivery."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []

    def __call__(self, _channel: Any, method: Any, properties: Any, body: bytes) -> None:
        self.deliveries.append((method, properties, body))

    @property
    def bodies(self) -> list[bytes]:
        return [body for _, _, body in self.deliveries]


# --- publish ----------------------------------------------------------------------------------


def test_mandatory_unroutable_message_is_returned(channel: Channel, name: Name) -> None:
    exchange = name("x")
    channel.exchange_declare(exchange, "direct")
    returned: list[tuple[Any, Any, bytes]] = []
    channel.add_on_return_callback(
        lambda _ch, method, props, body: returned.append((method, props, body))
    )
    channel.basic_publish(
        exchange, "nowhere", b"lost", pika.BasicProperties(message_id="m-1"), mandatory=True
    )
    channel.basic_publish(exchange, "nowhere", b"dropped-silently")  # not mandatory: no return
    pump_until(channel.connection, lambda: returned, what="basic.return")
    channel.queue_declare(name("sync"))  # a round trip: a second return would have come by now
    channel.connection.process_data_events(0)
    [(method, properties, body)] = returned
    assert (method.reply_code, method.reply_text) == (312, "NO_ROUTE")
    assert (method.exchange, method.routing_key) == (exchange, "nowhere")
    assert body == b"lost" and properties.message_id == "m-1"


def test_confirms_ack_routed_and_unroutable_and_return_mandatory(
    channel: Channel, name: Name
) -> None:
    channel.confirm_delivery()
    queue = channel.queue_declare(name("q"), durable=True).method.queue
    channel.basic_publish("", queue, b"persistent", pika.BasicProperties(delivery_mode=2))
    channel.basic_publish("", name("no-such-queue"), b"unroutable")  # acked, not nacked
    with pytest.raises(pika.exceptions.UnroutableError) as unroutable:
        channel.basic_publish("", name("no-such-queue"), b"mandatory", mandatory=True)
    [returned] = unroutable.value.messages
    assert returned.body == b"mandatory"
    assert message_count(channel, queue) == 1
    channel.queue_delete(queue)


def test_large_body_spans_frames(channel: Channel, name: Name) -> None:
    body = bytes(range(256)) * 4096  # 1 MiB: many frames at any frame_max
    queue = filled(channel, name("q"), body)
    got = get(channel, queue)
    assert got is not None and got[2] == body


def test_properties_round_trip(channel: Channel, name: Name) -> None:
    queue = channel.queue_declare(name("q")).method.queue
    properties = pika.BasicProperties(
        content_type="application/json",
        content_encoding="utf-8",
        headers={"int": 7, "str": "s", "bool": True, "list": [1, "a"], "nested": {"k": "v"}},
        delivery_mode=2,
        priority=3,
        correlation_id="corr",
        reply_to="replies",
        expiration="60000",
        message_id="mid",
        timestamp=1700000000,
        type="kind",
        user_id="guest",
        app_id="interop",
    )
    channel.confirm_delivery()
    channel.basic_publish("", queue, b"{}", properties)
    got = get(channel, queue)
    assert got is not None
    for field in (
        "content_type",
        "content_encoding",
        "headers",
        "delivery_mode",
        "priority",
        "correlation_id",
        "reply_to",
        "expiration",
        "message_id",
        "timestamp",
        "type",
        "user_id",
        "app_id",
    ):
        assert getattr(got[1], field) == getattr(properties, field), field


def test_wrong_user_id_is_refused(channel: Channel, name: Name) -> None:
    queue = channel.queue_declare(name("q")).method.queue
    channel.confirm_delivery()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.basic_publish("", queue, b"m", pika.BasicProperties(user_id="somebody-else"))
    assert refused.value.reply_code == 406


# --- consume ----------------------------------------------------------------------------------


def test_consume_then_cancel(connection: pika.BlockingConnection, name: Name) -> None:
    channel = connection.channel()
    queue = filled(channel, name("q"), b"1", b"2", b"3")
    collector = Collector()
    tag = channel.basic_consume(queue, collector, auto_ack=True)
    pump_until(connection, lambda: len(collector.deliveries) == 3, what="three deliveries")
    assert collector.bodies == [b"1", b"2", b"3"]
    method = collector.deliveries[0][0]
    assert (method.consumer_tag, method.exchange, method.routing_key) == (tag, "", queue)
    assert [m.delivery_tag for m, _, _ in collector.deliveries] == [1, 2, 3]
    channel.basic_cancel(tag)
    filled(channel, queue, b"after-cancel")
    assert message_count(channel, queue) == 1
    assert collector.bodies == [b"1", b"2", b"3"]


def test_consumer_is_told_when_its_queue_is_deleted(
    connection: pika.BlockingConnection, name: Name
) -> None:
    channel = connection.channel()
    queue = channel.queue_declare(name("q")).method.queue
    cancelled: list[Any] = []
    channel.add_on_cancel_callback(lambda frame: cancelled.append(frame.method))
    tag = channel.basic_consume(queue, lambda *a: None)
    connection.channel().queue_delete(queue)
    pump_until(connection, lambda: cancelled, what="basic.cancel from the broker")
    assert cancelled[0].consumer_tag == tag
    assert channel.is_open  # the channel survives; only the consumer is gone


def test_basic_get_and_get_empty(channel: Channel, name: Name) -> None:
    queue = filled(channel, name("q"), b"first", b"second")
    method, _, body = channel.basic_get(queue, auto_ack=True)
    assert body == b"first" and method.message_count == 1 and not method.redelivered
    assert (method.exchange, method.routing_key) == ("", queue)
    method, _, body = channel.basic_get(queue, auto_ack=True)
    assert body == b"second" and method.message_count == 0
    assert channel.basic_get(queue, auto_ack=True) == (None, None, None)


# --- acknowledgements -------------------------------------------------------------------------


def test_ack_multiple(connection: pika.BlockingConnection, name: Name) -> None:
    channel = connection.channel()
    queue = filled(channel, name("q"), b"1", b"2", b"3", b"4")
    tags = [channel.basic_get(queue)[0].delivery_tag for _ in range(4)]
    channel.basic_ack(tags[2], multiple=True)  # 1, 2 and 3
    channel.close()  # unacked deliveries go back
    channel = connection.channel()
    assert drain(channel, queue) == [b"4"]


def test_requeued_message_keeps_its_place_and_is_marked_redelivered(
    channel: Channel, name: Name
) -> None:
    queue = filled(channel, name("q"), b"1", b"2", b"3")
    first, _, body = channel.basic_get(queue)
    assert body == b"1" and not first.redelivered
    channel.basic_reject(first.delivery_tag, requeue=True)
    again, _, body = channel.basic_get(queue)
    assert body == b"1" and again.redelivered
    second, _, body = channel.basic_get(queue)
    assert body == b"2" and not second.redelivered
    channel.basic_nack(second.delivery_tag, multiple=True, requeue=True)
    bodies = [(m.redelivered, b) for m, _, b in iter(lambda: channel.basic_get(queue), (None,) * 3)]
    assert bodies == [(True, b"1"), (True, b"2"), (False, b"3")]


def test_nack_multiple_without_requeue_discards(channel: Channel, name: Name) -> None:
    queue = filled(channel, name("q"), b"1", b"2", b"3")
    tags = [channel.basic_get(queue)[0].delivery_tag for _ in range(3)]
    channel.basic_nack(tags[1], multiple=True, requeue=False)  # 1 and 2 are gone
    channel.basic_reject(tags[2], requeue=True)
    assert drain(channel, queue) == [b"3"]


def test_reject_without_requeue_discards(channel: Channel, name: Name) -> None:
    queue = filled(channel, name("q"), b"1")
    method, _, _ = channel.basic_get(queue)
    channel.basic_reject(method.delivery_tag, requeue=False)
    assert message_count(channel, queue) == 0


def test_unknown_delivery_tag_closes_the_channel_406(channel: Channel, name: Name) -> None:
    queue = filled(channel, name("q"), b"1")
    method, _, _ = channel.basic_get(queue)
    channel.basic_ack(method.delivery_tag)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.basic_ack(method.delivery_tag)  # twice
        channel.queue_declare(queue, passive=True)
    assert refused.value.reply_code == 406


def test_closing_a_channel_requeues_its_unacked_messages(
    connection: pika.BlockingConnection, name: Name
) -> None:
    channel = connection.channel()
    queue = filled(channel, name("q"), b"1", b"2")
    collector = Collector()
    channel.basic_consume(queue, collector)
    pump_until(connection, lambda: len(collector.deliveries) == 2, what="two deliveries")
    channel.close()
    other = connection.channel()
    wait_for(lambda: message_count(other, queue) == 2, what="both messages requeued")
    got = [(m.redelivered, b) for m, _, b in iter(lambda: other.basic_get(queue), (None,) * 3)]
    assert got == [(True, b"1"), (True, b"2")]


def test_basic_recover_redelivers_unacked(channel: Channel, name: Name) -> None:
    queue = filled(channel, name("q"), b"1", b"2")
    channel.basic_get(queue)
    channel.basic_get(queue)
    channel.basic_recover(requeue=True)
    got = [(m.redelivered, b) for m, _, b in iter(lambda: channel.basic_get(queue), (None,) * 3)]
    assert got == [(True, b"1"), (True, b"2")]


# --- qos --------------------------------------------------------------------------------------


def settle_at(connection: pika.BlockingConnection, collectors: list[Collector], total: int) -> None:
    """Wait until the collectors hold ``total`` deliveries, then make sure no more are coming:
    a synchronous round trip on the same connection flushes anything the broker sent before."""
    pump_until(
        connection,
        lambda: sum(len(c.deliveries) for c in collectors) >= total,
        what=f"{total} deliveries",
    )
    connection.channel().close()
    connection.process_data_events(0)
    assert sum(len(c.deliveries) for c in collectors) == total


def test_qos_prefetch_per_consumer(connection: pika.BlockingConnection, name: Name) -> None:
    channel = connection.channel()
    queue = filled(channel, name("q"), *[str(i).encode() for i in range(10)])
    channel.basic_qos(prefetch_count=2)  # global=False: each consumer may hold 2
    first, second = Collector(), Collector()
    channel.basic_consume(queue, first)
    channel.basic_consume(queue, second)
    settle_at(connection, [first, second], 4)
    assert message_count(channel, queue) == 6
    assert len(first.deliveries) == len(second.deliveries) == 2
    channel.basic_ack(first.deliveries[0][0].delivery_tag)
    settle_at(connection, [first, second], 5)
    assert len(first.deliveries) == 3


def test_qos_global_limits_the_channel(connection: pika.BlockingConnection, name: Name) -> None:
    channel = connection.channel()
    queue = filled(channel, name("q"), *[str(i).encode() for i in range(10)])
    channel.basic_qos(prefetch_count=3, global_qos=True)
    first, second = Collector(), Collector()
    channel.basic_consume(queue, first)
    channel.basic_consume(queue, second)
    settle_at(connection, [first, second], 3)
    assert message_count(channel, queue) == 7
    everything = first.deliveries + second.deliveries
    last = max(m.delivery_tag for m, _, _ in everything)
    channel.basic_ack(last, multiple=True)
    settle_at(connection, [first, second], 6)


def test_qos_zero_means_unlimited(connection: pika.BlockingConnection, name: Name) -> None:
    channel = connection.channel()
    queue = filled(channel, name("q"), *[str(i).encode() for i in range(20)])
    channel.basic_qos(prefetch_count=0)
    collector = Collector()
    channel.basic_consume(queue, collector)
    settle_at(connection, [collector], 20)


def test_auto_ack_consumers_ignore_prefetch(
    connection: pika.BlockingConnection, name: Name
) -> None:
    channel = connection.channel()
    queue = filled(channel, name("q"), *[str(i).encode() for i in range(8)])
    channel.basic_qos(prefetch_count=1)
    collector = Collector()
    channel.basic_consume(queue, collector, auto_ack=True)
    settle_at(connection, [collector], 8)


# --- transactions -----------------------------------------------------------------------------


def test_tx_commit_and_rollback_publishes(channel: Channel, name: Name) -> None:
    queue = channel.queue_declare(name("q")).method.queue
    channel.tx_select()
    channel.basic_publish("", queue, b"rolled-back")
    assert message_count(channel, queue) == 0
    channel.tx_rollback()
    channel.basic_publish("", queue, b"committed-1")
    channel.basic_publish("", queue, b"committed-2")
    channel.tx_commit()
    assert message_count(channel, queue) == 2
    assert drain(channel, queue) == [b"committed-1", b"committed-2"]


def test_tx_acks_take_effect_on_commit(connection: pika.BlockingConnection, name: Name) -> None:
    channel = connection.channel()
    queue = filled(channel, name("q"), b"1", b"2")
    channel.tx_select()
    first = channel.basic_get(queue)[0]
    second = channel.basic_get(queue)[0]
    channel.basic_ack(first.delivery_tag)
    channel.tx_rollback()  # the ack is forgotten, the message stays unacked
    channel.basic_ack(second.delivery_tag)
    channel.tx_commit()
    channel.close()
    other = connection.channel()
    wait_for(lambda: message_count(other, queue) == 1, what="the rolled-back ack's message")
    assert drain(other, queue) == [b"1"]


def test_confirm_and_tx_do_not_mix(connection: pika.BlockingConnection) -> None:
    channel = connection.channel()
    channel.tx_select()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.confirm_delivery()
    assert refused.value.reply_code == 406


def test_tx_commit_without_select_is_406(channel: Channel) -> None:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.tx_commit()
    assert refused.value.reply_code == 406


# --- consumers, more ----------------------------------------------------------------------------


def test_exclusive_consumer_refuses_a_second(
    connection: pika.BlockingConnection, name: Name
) -> None:
    channel = connection.channel()
    queue = channel.queue_declare(name("q")).method.queue
    channel.basic_consume(queue, lambda *a: None, exclusive=True)
    other = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        other.basic_consume(queue, lambda *a: None)
    assert refused.value.reply_code == 403


def test_exclusive_consume_on_a_consumed_queue_is_refused(
    connection: pika.BlockingConnection, name: Name
) -> None:
    channel = connection.channel()
    queue = channel.queue_declare(name("q")).method.queue
    channel.basic_consume(queue, lambda *a: None)
    other = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        other.basic_consume(queue, lambda *a: None, exclusive=True)
    assert refused.value.reply_code == 403
