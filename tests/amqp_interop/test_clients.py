"""The same broker through other client libraries: pika's asyncio adapter, aio-pika and kombu.

Each library has its own way of negotiating (capabilities it looks for), of publishing with
confirms, of consuming and acknowledging; these tests drive the common paths of each the way
applications write them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aio_pika
import aio_pika.abc
import aio_pika.exceptions
import kombu
import pika
import pika.adapters.asyncio_connection
import pika.exceptions
import pytest

pytestmark = pytest.mark.timeout(60)

Name = Callable[[str], str]
TIMEOUT = 10.0


# --- pika asyncio adapter ---------------------------------------------------------------------


class PikaAsyncioScenario:
    """Callback chain: open -> channel -> confirms -> declare -> publish 3 -> consume, ack all.

    Records the steps it reached, the confirms it got and the bodies it consumed; ``done`` is
    set when the three messages are acked and the connection closed (or on any failure).
    """

    def __init__(self, url: str, queue: str) -> None:
        self.url = url
        self.queue = queue
        self.confirms: list[str] = []
        self.bodies: list[bytes] = []
        self.redelivered: list[bool] = []
        self.error: object = None
        self.done = asyncio.Event()
        self.channel: Any = None
        self.connection: Any = None
        self.consuming = False

    def start(self) -> None:
        self.connection = pika.adapters.asyncio_connection.AsyncioConnection(
            pika.URLParameters(self.url),
            on_open_callback=self.on_open,
            on_open_error_callback=self.fail,
            on_close_callback=lambda _c, _reason: self.done.set(),
        )

    def fail(self, _connection: Any, error: object) -> None:
        self.error = error
        self.done.set()

    def on_open(self, connection: Any) -> None:
        connection.channel(on_open_callback=self.on_channel)

    def on_channel(self, channel: Any) -> None:
        self.channel = channel
        channel.add_on_close_callback(self.on_channel_closed)
        channel.confirm_delivery(self.on_confirm, callback=self.on_confirm_mode)

    def on_channel_closed(self, _channel: Any, reason: Exception) -> None:
        if not isinstance(reason, pika.exceptions.ChannelClosedByClient):
            self.fail(None, reason)

    def on_confirm_mode(self, _frame: Any) -> None:
        self.channel.queue_declare(self.queue, callback=self.on_declared)

    def on_declared(self, _frame: Any) -> None:
        for index in range(3):
            self.channel.basic_publish("", self.queue, f"m{index}".encode())

    def on_confirm(self, frame: Any) -> None:
        self.confirms.append(type(frame.method).__name__)
        settled = frame.method.delivery_tag  # with multiple=True it settles every tag up to it
        if settled == 3 and not self.consuming:
            self.consuming = True
            self.channel.basic_qos(prefetch_count=1, callback=self.on_qos)

    def on_qos(self, _frame: Any) -> None:
        self.channel.basic_consume(self.queue, self.on_message)

    def on_message(self, channel: Any, method: Any, _properties: Any, body: bytes) -> None:
        self.bodies.append(body)
        self.redelivered.append(method.redelivered)
        if len(self.bodies) == 1:
            channel.basic_nack(method.delivery_tag, requeue=True)  # comes back first
            return
        channel.basic_ack(method.delivery_tag)
        if len(self.bodies) == 4:
            self.connection.close()


def test_pika_asyncio_adapter(amqp_url: str, name: Name) -> None:
    async def scenario() -> PikaAsyncioScenario:
        run = PikaAsyncioScenario(amqp_url, name("q"))
        run.start()
        await asyncio.wait_for(run.done.wait(), TIMEOUT)
        return run

    run = asyncio.run(scenario())
    assert run.error is None
    assert run.confirms and set(run.confirms) == {"Ack"}
    assert run.bodies == [b"m0", b"m0", b"m1", b"m2"]
    assert run.redelivered == [False, True, False, False]


# --- aio-pika ---------------------------------------------------------------------------------


def run_async(scenario: Callable[[], Any]) -> Any:
    return asyncio.run(asyncio.wait_for(scenario(), TIMEOUT * 3))


def test_aio_pika_publish_consume_ack(amqp_url: str, name: Name) -> None:
    async def scenario() -> None:
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()  # publisher confirms on by default
            await channel.set_qos(prefetch_count=10)
            exchange = await channel.declare_exchange(name("x"), aio_pika.ExchangeType.TOPIC)
            queue = await channel.declare_queue(name("q"), durable=True)
            await queue.bind(exchange, "orders.*")
            for index in range(5):
                await exchange.publish(
                    aio_pika.Message(
                        f"order-{index}".encode(),
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        headers={"n": index},
                    ),
                    routing_key="orders.created",
                )
            got = []
            async with queue.iterator() as messages:
                async for message in messages:
                    async with message.process():
                        got.append((message.body, message.headers["n"], message.routing_key))
                    if len(got) == 5:
                        break
            assert got == [(f"order-{i}".encode(), i, "orders.created") for i in range(5)]
            await queue.delete()

    run_async(scenario)


def test_aio_pika_nack_requeue_then_reject_to_dead_letter(amqp_url: str, name: Name) -> None:
    async def scenario() -> None:
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            dead_exchange = await channel.declare_exchange(
                name("dlx"), aio_pika.ExchangeType.FANOUT
            )
            dead = await channel.declare_queue(name("dead"))
            await dead.bind(dead_exchange)
            queue = await channel.declare_queue(
                name("q"), arguments={"x-dead-letter-exchange": name("dlx")}
            )
            await channel.default_exchange.publish(aio_pika.Message(b"job"), routing_key=queue.name)
            first = await queue.get(timeout=TIMEOUT)
            assert not first.redelivered
            await first.nack(requeue=True)
            second = await queue.get(timeout=TIMEOUT)
            assert second.body == b"job" and second.redelivered
            await second.reject(requeue=False)
            for _ in range(int(TIMEOUT / 0.02)):
                dead_message = await dead.get(fail=False)
                if dead_message is not None:
                    break
                await asyncio.sleep(0.02)  # polling interval while waiting for the dead letter
            assert dead_message is not None and dead_message.body == b"job"
            await dead_message.ack()
            deaths: Any = dead_message.headers["x-death"]
            death = deaths[0]
            assert (death["reason"], death["queue"]) == ("rejected", queue.name)
            assert await queue.get(fail=False) is None

    run_async(scenario)


def test_aio_pika_mandatory_return_raises(amqp_url: str, name: Name) -> None:
    async def scenario() -> None:
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel(on_return_raises=True)
            with pytest.raises(aio_pika.exceptions.DeliveryError):
                await channel.default_exchange.publish(
                    aio_pika.Message(b"lost"), routing_key=name("no-such-queue"), mandatory=True
                )
            # without mandatory the same publish is confirmed and dropped
            await channel.default_exchange.publish(
                aio_pika.Message(b"dropped"), routing_key=name("no-such-queue"), mandatory=False
            )

    run_async(scenario)


def test_aio_pika_transactions(amqp_url: str, name: Name) -> None:
    async def scenario() -> None:
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=False)
            queue = await channel.declare_queue(name("q"))
            async with channel.transaction():
                await channel.default_exchange.publish(
                    aio_pika.Message(b"1"), routing_key=queue.name
                )
            transaction = channel.transaction()
            await transaction.select()
            await channel.default_exchange.publish(aio_pika.Message(b"2"), routing_key=queue.name)
            await transaction.rollback()
            declared = await channel.declare_queue(name("q"), passive=True)
            assert declared.declaration_result.message_count == 1

    run_async(scenario)


def test_aio_pika_consumer_cancelled_when_queue_deleted(amqp_url: str, name: Name) -> None:
    async def scenario() -> None:
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(name("q"))
            received: list[bytes] = []

            async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                received.append(message.body)
                await message.ack()

            await queue.consume(on_message)
            await channel.default_exchange.publish(aio_pika.Message(b"1"), routing_key=queue.name)
            other = await connection.channel()
            for _ in range(int(TIMEOUT / 0.02)):
                if received:
                    break
                await asyncio.sleep(0.02)
            assert received == [b"1"]
            await other.queue_delete(queue.name)
            # the channel stays usable after the broker cancelled the consumer
            probe = await channel.declare_queue(name("probe"))
            await probe.delete()

    run_async(scenario)


# --- kombu ------------------------------------------------------------------------------------


def test_kombu_producer_consumer(amqp_url: str, name: Name) -> None:
    exchange = kombu.Exchange(name("x"), type="direct", durable=True)
    queue = kombu.Queue(name("q"), exchange, routing_key="work", durable=True)
    with kombu.Connection(amqp_url, connect_timeout=TIMEOUT) as connection:
        assert connection.transport.driver_name == "py-amqp"
        producer = kombu.Producer(connection.default_channel, serializer="json")
        for index in range(3):
            producer.publish(
                {"n": index}, exchange=exchange, routing_key="work", declare=[queue], retry=True
            )
        got: list[Any] = []

        def on_message(body: Any, message: Any) -> None:
            got.append(body["n"])
            if body["n"] == 1 and not message.delivery_info["redelivered"]:
                message.requeue()
            else:
                message.ack()

        with kombu.Consumer(connection, [queue], callbacks=[on_message], prefetch_count=1):
            while len(got) < 4:
                connection.drain_events(timeout=TIMEOUT)
        assert got == [0, 1, 1, 2]
        queue(connection.default_channel).delete()


def test_kombu_simple_queue_and_dead_letter(amqp_url: str, name: Name) -> None:
    with kombu.Connection(amqp_url, connect_timeout=TIMEOUT) as connection:
        dead_exchange = kombu.Exchange(name("dlx"), type="fanout")
        dead = kombu.Queue(name("dead"), dead_exchange)
        dead(connection.default_channel).declare()
        work = kombu.Queue(
            name("work"),
            routing_key=name("work"),
            queue_arguments={"x-dead-letter-exchange": name("dlx"), "x-message-ttl": 100},
        )
        with connection.SimpleQueue(work) as simple:
            simple.put({"job": "expires"})
        with connection.SimpleQueue(dead) as dead_simple:
            message = dead_simple.get(block=True, timeout=TIMEOUT)
            assert message.payload == {"job": "expires"}
            assert message.headers["x-death"][0]["reason"] == "expired"
            message.ack()


def test_kombu_sees_rabbitmq_semantics(amqp_url: str) -> None:
    """kombu (and Celery through it) picks RabbitMQ's qos semantics from server properties."""
    with kombu.Connection(amqp_url, connect_timeout=TIMEOUT) as connection:
        connection.connect()
        properties = connection.connection.server_properties
        assert properties["product"] == "RabbitMQ"
        capabilities = properties["capabilities"]
        for capability in (
            "publisher_confirms",
            "exchange_exchange_bindings",
            "basic.nack",
            "consumer_cancel_notify",
            "connection.blocked",
            "consumer_priorities",
            "authentication_failure_close",
            "per_consumer_qos",
            "direct_reply_to",
        ):
            assert capabilities.get(capability) is True, capability
        assert connection.qos_semantics_matches_spec is False


def test_aio_pika_many_confirms_in_flight(amqp_url: str, name: Name) -> None:
    """500 persistent publishes to a durable queue and a transient one, all in flight at once:
    every confirm arrives (the broker may group them with multiple=True) and nothing is lost
    or reordered."""

    async def scenario() -> None:
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(name("fan"), aio_pika.ExchangeType.FANOUT)
            durable = await channel.declare_queue(name("durable"), durable=True)
            transient = await channel.declare_queue(name("transient"), durable=False)
            for queue in (durable, transient):
                await queue.bind(exchange)
            bodies = [f"{index:05}".encode() for index in range(500)]
            confirms = await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                        routing_key="",
                    )
                    for body in bodies
                )
            )
            assert len(confirms) == 500
            for queue in (durable, transient):
                declared = await channel.declare_queue(queue.name, passive=True)
                assert declared.declaration_result.message_count == 500
                got = []
                while (message := await queue.get(no_ack=True, fail=False)) is not None:
                    got.append(message.body)
                assert got == bodies
            await durable.delete()

    run_async(scenario)
