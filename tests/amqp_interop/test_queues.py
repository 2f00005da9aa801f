"""Queues over pika (blocking): durable, transient, exclusive, auto-delete and server-named
queues, passive declare, purge, conditional delete and the redeclare rules."""

from __future__ import annotations

from collections.abc import Callable

import pika
import pika.exceptions
import pytest

from tests.amqp_interop.helpers import Channel, message_count, pump_until, wait_for

pytestmark = pytest.mark.timeout(60)

Name = Callable[[str], str]
Connect = Callable[[], pika.BlockingConnection]


def refused(action: Callable[[], object]) -> int:
    """Run ``action``, which must make the broker close the channel; return the reply code."""
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        action()
    return int(closed.value.reply_code)


def exists(connection: pika.BlockingConnection, queue: str) -> bool:
    channel = connection.channel()
    try:
        channel.queue_declare(queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker as error:
        assert error.reply_code == 404
        return False
    channel.close()
    return True


def test_durable_and_transient_declare(connection: pika.BlockingConnection, name: Name) -> None:
    channel = connection.channel()
    durable = channel.queue_declare(name("durable"), durable=True)
    transient = channel.queue_declare(name("transient"), durable=False)
    assert durable.method.queue == name("durable")
    assert (durable.method.message_count, durable.method.consumer_count) == (0, 0)
    assert transient.method.queue == name("transient")
    channel.queue_declare(name("durable"), durable=True)  # equivalent: fine
    channel.queue_delete(name("durable"))


def test_passive_declare_of_missing_queue_is_404(channel: Channel, name: Name) -> None:
    assert refused(lambda: channel.queue_declare(name("missing"), passive=True)) == 404


def test_passive_declare_reports_counts(connection: pika.BlockingConnection, name: Name) -> None:
    channel = connection.channel()
    channel.confirm_delivery()
    queue = channel.queue_declare(name("q")).method.queue
    for body in (b"1", b"2"):
        channel.basic_publish("", queue, body)
    consumer = connection.channel()
    consumer.basic_qos(prefetch_count=1)
    consumer.basic_consume(queue, lambda *args: None)
    ok = wait_for(
        lambda: (
            (m := channel.queue_declare(queue, passive=True).method).consumer_count == 1
            and m.message_count == 1
            and m
        ),
        what="one consumer and one ready message",
    )
    assert (ok.message_count, ok.consumer_count) == (1, 1)


@pytest.mark.parametrize(
    "change",
    [
        {"durable": True},
        {"auto_delete": True},
        {"arguments": {"x-message-ttl": 1000}},
        {"arguments": {"x-max-length": 5}},
    ],
    ids=["durable", "auto_delete", "ttl", "max_length"],
)
def test_redeclare_with_different_properties_is_406(
    connection: pika.BlockingConnection, name: Name, change: dict[str, object]
) -> None:
    channel = connection.channel()
    queue = name("q")
    channel.queue_declare(queue, durable=False, auto_delete=False)
    assert refused(lambda: channel.queue_declare(queue, **change)) == 406  # type: ignore[arg-type]
    assert exists(connection, queue)  # the original declaration stands


def test_exclusive_queue_is_locked_to_its_connection(connect: Connect, name: Name) -> None:
    owner = connect()
    queue = name("exclusive")
    owner.channel().queue_declare(queue, exclusive=True)
    other = connect()
    assert refused(lambda: other.channel().queue_declare(queue, passive=True)) == 405
    assert refused(lambda: other.channel().queue_declare(queue, exclusive=True)) == 405
    assert refused(lambda: other.channel().basic_consume(queue, lambda *a: None)) == 405
    assert refused(lambda: other.channel().queue_delete(queue)) == 405
    owner.close()
    wait_for(lambda: not exists(other, queue), what="the exclusive queue to go with its owner")


def test_auto_delete_queue_goes_with_its_last_consumer(
    connection: pika.BlockingConnection, name: Name
) -> None:
    channel = connection.channel()
    queue = name("auto")
    channel.queue_declare(queue, auto_delete=True)
    first = channel.basic_consume(queue, lambda *a: None)
    second = channel.basic_consume(queue, lambda *a: None)
    channel.basic_cancel(first)
    assert exists(connection, queue)
    channel.basic_cancel(second)
    wait_for(lambda: not exists(connection, queue), what="the auto-delete queue to go")


def test_auto_delete_queue_without_consumers_stays(
    connection: pika.BlockingConnection, name: Name
) -> None:
    channel = connection.channel()
    queue = name("auto")
    channel.queue_declare(queue, auto_delete=True)
    channel.basic_publish("", queue, b"m")
    assert exists(connection, queue)


def test_server_named_queues(connection: pika.BlockingConnection) -> None:
    channel = connection.channel()
    first = channel.queue_declare("", exclusive=True).method.queue
    second = channel.queue_declare("", exclusive=True).method.queue
    assert first.startswith("amq.gen-") and second.startswith("amq.gen-")
    assert first != second
    channel.confirm_delivery()
    channel.basic_publish("", first, b"to-generated")
    method, _, body = channel.basic_get(first, auto_ack=True)
    assert method is not None and body == b"to-generated"


def test_amq_queue_names_are_reserved(channel: Channel) -> None:
    assert refused(lambda: channel.queue_declare("amq.firth-not-allowed")) == 403


def test_purge_reports_the_count(channel: Channel, name: Name) -> None:
    channel.confirm_delivery()
    queue = channel.queue_declare(name("q")).method.queue
    for index in range(5):
        channel.basic_publish("", queue, str(index).encode())
    assert channel.queue_purge(queue).method.message_count == 5
    assert message_count(channel, queue) == 0
    assert channel.queue_purge(queue).method.message_count == 0


def test_purge_leaves_unacked_messages(connection: pika.BlockingConnection, name: Name) -> None:
    channel = connection.channel()
    channel.confirm_delivery()
    queue = channel.queue_declare(name("q")).method.queue
    for body in (b"taken", b"ready"):
        channel.basic_publish("", queue, body)
    method, _, body = channel.basic_get(queue, auto_ack=False)
    assert body == b"taken"
    assert channel.queue_purge(queue).method.message_count == 1
    channel.basic_reject(method.delivery_tag, requeue=True)
    method, _, body = channel.basic_get(queue, auto_ack=True)
    assert body == b"taken" and method.redelivered


def test_delete_if_empty_and_if_unused(connection: pika.BlockingConnection, name: Name) -> None:
    channel = connection.channel()
    channel.confirm_delivery()
    queue = channel.queue_declare(name("q")).method.queue
    channel.basic_publish("", queue, b"m")
    assert refused(lambda: channel.queue_delete(queue, if_empty=True)) == 406
    channel = connection.channel()
    tag = channel.basic_consume(queue, lambda *a: None, auto_ack=False)
    other = connection.channel()
    assert refused(lambda: other.queue_delete(queue, if_unused=True)) == 406
    channel.basic_cancel(tag)
    channel.close()  # the unacked delivery (if any) goes back to the queue
    other = connection.channel()
    wait_for(lambda: message_count(other, queue) == 1, what="the message back in the queue")
    assert other.queue_delete(queue).method.message_count == 1
    assert not exists(connection, queue)


def test_delete_of_missing_queue_succeeds(channel: Channel, name: Name) -> None:
    assert channel.queue_delete(name("never-declared")).method.message_count == 0


def test_delete_unbinds(connection: pika.BlockingConnection, name: Name) -> None:
    channel = connection.channel()
    channel.confirm_delivery()
    exchange = name("x")
    channel.exchange_declare(exchange, "fanout")
    queue = channel.queue_declare(name("q")).method.queue
    channel.queue_bind(queue, exchange)
    channel.queue_delete(queue)
    channel.queue_declare(queue)
    channel.basic_publish(exchange, "", b"m")
    assert message_count(channel, queue) == 0


def test_unbind_stops_routing(channel: Channel, name: Name) -> None:
    channel.confirm_delivery()
    exchange = name("x")
    channel.exchange_declare(exchange, "direct")
    queue = channel.queue_declare(name("q")).method.queue
    channel.queue_bind(queue, exchange, "k")
    channel.basic_publish(exchange, "k", b"1")
    channel.queue_unbind(queue, exchange, "k")
    channel.basic_publish(exchange, "k", b"2")
    assert message_count(channel, queue) == 1


def test_binding_to_missing_queue_or_exchange_is_404(
    connection: pika.BlockingConnection, name: Name
) -> None:
    channel = connection.channel()
    queue = channel.queue_declare(name("q")).method.queue
    assert refused(lambda: channel.queue_bind(queue, name("missing-x"), "k")) == 404
    channel = connection.channel()
    channel.exchange_declare(name("x"), "direct")
    assert refused(lambda: channel.queue_bind(name("missing-q"), name("x"), "k")) == 404


def test_consumer_count_follows_consumers(connection: pika.BlockingConnection, name: Name) -> None:
    channel = connection.channel()
    queue = channel.queue_declare(name("q")).method.queue
    tags = [channel.basic_consume(queue, lambda *a: None) for _ in range(3)]
    assert channel.queue_declare(queue, passive=True).method.consumer_count == 3
    for tag in tags:
        channel.basic_cancel(tag)
    pump_until(
        connection,
        lambda: channel.queue_declare(queue, passive=True).method.consumer_count == 0,
        what="no consumers",
    )
