"""Random sequences of channel methods through the whole front end (``AmqpProtocol`` with a
fake transport, the real channel handlers, queue core and virtual host) on two connections.

Whatever the sequence, nothing but AMQP errors may come out (a channel or connection close is
fine; a Python exception escaping ``data_received`` is not), and the bookkeeping must agree
after every step: each queue's unacked count equals the deliveries channels hold for it, its
ready count equals what its sub-queues hold, every message published to a queue is ready,
unacked or settled (none is lost or counted twice), and no consumer is left on a deleted
queue.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import pika.frame
import pika.spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firth.amqp.codec import AmqpPropertiesCodec
from firth.amqp.server import AmqpProtocol, AmqpServer
from firth.broker.group_commit import GroupCommit
from firth.broker.queues import VirtualHost
from tests.amqp.amqp_peer import content, decode_all, handshake_bytes, method

QUEUES = ("a", "b")
ARGUMENTS = [
    {},
    {"x-max-length": 2},
    {"x-message-ttl": 0},
    {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "b"},
    {"x-max-priority": 3},
    {"x-delivery-limit": 1, "x-dead-letter-exchange": ""},
    {"x-overflow": "reject-publish", "x-max-length": 1},
    {"x-single-active-consumer": True},
]

queue_names = st.sampled_from(QUEUES)
operations = st.one_of(
    st.tuples(
        st.just("declare"),
        queue_names,
        st.booleans(),
        st.integers(0, len(ARGUMENTS) - 1),
        st.booleans(),
    ),
    st.tuples(st.just("publish"), queue_names, st.booleans(), st.integers(0, 5)),
    st.tuples(st.just("get"), queue_names, st.booleans()),
    st.tuples(st.just("ack"), st.integers(0, 12), st.booleans()),
    st.tuples(st.just("nack"), st.integers(0, 12), st.booleans(), st.booleans()),
    st.tuples(st.just("reject"), st.integers(0, 12), st.booleans()),
    st.tuples(st.just("consume"), queue_names, st.booleans(), st.integers(0, 3)),
    st.tuples(st.just("cancel"), st.integers(0, 5)),
    st.tuples(st.just("purge"), queue_names),
    st.tuples(st.just("delete"), queue_names, st.booleans(), st.booleans()),
    st.tuples(st.sampled_from(["recover", "confirm", "tx_select", "tx_commit", "tx_rollback"])),
    st.tuples(st.just("qos"), st.integers(0, 3), st.booleans()),
    st.tuples(st.just("close_channel")),
)


class FakeTransport:
    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.data += data

    def get_extra_info(self, key: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5555) if key == "peername" else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


class Client:
    """One connection: sends frames, reads what the server wrote, reopens closed channels."""

    def __init__(self, server: AmqpServer) -> None:
        self.transport = FakeTransport()
        self.protocol = AmqpProtocol(server)
        self.protocol.connection_made(self.transport)  # type: ignore[arg-type]
        self.tags: list[int] = []
        self.consumers: list[str] = []
        self.send(handshake_bytes())
        self.send(method(1, pika.spec.Channel.Open()))

    def send(self, data: bytes) -> None:
        if self.transport.closed:
            return
        self.protocol.data_received(data)
        self.read()

    def read(self) -> None:
        frames = decode_all(bytes(self.transport.data))
        self.transport.data.clear()
        for frame in frames:
            if not isinstance(frame, pika.frame.Method):
                continue
            answer = frame.method
            if isinstance(answer, pika.spec.Basic.Deliver | pika.spec.Basic.GetOk):
                self.tags.append(answer.delivery_tag)
            elif isinstance(answer, pika.spec.Basic.ConsumeOk):
                self.consumers.append(answer.consumer_tag)
            elif isinstance(answer, pika.spec.Channel.Close):
                self.tags.clear()
                self.consumers.clear()
                self.protocol.data_received(method(1, pika.spec.Channel.CloseOk()))
                self.protocol.data_received(method(1, pika.spec.Channel.Open()))
            elif isinstance(answer, pika.spec.Connection.Close):
                self.protocol.data_received(method(0, pika.spec.Connection.CloseOk()))
                self.protocol.connection_lost(None)
                self.transport.closed = True

    def tag(self, index: int) -> int:
        return self.tags[index % len(self.tags)] if self.tags else index + 1

    def run(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        spec = pika.spec
        if kind == "declare":
            _, queue, durable, which, exclusive = op
            frame = spec.Queue.Declare(
                queue=queue, durable=durable, exclusive=exclusive, arguments=ARGUMENTS[which]
            )
            self.send(method(1, frame))
        elif kind == "publish":
            _, queue, persistent, priority = op
            self.send(
                content(
                    1,
                    spec.Basic.Publish(exchange="", routing_key=queue),
                    b"m",
                    delivery_mode=2 if persistent else 1,
                    priority=priority,
                )
            )
        elif kind == "get":
            self.send(method(1, spec.Basic.Get(queue=op[1], no_ack=op[2])))
        elif kind == "ack":
            self.send(method(1, spec.Basic.Ack(self.tag(op[1]), op[2])))
        elif kind == "nack":
            self.send(method(1, spec.Basic.Nack(self.tag(op[1]), op[2], op[3])))
        elif kind == "reject":
            self.send(method(1, spec.Basic.Reject(self.tag(op[1]), op[2])))
        elif kind == "consume":
            _, queue, no_ack, _ = op
            self.send(method(1, spec.Basic.Consume(queue=queue, no_ack=no_ack)))
        elif kind == "cancel":
            if self.consumers:
                tag = self.consumers.pop(op[1] % len(self.consumers))
                self.send(method(1, spec.Basic.Cancel(tag)))
        elif kind == "purge":
            self.send(method(1, spec.Queue.Purge(queue=op[1])))
        elif kind == "delete":
            self.send(method(1, spec.Queue.Delete(queue=op[1], if_unused=op[2], if_empty=op[3])))
        elif kind == "recover":
            self.send(method(1, spec.Basic.Recover(requeue=True)))
        elif kind == "confirm":
            self.send(method(1, spec.Confirm.Select()))
        elif kind == "tx_select":
            self.send(method(1, spec.Tx.Select()))
        elif kind == "tx_commit":
            self.send(method(1, spec.Tx.Commit()))
        elif kind == "tx_rollback":
            self.send(method(1, spec.Tx.Rollback()))
        elif kind == "qos":
            self.send(method(1, spec.Basic.Qos(prefetch_count=op[1], global_qos=op[2])))
        elif kind == "close_channel":
            self.send(method(1, spec.Channel.Close(200, "bye", 0, 0)))
            self.tags.clear()
            self.consumers.clear()
            self.send(method(1, spec.Channel.Open()))


def check_bookkeeping(vhost: VirtualHost, clients: list[Client]) -> None:
    held: dict[str, int] = {}
    for client in clients:
        for channel in client.protocol.channels.values():
            for queue, _message, _consumer in channel.unacked.values():
                if not queue.deleted:
                    held[queue.name] = held.get(queue.name, 0) + 1
            for consumer in channel.consumers.values():
                assert not consumer.queue.deleted
    for name, queue in vhost.queues.items():
        assert queue.ready_count == sum(len(level) for level in queue.levels) >= 0
        assert queue.published == queue.ready_count + queue.unacked_count + queue.settled
        assert queue.unacked_count == held.get(name, 0)
        assert queue.ready_bytes >= 0


@given(
    st.tuples(st.integers(0, len(ARGUMENTS) - 1), st.integers(0, len(ARGUMENTS) - 1)),
    st.lists(st.tuples(st.integers(0, 1), operations), max_size=40),
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_channel_methods_keep_the_books(
    initial: tuple[int, int], steps: list[tuple[int, tuple[Any, ...]]]
) -> None:
    async def scenario() -> None:
        with tempfile.TemporaryDirectory() as folder:
            vhost = VirtualHost(Path(folder), AmqpPropertiesCodec(), fsync=False)
            server = AmqpServer(vhost=vhost, group_commit=GroupCommit(enabled=False))
            clients = [Client(server), Client(server)]
            for queue, which in zip(QUEUES, initial, strict=True):  # both exist to begin with
                clients[0].run(("declare", queue, which % 2 == 0, which, False))
                clients[0].run(("publish", queue, True, which))
            for who, op in steps:
                clients[who].run(op)
                await asyncio.sleep(0)  # deferred work: dead letters, journal writes
                for client in clients:
                    client.read()
                check_bookkeeping(vhost, clients)
            for client in clients:
                if not client.transport.closed:
                    client.protocol.connection_lost(None)
            check_bookkeeping(vhost, [])
            assert all(not q.consumers for q in vhost.queues.values())
            vhost.close()

    asyncio.run(scenario())
