"""AMQP 0-9-1 throughput and latency benchmark for Firth, and RabbitMQ on the same machine.

In the spirit of RabbitMQ's PerfTest and lavinmqperf. Python clients are a ceiling of their
own (pika near 20,000 msgs/s, aio-pika near 3,000 here), so the load comes from a pipelined
raw client on uvloop: publishes are pre-built frames (method + header + body) written in
large chunks, with at most ``--confirms`` unconfirmed publishes in flight when confirms are
on; the consumer acknowledges with ``multiple`` every ``--ack-every`` deliveries and keeps
``--prefetch`` unacked. Frames are encoded and decoded with Firth's own codec
(``firth.amqp.protocol``), client side.

``--producers N`` publishes each row's messages from N connections at once (the count split
among them, each its own pipelined generator with its own ``--confirms`` window); ``--consumers
N`` drains the queue with N connections sharing the work, each with its own ``--prefetch``. A
publish rate is all messages over the time from the first publish to the last confirm (or, with
no confirms, until a passive declare counts them all); a consume rate is all deliveries over the
time from the first basic.consume to the last delivery. ``--persistent`` or ``--transient`` runs
only that pair of rows; ``--queue-type quorum`` declares the durable and latency queues with
``x-queue-type=quorum`` (the transient queue stays classic: a quorum queue is always durable).

Rows (100-byte messages by default):

1. durable queue, persistent messages, publisher confirms: publish rate;
2. the same queue drained by a consumer with manual acks: consume rate;
3. transient queue, transient messages, no confirms: publish rate (until a passive declare
   counts them all), then consume rate;
4. ``--measure-latency``: publish at ``--rate`` (1,000 msgs/s) for ``--latency-seconds`` to a
   consumer; end-to-end p50/p99 from a timestamp in the body. The same run also measures the
   machine's floor: a round trip through a trivial echo server (another uvloop process) at the
   same rate and size, so a p99 can be read against what the machine does with no broker.

Targets: by default a Firth broker started for the run (``firth serve``, fsync on, fresh temp
folder); ``--url`` measures any broker instead; ``--rabbitmq`` also starts a throwaway
RabbitMQ 3.10 node (Debian's package, see tests/amqp_interop/rabbitmq_node.py) and measures
both in the same run. ``--json`` prints the results as JSON.

    python bench/amqp_throughput.py --messages 200000 --rabbitmq --measure-latency
    python bench/amqp_throughput.py --messages 200000 --producers 3 --consumers 2 --persistent
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import struct
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from firth.amqp.protocol import methods as m
from firth.amqp.protocol.constants import PROTOCOL_HEADER
from firth.amqp.protocol.frames import encode_content, encode_method_frame
from firth.amqp.protocol.methods import decode_method
from firth.amqp.protocol.properties import BasicProperties

FRAME_HEADER = struct.Struct(">BHI")
PHASE_LIMIT_S = 120.0


class Client(asyncio.Protocol):
    """A minimal pipelined AMQP client: handshake, then callbacks per incoming method."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.waiters: list[tuple[type[m.Method], asyncio.Future[m.Method]]] = []
        self.on_ack: Any = None
        self.on_deliver: Any = None
        self.frame_max = 131072
        self._pending_deliver: m.BasicDeliver | None = None
        self._body_left = 0
        self._body_parts: list[bytes] = []
        self.paused = asyncio.Event()
        self.paused.set()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        for _, future in self.waiters:
            if not future.done():
                future.set_exception(ConnectionError("connection lost"))

    def pause_writing(self) -> None:
        self.paused.clear()

    def resume_writing(self) -> None:
        self.paused.set()

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        pos = 0
        size = len(buf)
        while size - pos >= 7:
            kind, _channel, length = FRAME_HEADER.unpack_from(buf, pos)
            end = pos + 7 + length
            if size <= end:
                break
            payload = bytes(buf[pos + 7 : end])
            pos = end + 1
            self._frame(kind, payload)
        del buf[:pos]

    def _frame(self, kind: int, payload: bytes) -> None:
        if kind == 1:
            method = decode_method(payload)
            if isinstance(method, m.BasicAck):
                if self.on_ack is not None:
                    self.on_ack(method.delivery_tag, method.multiple, True)
                return
            if isinstance(method, m.BasicNack):
                if self.on_ack is not None:
                    self.on_ack(method.delivery_tag, method.multiple, False)
                return
            if isinstance(method, m.BasicDeliver):
                self._pending_deliver = method
                return
            if isinstance(method, m.ConnectionClose | m.ChannelClose):
                raise SystemExit(f"broker closed: {method}")
            for index, (wanted, future) in enumerate(self.waiters):
                if isinstance(method, wanted):
                    del self.waiters[index]
                    future.set_result(method)
                    return
        elif kind == 2:
            self._body_left = struct.unpack_from(">Q", payload, 4)[0]
            self._body_parts = []
            if self._body_left == 0:
                self._delivered(b"")
        elif kind == 3:
            self._body_parts.append(payload)
            self._body_left -= len(payload)
            if self._body_left <= 0:
                self._delivered(b"".join(self._body_parts))
        elif kind == 8:
            pass

    def _delivered(self, body: bytes) -> None:
        deliver = self._pending_deliver
        self._pending_deliver = None
        if deliver is not None and self.on_deliver is not None:
            self.on_deliver(deliver.delivery_tag, body)

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    async def call(self, channel: int, method: m.Method, reply: type[m.Method]) -> Any:
        future: asyncio.Future[m.Method] = asyncio.get_running_loop().create_future()
        self.waiters.append((reply, future))
        self.send(encode_method_frame(channel, method))
        return await asyncio.wait_for(future, 30)

    async def handshake(self, user: str, password: str, vhost: str) -> None:
        start: asyncio.Future[m.Method] = asyncio.get_running_loop().create_future()
        self.waiters.append((m.ConnectionStart, start))
        self.send(PROTOCOL_HEADER)
        await asyncio.wait_for(start, 30)
        tune = asyncio.get_running_loop().create_future()
        self.waiters.append((m.ConnectionTune, tune))
        response = f"\0{user}\0{password}".encode()
        self.send(encode_method_frame(0, m.ConnectionStartOk({}, "PLAIN", response, "en_US")))
        tuned = await asyncio.wait_for(tune, 30)
        self.frame_max = tuned.frame_max or 131072
        self.send(encode_method_frame(0, m.ConnectionTuneOk(tuned.channel_max, self.frame_max, 0)))
        await self.call(0, m.ConnectionOpen(vhost), m.ConnectionOpenOk)
        await self.call(1, m.ChannelOpen(), m.ChannelOpenOk)


