"""Request/reply: a reply queue named in reply_to with correlation ids (aio-pika), and RabbitMQ's
direct reply-to pseudo-queue ``amq.rabbitmq.reply-to`` (pika)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import aio_pika
import aio_pika.abc
import pika
import pika.exceptions
import pytest

from tests.amqp_interop.helpers import pump_until, wait_get

pytestmark = pytest.mark.timeout(60)

Name = Callable[[str], str]
Connect = Callable[[], pika.BlockingConnection]
TIMEOUT = 10.0


def test_reply_to_and_correlation_id(amqp_url: str, name: Name) -> None:
    async def scenario() -> dict[str, bytes]:
        server_connection = await aio_pika.connect(amqp_url)
        client_connection = await aio_pika.connect(amqp_url)
        async with server_connection, client_connection:
            server = await server_connection.channel()
            requests = await server.declare_queue(name("rpc"), auto_delete=True)

            async def serve(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                async with message.process():
                    reply = aio_pika.Message(
                        message.body.upper(), correlation_id=message.correlation_id
                    )
                    await server.default_exchange.publish(reply, routing_key=message.reply_to or "")

            await requests.consume(serve)
            client = await client_connection.channel()
            replies = await client.declare_queue("", exclusive=True)
            pending: dict[str, asyncio.Future[bytes]] = {}

            async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                await message.ack()
                pending[message.correlation_id or ""].set_result(message.body)

            await replies.consume(on_reply)
            loop = asyncio.get_running_loop()
            words = ["alpha", "beta", "gamma"]
            for word in words:
                correlation = str(uuid.uuid4())
                pending[correlation] = loop.create_future()
                await client.default_exchange.publish(
                    aio_pika.Message(
                        word.encode(), correlation_id=correlation, reply_to=replies.name
                    ),
                    routing_key=requests.name,
                )
            await asyncio.wait_for(asyncio.gather(*pending.values()), TIMEOUT)
            return {key: future.result() for key, future in pending.items()}

    answers = asyncio.run(scenario())
    assert sorted(answers.values()) == [b"ALPHA", b"BETA", b"GAMMA"]


def test_direct_reply_to(connect: Connect, name: Name) -> None:
    client_connection, server_connection = connect(), connect()
    server = server_connection.channel()
    requests = server.queue_declare(name("rpc")).method.queue
    client = client_connection.channel()
    replies: list[tuple[Any, bytes]] = []
    client.basic_consume(
        "amq.rabbitmq.reply-to",
        lambda _ch, _m, properties, body: replies.append((properties, body)),
        auto_ack=True,
    )
    client.basic_publish(
        "",
        requests,
        b"ping",
        pika.BasicProperties(reply_to="amq.rabbitmq.reply-to", correlation_id="c-1"),
    )
    _, properties, body = wait_get(server, requests)
    assert body == b"ping"
    # the broker rewrote reply_to into a routable name for this channel's pseudo-queue
    assert properties.reply_to.startswith("amq.rabbitmq.reply-to.")
    server.basic_publish(
        "",
        properties.reply_to,
        b"pong",
        pika.BasicProperties(correlation_id=properties.correlation_id),
    )
    pump_until(client_connection, lambda: replies, what="the direct reply")
    [(reply_properties, reply)] = replies
    assert reply == b"pong" and reply_properties.correlation_id == "c-1"


def test_direct_reply_to_needs_a_consumer_first(channel: Any, name: Name) -> None:
    queue = channel.queue_declare(name("rpc")).method.queue
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.basic_publish(
            "", queue, b"ping", pika.BasicProperties(reply_to="amq.rabbitmq.reply-to")
        )
        channel.queue_declare(queue, passive=True)  # a round trip to see the channel close
    assert refused.value.reply_code == 406


def test_direct_reply_to_requires_no_ack(channel: Any) -> None:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.basic_consume("amq.rabbitmq.reply-to", lambda *a: None, auto_ack=False)
    assert refused.value.reply_code == 406
