"""Durability across a crash and a restart: a broker process that is SIGKILLed or stopped, then
started again on the same data folder.

- Confirmed persistent messages in a durable queue all come back after SIGKILL, in order.
- Messages delivered but not acknowledged at the crash come back with redelivered=true, in
  their place.
- Durable exchanges, queues (with their arguments) and bindings survive; transient ones do not.
- Delivery counts (x-delivery-count) survive a restart.

The broker is Firth's ``firth serve`` child process (``firth.testing.broker_process``). The
parity run does not collect this module (see conftest.py): these are claims about Firth's
storage. ``RabbitMQNode`` offers the same kill/restart interface, and the module was checked
against RabbitMQ 3.10 with ``FIRTH_AMQP_DURABILITY_TARGET=rabbitmq`` before Firth existed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pika
import pika.exceptions
import pytest

from tests.amqp_interop.helpers import Channel, drain, message_count, wait_get

pytestmark = pytest.mark.timeout(300)

Name = Callable[[str], str]
PERSISTENT = pika.BasicProperties(delivery_mode=2)


class Restartable(Protocol):
    @property
    def amqp_url(self) -> str: ...

    def kill(self) -> None: ...

    def restart(self) -> None: ...


class _RabbitMQRestartable:
    """RabbitMQNode behind the ``broker_process`` interface, to prove these tests on RabbitMQ."""

    def __init__(self, folder: Path) -> None:
        from tests.amqp_interop.rabbitmq_node import RabbitMQNode

        self.node = RabbitMQNode(work_dir=folder)

    @property
    def amqp_url(self) -> str:
        return self.node.url

    def kill(self) -> None:
        self.node.kill()

    def restart(self) -> None:
        self.node.restart()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Restartable]:
    if os.environ.get("FIRTH_AMQP_DURABILITY_TARGET") == "rabbitmq":
        node = _RabbitMQRestartable(tmp_path)
        node.node.start()
        try:
            yield node
        finally:
            node.node.stop()
        return
    from firth.testing import broker_process

    try:
        context = broker_process(tmp_path / "data", amqp_listen="127.0.0.1:0")
        process = context.__enter__()
    except Exception as error:  # the AMQP listener or .amqp_url not there yet
        pytest.fail(f"broker_process(amqp_listen=...) failed: {error!r}", pytrace=False)
    try:
        if not getattr(process, "amqp_url", None):
            pytest.fail("firth.testing.BrokerProcess has no .amqp_url yet", pytrace=False)
        yield process
    finally:
        context.__exit__(None, None, None)


def open_channel(broker: Restartable) -> tuple[pika.BlockingConnection, Channel]:
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    return connection, connection.channel()


def crash_and_restart(broker: Restartable, *connections: pika.BlockingConnection) -> None:
    broker.kill()
    for connection in connections:
        try:
            connection.close()
        except (pika.exceptions.AMQPError, OSError):
            pass  # the broker is gone; the client only has to let go of the socket
    broker.restart()


def test_confirmed_persistent_messages_survive_sigkill(broker: Restartable, name: Name) -> None:
    connection, channel = open_channel(broker)
    queue = channel.queue_declare(name("q"), durable=True).method.queue
    channel.confirm_delivery()
    bodies = [f"message-{index:04}".encode() + b"x" * 200 for index in range(300)]
    for body in bodies:
        channel.basic_publish("", queue, body, PERSISTENT)  # returns once confirmed
    crash_and_restart(broker, connection)
    connection, channel = open_channel(broker)
    assert message_count(channel, queue) == len(bodies)
    assert drain(channel, queue) == bodies
    connection.close()


def test_messages_survive_graceful_restart_and_acks_are_kept(
    broker: Restartable, name: Name
) -> None:
    connection, channel = open_channel(broker)
    queue = channel.queue_declare(name("q"), durable=True).method.queue
    channel.confirm_delivery()
    for body in (b"1", b"2", b"3"):
        channel.basic_publish("", queue, body, PERSISTENT)
    method, _, body = wait_get(channel, queue, auto_ack=False)
    assert body == b"1"
    channel.basic_ack(method.delivery_tag)
    connection.close()  # a clean close: the ack has been processed before the restart
    broker.restart()
    connection, channel = open_channel(broker)
    got = []
    while (message := channel.basic_get(queue, auto_ack=True))[0] is not None:
        got.append((message[2], message[0].redelivered))
    assert got == [(b"2", False), (b"3", False)]
    connection.close()


def test_unacked_messages_come_back_redelivered_in_place(broker: Restartable, name: Name) -> None:
    connection, channel = open_channel(broker)
    queue = channel.queue_declare(name("q"), durable=True).method.queue
    channel.confirm_delivery()
    for body in (b"1", b"2", b"3", b"4"):
        channel.basic_publish("", queue, body, PERSISTENT)
    consumer = connection.channel()
    delivered = [wait_get(consumer, queue, auto_ack=False) for _ in range(2)]
    assert [body for _, _, body in delivered] == [b"1", b"2"]
    crash_and_restart(broker, connection)
    connection, channel = open_channel(broker)
    got = []
    while (message := channel.basic_get(queue, auto_ack=True))[0] is not None:
        got.append((message[2], message[0].redelivered))
    assert [body for body, _ in got] == [b"1", b"2", b"3", b"4"]
    assert got[0][1] and got[1][1]  # delivered before the crash: flagged
    connection.close()


def declare_definitions(channel: Channel, name: Name) -> dict[str, str]:
    names = {key: name(key) for key in ("topic", "alt", "queue", "alt_queue", "transient")}
    channel.exchange_declare(names["alt"], "fanout", durable=True)
    channel.exchange_declare(
        names["topic"], "topic", durable=True, arguments={"alternate-exchange": names["alt"]}
    )
    channel.queue_declare(
        names["queue"], durable=True, arguments={"x-max-length": 100, "x-message-ttl": 600000}
    )
    channel.queue_declare(names["alt_queue"], durable=True)
    channel.queue_bind(names["queue"], names["topic"], "orders.#")
    channel.queue_bind(names["alt_queue"], names["alt"])
    channel.queue_declare(names["transient"], durable=False)
    channel.exchange_declare(names["transient"], "direct", durable=False)
    return names


def check_definitions(broker: Restartable, names: dict[str, str]) -> None:
    connection, channel = open_channel(broker)
    channel.exchange_declare(
        names["topic"], "topic", durable=True, arguments={"alternate-exchange": names["alt"]}
    )
    channel.queue_declare(
        names["queue"], durable=True, arguments={"x-max-length": 100, "x-message-ttl": 600000}
    )
    channel.confirm_delivery()
    channel.basic_publish(names["topic"], "orders.created", b"bound", PERSISTENT)
    channel.basic_publish(names["topic"], "invoices.sent", b"alternate", PERSISTENT)
    assert drain(channel, names["queue"]) == [b"bound"]
    assert drain(channel, names["alt_queue"]) == [b"alternate"]
    # the stored arguments are the ones compared on redeclare
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.queue_declare(names["queue"], durable=True, arguments={"x-max-length": 5})
    assert refused.value.reply_code == 406
    for kind in ("queue", "exchange"):
        probe = connection.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as gone:
            if kind == "queue":
                probe.queue_declare(names["transient"], passive=True)
            else:
                probe.exchange_declare(names["transient"], "direct", passive=True)
        assert gone.value.reply_code == 404, kind
    connection.close()


def test_durable_definitions_survive_sigkill(broker: Restartable, name: Name) -> None:
    connection, channel = open_channel(broker)
    names = declare_definitions(channel, name)
    # the definitions were acknowledged (declare-ok, bind-ok) before the kill
    crash_and_restart(broker, connection)
    check_definitions(broker, names)


def test_durable_definitions_survive_graceful_restart(broker: Restartable, name: Name) -> None:
    connection, channel = open_channel(broker)
    names = declare_definitions(channel, name)
    connection.close()
    broker.restart()
    check_definitions(broker, names)


def test_delivery_counts_survive_restart(broker: Restartable, name: Name) -> None:
    connection, channel = open_channel(broker)
    arguments: dict[str, Any] = {"x-queue-type": "quorum", "x-delivery-limit": 10}
    queue = channel.queue_declare(name("q"), durable=True, arguments=arguments).method.queue
    channel.confirm_delivery()
    channel.basic_publish("", queue, b"retried", PERSISTENT)
    for _ in range(2):
        method, _, _ = wait_get(channel, queue, auto_ack=False)
        channel.basic_nack(method.delivery_tag, requeue=True)
    method, properties, _ = wait_get(channel, queue, auto_ack=False)
    assert properties.headers["x-delivery-count"] == 2
    channel.basic_nack(method.delivery_tag, requeue=True)
    connection.close()
    broker.restart()
    connection, channel = open_channel(broker)
    method, properties, body = wait_get(channel, queue, auto_ack=True)
    assert body == b"retried" and method.redelivered
    assert properties.headers["x-delivery-count"] == 3
    connection.close()