async def connect(url: str) -> Client:
    parsed = urlparse(url)
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(
        Client, parsed.hostname or "127.0.0.1", parsed.port or 5672
    )
    vhost = unquote(parsed.path[1:]) if parsed.path not in ("", "/") else "/"
    await client.handshake(parsed.username or "guest", parsed.password or "guest", vhost)
    return client


def publish_frame(client: Client, queue: str, body: bytes, persistent: bool) -> bytes:
    properties = BasicProperties(delivery_mode=2 if persistent else 1)
    return encode_content(1, m.BasicPublish("", queue).encode(), properties, body, client.frame_max)


@dataclass
class Result:
    target: str
    row: str
    messages: int
    seconds: float
    rate: float
    extra: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    """The run's settings (size, producers, consumers, confirms, prefetch, ...), for --json."""


async def declare(client: Client, queue: str, durable: bool, queue_type: str = "classic") -> None:
    arguments = {} if queue_type == "classic" else {"x-queue-type": queue_type}
    await client.call(1, m.QueueDelete(queue=queue), m.QueueDeleteOk)
    declare = m.QueueDeclare(queue=queue, durable=durable, arguments=arguments)
    await client.call(1, declare, m.QueueDeclareOk)


def shares(count: int, parts: int) -> list[int]:
    """``count`` split into ``parts`` nearly equal whole shares (the first ones one larger)."""
    return [count // parts + (1 if index < count % parts else 0) for index in range(parts)]


async def timed(work: Callable[[], Awaitable[Any]]) -> float:
    """Seconds ``work()`` takes (the connections it uses are already open)."""
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


def on_each(clients: Sequence[Client], work: Callable[[Client, int], Awaitable[None]]) -> Any:
    """``work(client, index)`` on every client at once, as one awaitable."""
    return asyncio.gather(*(work(client, index) for index, client in enumerate(clients)))


def close_all(clients: Sequence[Client]) -> None:
    for client in clients:
        client.transport.close()  # type: ignore[union-attr]


async def publish_confirmed(
    url: str, queue: str, count: int, size: int, window: int, producers: int = 1
) -> float:
    """Publish ``count`` persistent messages from ``producers`` connections, each keeping at
    most ``window`` unconfirmed: seconds from the first publish to the last confirm."""
    clients = [await connect(url) for _ in range(producers)]
    for client in clients:
        await client.call(1, m.ConfirmSelect(), m.ConfirmSelectOk)
    counts = shares(count, producers)

    async def produce(client: Client, index: int) -> None:
        total = counts[index]
        if total == 0:
            return
        frame = publish_frame(client, queue, b"x" * size, True)
        confirmed = 0
        sent = 0
        more = asyncio.Event()
        done = asyncio.get_running_loop().create_future()

        def on_ack(tag: int, multiple: bool, ok: bool) -> None:
            nonlocal confirmed
            if not ok:
                raise SystemExit("nack")
            confirmed = tag if multiple else max(confirmed, tag)
            more.set()
            if confirmed >= total and not done.done():
                done.set_result(None)

        client.on_ack = on_ack
        while sent < total:
            room = min(window - (sent - confirmed), total - sent)
            if room <= 0:
                more.clear()
                await more.wait()
                continue
            client.send(frame * room)
            sent += room
            await client.paused.wait()
        await asyncio.wait_for(done, PHASE_LIMIT_S)

    elapsed = await timed(lambda: on_each(clients, produce))
    close_all(clients)
    return elapsed


async def publish_unconfirmed(
    url: str, queue: str, count: int, size: int, producers: int = 1
) -> float:
    """Publish ``count`` transient messages from ``producers`` connections without confirms:
    seconds from the first publish until a passive declare counts them all queued."""
    clients = [await connect(url) for _ in range(producers)]
    counts = shares(count, producers)
    chunk = 500

    async def produce(client: Client, index: int) -> None:
        frame = publish_frame(client, queue, b"x" * size, False)
        total = counts[index]
        sent = 0
        while sent < total:
            n = min(chunk, total - sent)
            client.send(frame * n)
            sent += n
            await client.paused.wait()
            await asyncio.sleep(0)

    async def produce_and_count() -> None:
        await on_each(clients, produce)
        while True:  # a passive declare after the last publish: counted once all are queued
            declare = m.QueueDeclare(queue=queue, passive=True)
            ok = await clients[0].call(1, declare, m.QueueDeclareOk)
            if ok.message_count >= count:
                break
            await asyncio.sleep(0.001)

    elapsed = await timed(produce_and_count)
    close_all(clients)
    return elapsed


async def consume(
    url: str, queue: str, count: int, prefetch: int, ack_every: int, consumers: int = 1
) -> float:
    """Drain ``count`` messages with ``consumers`` connections on the same queue, each with
    ``prefetch`` and acking ``multiple`` every ``ack_every``: seconds from the first
    basic.consume to the last delivery."""
    clients = [await connect(url) for _ in range(consumers)]
    for client in clients:
        await client.call(1, m.BasicQos(0, prefetch, False), m.BasicQosOk)
    received = 0
    done = asyncio.get_running_loop().create_future()
    last_tag = [0] * consumers
    acked_tag = [0] * consumers

    def ack(index: int) -> None:
        clients[index].send(encode_method_frame(1, m.BasicAck(last_tag[index], True)))
        acked_tag[index] = last_tag[index]

    def deliverer(index: int) -> Callable[[int, bytes], None]:
        def on_deliver(tag: int, body: bytes) -> None:
            nonlocal received
            received += 1
            last_tag[index] = tag
            if tag - acked_tag[index] >= ack_every:
                ack(index)
            if received >= count and not done.done():
                for other in range(consumers):  # the last deliveries, on every connection
                    if last_tag[other] > acked_tag[other]:
                        ack(other)
                done.set_result(None)

        return on_deliver

    for index, client in enumerate(clients):
        client.on_deliver = deliverer(index)

    async def start(client: Client, index: int) -> None:
        basic_consume = m.BasicConsume(queue=queue, consumer_tag=f"bench-{index}")
        await client.call(1, basic_consume, m.BasicConsumeOk)

    async def start_all_and_wait() -> None:
        await on_each(clients, start)
        await asyncio.wait_for(done, PHASE_LIMIT_S)

    elapsed = await timed(start_all_and_wait)
    close_all(clients)
    return elapsed


async def latency(url: str, queue: str, rate: int, seconds: float, size: int) -> list[float]:
    consumer = await connect(url)
    producer = await connect(url)
    await consumer.call(1, m.BasicQos(0, 1000, False), m.BasicQosOk)
    samples: list[float] = []
    warmup_until = time.perf_counter() + 1.0

    def on_deliver(tag: int, body: bytes) -> None:
        (sent,) = struct.unpack_from(">d", body)
        now = time.perf_counter()
        if now >= warmup_until:
            samples.append((now - sent) * 1000)
        consumer.send(encode_method_frame(1, m.BasicAck(tag, False)))

    consumer.on_deliver = on_deliver
    await consumer.call(1, m.BasicConsume(queue=queue, consumer_tag="lat"), m.BasicConsumeOk)
    await producer.call(1, m.ConfirmSelect(), m.ConfirmSelectOk)
    producer.on_ack = lambda *a: None
    interval = 1 / rate
    end = time.perf_counter() + seconds + 1.0
    next_at = time.perf_counter()
    padding = b"x" * max(0, size - 8)
    while time.perf_counter() < end:
        now = time.perf_counter()
        while next_at <= now:
            body = struct.pack(">d", time.perf_counter()) + padding
            producer.send(publish_frame(producer, queue, body, True))
            next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    await asyncio.sleep(0.5)
    consumer.transport.close()  # type: ignore[union-attr]
    producer.transport.close()  # type: ignore[union-attr]
    return samples


ECHO_SERVER = """
import asyncio, sys, uvloop
class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
    def data_received(self, data):
        self.transport.write(data)
async def main():
    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(3600)
uvloop.run(main())
"""


class _EchoClient(asyncio.Protocol):
    def __init__(self, size: int, warmup_until: float) -> None:
        self.size = size
        self.buffer = b""
        self.samples: list[float] = []
        self.warmup_until = warmup_until
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= self.size:
            (sent,) = struct.unpack_from(">d", self.buffer)
            self.buffer = self.buffer[self.size :]
            now = time.perf_counter()
            if now >= self.warmup_until:
                self.samples.append((now - sent) * 1000)


async def echo_floor(rate: int, seconds: float, size: int) -> list[float]:
    """Round trips through a trivial echo server process at ``rate``: the machine's floor."""
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ECHO_SERVER, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert server.stdout is not None
        port = int(await asyncio.wait_for(server.stdout.readline(), 30))
        size = max(size, 8)
        _, client = await asyncio.get_running_loop().create_connection(
            lambda: _EchoClient(size, time.perf_counter() + 1.0), "127.0.0.1", port
        )
        padding = b"x" * (size - 8)
        interval = 1 / rate
        end = time.perf_counter() + seconds + 1.0
        next_at = time.perf_counter()
        while time.perf_counter() < end:
            now = time.perf_counter()
            while next_at <= now:
                client.transport.write(struct.pack(">d", time.perf_counter()) + padding)  # type: ignore[union-attr]
                next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        await asyncio.sleep(0.5)
        client.transport.close()  # type: ignore[union-attr]
        return client.samples
    finally:
        server.kill()
        await server.wait()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def row_names(args: argparse.Namespace) -> dict[str, str]:
    """The table's row names; the defaults (1 producer, 1 consumer, classic) name no counts."""
    producers = f", {args.producers} producers" if args.producers > 1 else ""
    consumers = f", {args.consumers} consumers" if args.consumers > 1 else ""
    durable = "durable" if args.queue_type == "classic" else args.queue_type
    kind = "" if args.queue_type == "classic" else f"{args.queue_type}, "
    return {
        "persistent publish": f"{durable} persistent publish (confirms{producers})",
        "persistent consume": f"{durable} persistent consume (manual ack{consumers})",
        "transient publish": f"transient publish (no confirms{producers})",
        "transient consume": f"transient consume (manual ack{consumers})",
        "latency": f"latency at {args.rate} msgs/s ({kind}persistent, confirms)",
    }


async def measure(target: str, url: str, args: argparse.Namespace) -> list[Result]:
    results = []
    names = row_names(args)
    setup = await connect(url)
    durable_q, transient_q, latency_q = "bench-durable", "bench-transient", "bench-latency"
    await declare(setup, durable_q, True, args.queue_type)
    await declare(setup, transient_q, False)
    await declare(setup, latency_q, True, args.queue_type)
    n = args.messages
    if not args.transient:
        seconds = await publish_confirmed(
            url, durable_q, n, args.size, args.confirms, args.producers
        )
        results.append(Result(target, names["persistent publish"], n, seconds, n / seconds))
        seconds = await consume(url, durable_q, n, args.prefetch, args.ack_every, args.consumers)
        results.append(Result(target, names["persistent consume"], n, seconds, n / seconds))
    if not args.persistent:
        seconds = await publish_unconfirmed(url, transient_q, n, args.size, args.producers)
        results.append(Result(target, names["transient publish"], n, seconds, n / seconds))
        seconds = await consume(url, transient_q, n, args.prefetch, args.ack_every, args.consumers)
        results.append(Result(target, names["transient consume"], n, seconds, n / seconds))
    if args.measure_latency:
        samples = await latency(url, latency_q, args.rate, args.latency_seconds, args.size)
        results.append(
            Result(
                target,
                names["latency"],
                len(samples),
                args.latency_seconds,
                args.rate,
                {"p50_ms": percentile(samples, 0.5), "p99_ms": percentile(samples, 0.99)},
            )
        )
    for queue in (durable_q, transient_q, latency_q):
        await setup.call(1, m.QueueDelete(queue=queue), m.QueueDeleteOk)
    setup.transport.close()  # type: ignore[union-attr]
    return results


@contextlib.contextmanager
def firth_broker(keep: bool) -> Iterator[str]:
    from firth.testing import broker_process

    folder = Path(tempfile.mkdtemp(prefix="firth-amqp-bench-"))
    try:
        with broker_process(folder / "data", amqp_listen="127.0.0.1:0", log_level="WARNING") as p:
            assert p.amqp_url is not None
            yield p.amqp_url
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def rabbitmq_broker() -> Iterator[str]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.amqp_interop.rabbitmq_node import RabbitMQNode

    node = RabbitMQNode()
    node.start()
    try:
        yield node.url
    finally:
        node.stop()


def run_loop(coroutine: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coroutine)
    except ImportError:
        return asyncio.run(coroutine)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=positive, default=200_000, help="per throughput row")
    parser.add_argument("--size", type=int, default=100, help="body bytes")
    parser.add_argument(
        "-x", "--producers", type=positive, default=1, help="publishing connections, sharing a row"
    )
    parser.add_argument(
        "-y", "--consumers", type=positive, default=1, help="consuming connections on the queue"
    )
    parser.add_argument(
        "--confirms", type=positive, default=2000, help="unconfirmed publishes in flight, each"
    )
    parser.add_argument("--prefetch", type=positive, default=2000, help="consumer prefetch, each")
    parser.add_argument("--ack-every", type=positive, default=100, help="ack multiple every N")
    rows = parser.add_mutually_exclusive_group()
    rows.add_argument(
        "--persistent", action="store_true", help="only the durable, persistent, confirmed rows"
    )
    rows.add_argument(
        "--transient", action="store_true", help="only the transient, unconfirmed rows"
    )
    parser.add_argument(
        "--queue-type",
        choices=("classic", "quorum"),
        default="classic",
        help="x-queue-type of the durable and latency queues",
    )
    parser.add_argument("--measure-latency", action="store_true")
    parser.add_argument("--rate", type=positive, default=1000, help="msgs/s of the latency run")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--url", help="measure this broker instead of starting Firth")
    parser.add_argument("--rabbitmq", action="store_true", help="also measure RabbitMQ 3.10")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep-data", action="store_true")
    return parser.parse_args(argv)


def parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The settings a row was measured with, recorded in --json."""
    names = ("messages", "size", "producers", "consumers", "confirms", "prefetch", "ack_every")
    recorded: dict[str, Any] = {name: getattr(args, name) for name in names}
    recorded["rows"] = (
        "persistent" if args.persistent else "transient" if args.transient else "both"
    )
    recorded["queue_type"] = args.queue_type
    if args.measure_latency:
        recorded["rate"] = args.rate
        recorded["latency_seconds"] = args.latency_seconds
    return recorded


def main() -> int:
    args = parse_args()
    results: list[Result] = []
    if args.url:
        results += run_loop(measure("given", args.url, args))
    else:
        with firth_broker(args.keep_data) as url:
            results += run_loop(measure("firth", url, args))
    if args.rabbitmq:
        with rabbitmq_broker() as url:
            results += run_loop(measure("rabbitmq", url, args))
    if args.measure_latency:
        samples = run_loop(echo_floor(args.rate, args.latency_seconds, args.size))
        results.append(
            Result(
                "machine",
                f"tcp echo round trip at {args.rate} msgs/s (floor)",
                len(samples),
                args.latency_seconds,
                args.rate,
                {"p50_ms": percentile(samples, 0.5), "p99_ms": percentile(samples, 0.99)},
            )
        )
    for r in results:
        r.parameters = parameters(args)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=1))
    else:
        width = max([48] + [len(r.row) for r in results])
        for r in results:
            extra = " ".join(f"{k}={v:.2f}" for k, v in r.extra.items())
            print(f"{r.target:9} {r.row:{width}} {r.rate:>10,.0f} msgs/s  {extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
