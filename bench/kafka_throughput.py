"""Kafka throughput and latency benchmark for a Firth broker (issue 2, "Benchmark").

Starts its own broker (`firth serve`, default durability: acks=all answered after fsync) on a free
loopback port with a fresh temporary data folder, measures, stops it, and prints one table.

Two load generators, because a Python client is a ceiling of its own:

(a) confluent-kafka as a user would run it. Producer: acks=all, linger.ms=5, batch.size=1 MiB,
    batch.num.messages=100000, queue.buffering.max.messages=1000000, no compression, delivery
    reports only for errors, no key and no explicit partition (the default sticky
    partitioner spreads batches over the partitions). Consumer: assign() every partition from the beginning,
    consume(num_messages=10000) in a loop, each message's error checked.
(b) a pipelined raw client on uvloop that sends pre-built Produce v7 requests (one batch of
    `--batch` records per partition, built with firth.kafka.protocol.records.build_batch),
    keeping `--in-flight` requests outstanding on each of `--connections` sockets and checking
    every partition's error code in the responses; and a raw Fetch v11 reader, one long-poll
    request in flight per connection, that walks batch headers without decoding records. Here
    the broker is what is measured.

Every measurement runs `--repeat` times (default 3) on a fresh topic; the table shows the median.
Broker CPU is (user + system seconds) / wall seconds of the broker process during the phase,
from /proc/<pid>/stat, so 1.0 is one core busy. Latency is end to end (produce call to the
consumer holding the message) at a steady `--rate` (10,000 msgs/s) for `--latency-seconds`,
the first second discarded.

    python bench/kafka_throughput.py --mode all
    python bench/kafka_throughput.py --mode b --messages 3000000 --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from firth.kafka.protocol.framing import FrameReader
from firth.kafka.protocol.header import RequestHeader, encode_request_header
from firth.kafka.protocol.records import Record, build_batch, decode_batch

TICK_S = 0.001
"""The latency runs' producers send what is due once per tick (one request per millisecond)."""
PHASE_LIMIT_S = 60.0
"""No phase runs longer than this; a phase that hits it reports what it did so far."""

CLIENT_ID = "firth-bench"
PRODUCE_VERSION = 7  # non-flexible: fixed-width response fields, easy to parse exactly
FETCH_VERSION = 11  # non-flexible, topics by name
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_TS = struct.Struct(">q")
_PRODUCE_PARTITION = struct.Struct(">ihqqq")  # index, error, base offset, append time, start
_FETCH_PARTITION = struct.Struct(">ihqqq")  # index, error, high watermark, last stable, start


# --- the broker under test ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Broker:
    """A `firth serve` subprocess with its own temporary data folder.

    Every run gets a fresh topic, and topics are kept until the broker stops and the folder is
    removed, so that no measurement overlaps with the file system reclaiming a deleted topic.
    """

    def __init__(self, keep_data: bool = False) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="firth-bench-"))
        self.port = free_port()
        self.keep_data = keep_data
        self.process: subprocess.Popen[bytes] | None = None
        self._ticks = os.sysconf("SC_CLK_TCK")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "firth",
            "serve",
            "--data-dir",
            str(self.data_dir / "data"),
            "--kafka-listen",
            self.bootstrap,
            "--log-level",
            "WARNING",
        ]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"broker exited with {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("broker did not start listening within 30 s")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the broker has used so far (all its threads)."""
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        # After the ")" closing comm, fields[0] is field 3 (state); utime, stime are 14 and 15.
        return (int(fields[11]) + int(fields[12])) / self._ticks

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self.keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def create_topic(broker: Broker, name: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=30)
    futures[name].result(timeout=30)


# --- results ------------------------------------------------------------------------------------


@dataclass
class Phase:
    """One measured run: messages moved, payload bytes, wall seconds, broker CPU seconds."""

    messages: int
    payload_bytes: int
    seconds: float
    cpu_seconds: float
    complete: bool = True

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def megabytes_per_s(self) -> float:
        return self.payload_bytes / self.seconds / 1e6 if self.seconds else 0.0

    @property
    def cpu(self) -> float:
        return self.cpu_seconds / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_message(self) -> float:
        """Broker CPU per message: steadier than rates on a machine shared with other work."""
        return self.cpu_seconds / self.messages * 1e6 if self.messages else 0.0


@dataclass
class Latency:
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    cpu: float


@dataclass
class GeneratorResult:
    name: str
    produce: list[Phase] = field(default_factory=list)
    consume: list[Phase] = field(default_factory=list)
    latency: list[Latency] = field(default_factory=list)


PROFILE_DIR: Path | None = None
"""Set by --profile: each phase records a py-spy profile of the broker there."""


@contextlib.contextmanager
def profiled(broker: Broker, name: str) -> Iterator[None]:
    """Run py-spy on the broker for the duration of the block (if --profile was given)."""
    if PROFILE_DIR is None:
        yield
        return
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    out = PROFILE_DIR / f"{name}.txt"
    command = ["py-spy", "record", "-f", "raw", "-r", "200", "--nonblocking", "--threads"]
    spy = subprocess.Popen(
        [*command, "-o", str(out), "--pid", str(broker.pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # py-spy attaches asynchronously; give it a moment before the load starts
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
        if out.exists():
            (PROFILE_DIR / f"{name}.summary.txt").write_text(summarise_profile(out))


def summarise_profile(path: Path, top: int = 25) -> str:
    """Where the broker's samples went: per thread, then the event-loop thread's functions by
    cumulative and by own (self) share. Input is py-spy's raw (collapsed stack) format."""
    threads: Counter[str] = Counter()
    cumulative: Counter[str] = Counter()
    own: Counter[str] = Counter()
    main = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0].rpartition(": ")[2] if ": " in frames[0] else frames[0]
        threads[thread] += count
        if thread != "MainThread":
            continue
        main += count
        functions = [frame.rpartition(":")[0] + ")" if ":" in frame else frame for frame in frames]
        own[frames[-1]] += count
        for function in set(functions[1:]):
            cumulative[function] += count
    lines = ["samples by thread: " + ", ".join(f"{t} {c}" for t, c in threads.most_common())]
    lines.append(f"\nevent-loop thread, cumulative ({main} samples):")
    lines += [f"{100 * c / main:5.1f}%  {f}" for f, c in cumulative.most_common(top)]
    lines.append("\nevent-loop thread, own time by line:")
    lines += [f"{100 * c / main:5.1f}%  {f}" for f, c in own.most_common(top)]
    return "\n".join(lines) + "\n"


def measured(broker: Broker, name: str, run: Callable[[], tuple[int, int, bool]]) -> Phase:
    with profiled(broker, name):
        cpu_before = broker.cpu_seconds()
        start = time.perf_counter()
        messages, payload, complete = run()
        seconds = time.perf_counter() - start
    return Phase(messages, payload, seconds, broker.cpu_seconds() - cpu_before, complete)


def latency_summary(samples_ns: list[int], cpu: float) -> Latency:
    if not samples_ns:
        return Latency(0, float("nan"), float("nan"), float("nan"), cpu)
    ordered = sorted(samples_ns)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6

    return Latency(len(ordered), pick(0.50), pick(0.99), ordered[-1] / 1e6, cpu)


# --- (a) confluent-kafka ------------------------------------------------------------------------


def confluent_producer_config(bootstrap: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "linger.ms": 5,
        "batch.size": 1024 * 1024,
        "batch.num.messages": 100_000,
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1024 * 1024,
        "enable.idempotence": False,
        "delivery.report.only.error": True,
    }


def confluent_consumer_config(bootstrap: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "group.id": f"firth-bench-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        "fetch.max.bytes": 50 * 1024 * 1024,
        "max.partition.fetch.bytes": 4 * 1024 * 1024,
        "queued.min.messages": 1_000_000,
        # With a full local queue librdkafka waits this long before fetching again (1 s by
        # default), which left the consumer idle; 1 ms keeps the queue topped up.
        "fetch.queue.backoff.ms": 1,
    }


def confluent_produce(topic: str, args: argparse.Namespace, bootstrap: str) -> Callable[[], Any]:
    from confluent_kafka import Producer

    errors: list[Any] = []

    def on_error(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(err)

    # No key and no explicit partition, as most applications produce: librdkafka's default
    # partitioner then fills one partition's batch at a time (sticky partitioning). Choosing
    # partition=i % 6 per message instead cost the client about 40% of its rate here.
    producer = Producer(confluent_producer_config(bootstrap) | {"on_delivery": on_error})
    value = os.urandom(args.size)

    def run() -> tuple[int, int, bool]:
        produce = producer.produce
        poll = producer.poll
        deadline = time.monotonic() + PHASE_LIMIT_S
        sent = 0
        while sent < args.messages:
            try:
                produce(topic, value)
            except BufferError:
                poll(0.001)
                if time.monotonic() > deadline:
                    break
                continue
            sent += 1
            if not sent & 0x3FF:
                poll(0)
        left = producer.flush(max(1.0, deadline - time.monotonic()))
        if errors:
            raise RuntimeError(f"{len(errors)} delivery errors, first: {errors[0]}")
        done = sent - left
        return done, done * args.size, done == args.messages

    return run


def consume_partitions(
    topic: str,
    partitions: list[int],
    expected: int,
    bootstrap: str,
    ready: Callable[[], object] = lambda: None,
) -> tuple[int, int]:
    """Read `partitions` of `topic` from the beginning until `expected` messages (or the phase
    limit); returns (messages, value bytes). `ready` is called once the consumer is assigned."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(confluent_consumer_config(bootstrap))
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    ready()
    deadline = time.monotonic() + PHASE_LIMIT_S
    count = 0
    payload = 0
    try:
        while count < expected and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=10_000, timeout=1.0):
                if message.error():
                    raise RuntimeError(f"consume error: {message.error()}")
                count += 1
                payload += len(message.value() or b"")
    finally:
        consumer.close()
    return count, payload


def _consumer_process(
    topic: str,
    partitions: list[int],
    expected: int,
    bootstrap: str,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    """One of --consumers processes: opens its consumer, meets the others and the parent at
    `ready`, waits for `go`, consumes its share and reports (messages, value bytes)."""

    def wait_for_start() -> None:
        ready.wait()
        go.wait()

    results.put(consume_partitions(topic, partitions, expected, bootstrap, wait_for_start))


def confluent_consume(topic: str, args: argparse.Namespace, bootstrap: str) -> Callable[[], Any]:
    """One consumer in this process, or --consumers processes each assigned a share of the
    partitions (started before the clock starts)."""
    if args.consumers == 1:
        partitions = list(range(args.partitions))

        def run_one() -> tuple[int, int, bool]:
            count, payload = consume_partitions(topic, partitions, args.messages, bootstrap)
            return count, payload, count >= args.messages

        return run_one

    import multiprocessing

    from confluent_kafka import Consumer, TopicPartition

    probe = Consumer(confluent_consumer_config(bootstrap))
    ends = [
        probe.get_watermark_offsets(TopicPartition(topic, p))[1] for p in range(args.partitions)
    ]
    probe.close()
    context = multiprocessing.get_context("spawn")  # no fork of a process with librdkafka threads
    ready = context.Barrier(args.consumers + 1, timeout=120)
    go = context.Event()
    results = context.Queue()
    processes = []
    for i in range(args.consumers):
        share = list(range(args.partitions))[i :: args.consumers]
        expected = sum(ends[p] for p in share)
        process = context.Process(
            target=_consumer_process,
            args=(topic, share, expected, bootstrap, ready, go, results),
        )
        process.start()
        processes.append(process)
    ready.wait()  # every consumer is open and assigned before `measured` starts the clock

    def run_many() -> tuple[int, int, bool]:
        go.set()
        counts = [results.get(timeout=PHASE_LIMIT_S + 30) for _ in processes]
        for process in processes:
            process.join(10)
        count = sum(c for c, _ in counts)
        return count, sum(p for _, p in counts), count >= sum(ends)

    return run_many


def confluent_latency(topic: str, args: argparse.Namespace, broker: Broker) -> Latency:
    from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition

    producer = Producer(confluent_producer_config(broker.bootstrap))
    consumer = Consumer(confluent_consumer_config(broker.bootstrap))
    consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in range(args.partitions)])
    samples: list[int] = []
    stop = threading.Event()
    ready = threading.Event()
    padding = os.urandom(max(0, args.size - _TS.size))

    def consume() -> None:
        # poll(), not consume(n): consume waits until n messages or its timeout, adding delay.
        while not stop.is_set():
            message = consumer.poll(0.05)
            now = time.perf_counter_ns()
            ready.set()
            value = message.value() if message is not None and not message.error() else None
            if value is not None:
                samples.append(now - _TS.unpack_from(value)[0])

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    if not ready.wait(30):
        raise RuntimeError("consumer did not start")
    cpu_before = broker.cpu_seconds()
    started = time.perf_counter()
    warmup_until = started + 1.0
    warmup_mark = 0
    sent = 0
    while (now := time.perf_counter()) - started < args.latency_seconds:
        due = int((now - started) * args.rate)
        while sent < due:
            ts = time.perf_counter_ns()
            producer.produce(topic, _TS.pack(ts) + padding)
            sent += 1
            if now < warmup_until:
                warmup_mark = len(samples)
        producer.poll(0)
        time.sleep(TICK_S)
    producer.flush(10)
    seconds = time.perf_counter() - started
    cpu = (broker.cpu_seconds() - cpu_before) / seconds
    deadline = time.monotonic() + 5
    while len(samples) < sent and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    reader.join(5)
    consumer.close()
    kept = samples[warmup_mark:] if sent else samples
    return latency_summary(kept, cpu)


def run_confluent(broker: Broker, args: argparse.Namespace) -> GeneratorResult:
    result = GeneratorResult("(a) confluent-kafka")
    for i in range(args.repeat):
        topic = f"bench-a-{i}-{uuid.uuid4().hex[:6]}"
        create_topic(broker, topic, args.partitions)
        produce = confluent_produce(topic, args, broker.bootstrap)
        result.produce.append(measured(broker, f"a-produce-{i}", produce))
        consume = confluent_consume(topic, args, broker.bootstrap)
        result.consume.append(measured(broker, f"a-consume-{i}", consume))
        report_progress(result, i)
    if args.latency_seconds > 0:
        for i in range(args.repeat):
            topic = f"bench-a-lat-{i}-{uuid.uuid4().hex[:6]}"
            create_topic(broker, topic, args.partitions)
            with profiled(broker, f"a-latency-{i}"):
                result.latency.append(confluent_latency(topic, args, broker))
                print(f"  {result.name} latency run {i + 1}: {result.latency[-1]}", file=sys.stderr)
    return result


# --- (b) pipelined raw client -------------------------------------------------------------------


def request_prefix(api_key: int, version: int, correlation_id: int, body_size: int) -> bytes:
    header = encode_request_header(RequestHeader(api_key, version, correlation_id, CLIENT_ID))
    return _I32.pack(len(header) + body_size) + header


def legacy_string(text: str) -> bytes:
    raw = text.encode()
    return _I16.pack(len(raw)) + raw


def produce_body(topic: str, batches: list[bytes], acks: int = -1) -> bytes:
    """A Produce v3-v8 body: one topic, batch i for partition i."""
    parts = [_I16.pack(-1), _I16.pack(acks), _I32.pack(30_000), _I32.pack(1), legacy_string(topic)]
    parts.append(_I32.pack(len(batches)))
    for index, batch in enumerate(batches):
        parts += [_I32.pack(index), _I32.pack(len(batch)), batch]
    return b"".join(parts)


def parse_produce_response(frame: memoryview) -> list[int]:
    """Error codes of every partition in a Produce v5-v7 response."""
    pos = 4  # correlation id
    errors = []
    (topics,) = _I32.unpack_from(frame, pos)
    pos += 4
    for _ in range(topics):
        (name_len,) = _I16.unpack_from(frame, pos)
        pos += 2 + name_len
        (partitions,) = _I32.unpack_from(frame, pos)
        pos += 4
        for _ in range(partitions):
            errors.append(_PRODUCE_PARTITION.unpack_from(frame, pos)[1])
            pos += _PRODUCE_PARTITION.size
    return errors


def fetch_body(topic: str, offsets: dict[int, int], max_wait_ms: int, min_bytes: int) -> bytes:
    """A Fetch v11 body for `offsets` (partition -> fetch offset) of one topic."""
    parts = [
        struct.pack(">iiiibii", -1, max_wait_ms, min_bytes, 50 * 1024 * 1024, 0, 0, -1),
        _I32.pack(1),
        legacy_string(topic),
        _I32.pack(len(offsets)),
    ]
    for partition, offset in offsets.items():
        parts.append(struct.pack(">iiqqi", partition, -1, offset, -1, 4 * 1024 * 1024))
    parts += [_I32.pack(0), legacy_string("")]
    return b"".join(parts)


def parse_fetch_response(frame: memoryview) -> list[tuple[int, int, memoryview]]:
    """(partition, error code, records) for every partition of a Fetch v11 response."""
    pos = 4 + 4 + 2 + 4  # correlation id, throttle, error code, session id
    out = []
    (topics,) = _I32.unpack_from(frame, pos)
    pos += 4
    for _ in range(topics):
        (name_len,) = _I16.unpack_from(frame, pos)
        pos += 2 + name_len
        (partitions,) = _I32.unpack_from(frame, pos)
        pos += 4
        for _ in range(partitions):
            index, error, _hw, _ls, _start = _FETCH_PARTITION.unpack_from(frame, pos)
            pos += _FETCH_PARTITION.size
            (aborted,) = _I32.unpack_from(frame, pos)
            pos += 4 + max(0, aborted) * 16
            pos += 4  # preferred read replica
            (size,) = _I32.unpack_from(frame, pos)
            pos += 4
            size = max(0, size)
            out.append((index, error, frame[pos : pos + size]))
            pos += size
    return out


def walk_batches(records: memoryview) -> tuple[int, int, list[tuple[int, memoryview]]]:
    """(records count, next offset, [(base offset, batch)]) of the whole batches in `records`."""
    pos = 0
    count = 0
    next_offset = -1
    batches = []
    end = len(records)
    while end - pos >= 61:
        base_offset, length = struct.unpack_from(">qi", records, pos)
        size = length + 12
        if pos + size > end:
            break
        (last_delta,) = _I32.unpack_from(records, pos + 23)
        (records_count,) = _I32.unpack_from(records, pos + 57)
        count += records_count
        next_offset = base_offset + last_delta + 1
        batches.append((base_offset, records[pos : pos + size]))
        pos += size
    return count, next_offset, batches


class RawConnection(asyncio.Protocol):
    """A pipelined Kafka connection: responses come back in request order."""

    def __init__(self) -> None:
        self.reader = FrameReader()
        self.transport: asyncio.Transport | None = None
        self.pending: deque[asyncio.Future[memoryview]] = deque()
        self.correlation_id = 0
        self.lost: Exception | None = None

    @classmethod
    async def open(cls, port: int) -> RawConnection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(cls, "127.0.0.1", port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (frame := self.reader.next_frame()) is not None:
            future = self.pending.popleft()
            if not future.done():
                future.set_result(frame)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionError("broker closed the connection")
        while self.pending:
            future = self.pending.popleft()
            if not future.done():
                future.set_exception(self.lost)

    def send(self, api_key: int, version: int, body: bytes) -> asyncio.Future[memoryview]:
        if self.lost is not None:
            raise self.lost
        assert self.transport is not None
        self.correlation_id += 1
        self.transport.writelines(
            [request_prefix(api_key, version, self.correlation_id, len(body)), body]
        )
        future: asyncio.Future[memoryview] = asyncio.get_running_loop().create_future()
        self.pending.append(future)
        return future

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def bench_batches(partitions: int, per_batch: int, size: int) -> list[bytes]:
    now = int(time.time() * 1000)
    value = os.urandom(size)
    records = [Record(i, 0, None, value) for i in range(per_batch)]
    return [build_batch(records, base_timestamp=now) for _ in range(partitions)]


async def raw_produce(topic: str, args: argparse.Namespace, port: int) -> tuple[int, int, bool]:
    body = produce_body(topic, bench_batches(args.partitions, args.batch, args.size))
    per_request = args.partitions * args.batch
    requests = -(-args.messages // per_request)
    connections = [await RawConnection.open(port) for _ in range(args.connections)]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PHASE_LIMIT_S
    state = {"sent": 0, "acked": 0}

    async def pump(connection: RawConnection) -> None:
        window: deque[asyncio.Future[memoryview]] = deque()
        while state["sent"] < requests or window:
            while state["sent"] < requests and len(window) < args.in_flight:
                if loop.time() > deadline:
                    break
                state["sent"] += 1
                window.append(connection.send(0, PRODUCE_VERSION, body))
            if not window:
                return
            frame = await window.popleft()
            errors = parse_produce_response(frame)
            if any(errors):
                raise RuntimeError(f"produce errors {errors}")
            state["acked"] += 1

    try:
        await asyncio.gather(*(pump(c) for c in connections))
    finally:
        for connection in connections:
            connection.close()
    messages = state["acked"] * per_request
    return messages, messages * args.size, messages >= args.messages


async def raw_fetch(topic: str, args: argparse.Namespace, port: int, expected: int) -> Any:
    connections = [await RawConnection.open(port) for _ in range(args.connections)]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PHASE_LIMIT_S
    state = {"count": 0}

    async def reader(connection: RawConnection, partitions: list[int]) -> None:
        offsets = dict.fromkeys(partitions, 0)
        while state["count"] < expected and loop.time() < deadline:
            frame = await connection.send(1, FETCH_VERSION, fetch_body(topic, offsets, 500, 1))
            for index, error, records in parse_fetch_response(frame):
                if error:
                    raise RuntimeError(f"fetch error {error} on partition {index}")
                count, next_offset, _ = walk_batches(records)
                if count:
                    state["count"] += count
                    offsets[index] = next_offset

    shares = [list(range(args.partitions))[i :: len(connections)] for i in range(len(connections))]
    try:
        await asyncio.gather(*(reader(c, s) for c, s in zip(connections, shares, strict=True) if s))
    finally:
        for connection in connections:
            connection.close()
    count = state["count"]
    return count, count * args.size, count >= expected


async def raw_latency(topic: str, args: argparse.Namespace, broker: Broker) -> Latency:
    producer = await RawConnection.open(broker.port)
    fetcher = await RawConnection.open(broker.port)
    loop = asyncio.get_running_loop()
    samples: list[int] = []
    padding = os.urandom(max(0, args.size - _TS.size))
    stop = asyncio.Event()
    acks: deque[asyncio.Future[memoryview]] = deque()

    async def fetch_loop() -> None:
        offsets = dict.fromkeys(range(args.partitions), 0)
        while not stop.is_set():
            frame = await fetcher.send(1, FETCH_VERSION, fetch_body(topic, offsets, 100, 1))
            now = time.perf_counter_ns()
            for index, error, records in parse_fetch_response(frame):
                if error:
                    raise RuntimeError(f"fetch error {error}")
                _, next_offset, batches = walk_batches(records)
                for base_offset, batch in batches:
                    _, decoded = decode_batch(batch)
                    for record in decoded:
                        if base_offset + record.offset_delta >= offsets[index]:
                            assert record.value is not None
                            samples.append(now - _TS.unpack_from(record.value)[0])
                if next_offset >= 0:
                    offsets[index] = next_offset

    reader = asyncio.ensure_future(fetch_loop())
    cpu_before = broker.cpu_seconds()
    started = time.perf_counter()
    sent = 0
    partition = 0
    warmup_mark = 0
    while (now := time.perf_counter()) - started < args.latency_seconds:
        due = int((now - started) * args.rate)
        if due > sent:
            base = int(time.time() * 1000)
            ts = time.perf_counter_ns()
            records = [Record(i, 0, None, _TS.pack(ts) + padding) for i in range(due - sent)]
            batch = build_batch(records, base_timestamp=base)
            body = produce_body_one(topic, partition, batch)
            acks.append(producer.send(0, PRODUCE_VERSION, body))
            partition = (partition + 1) % args.partitions
            sent = due
            if now - started < 1.0:
                warmup_mark = len(samples)
        while acks and acks[0].done():
            errors = parse_produce_response(acks.popleft().result())
            if any(errors):
                raise RuntimeError(f"produce errors {errors}")
        await asyncio.sleep(TICK_S)
    if acks:
        await asyncio.wait(list(acks), timeout=10)
    seconds = time.perf_counter() - started
    cpu = (broker.cpu_seconds() - cpu_before) / seconds
    deadline = loop.time() + 5
    while len(samples) < sent and loop.time() < deadline:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait([reader], timeout=2)
    reader.cancel()
    producer.close()
    fetcher.close()
    return latency_summary(samples[warmup_mark:], cpu)


def produce_body_one(topic: str, partition: int, batch: bytes) -> bytes:
    parts = [_I16.pack(-1), _I16.pack(-1), _I32.pack(30_000), _I32.pack(1), legacy_string(topic)]
    parts += [_I32.pack(1), _I32.pack(partition), _I32.pack(len(batch)), batch]
    return b"".join(parts)


def run_async(coroutine: Coroutine[Any, Any, Any]) -> Any:
    import uvloop

    return uvloop.run(coroutine)


def run_pipelined(broker: Broker, args: argparse.Namespace) -> GeneratorResult:
    result = GeneratorResult("(b) pipelined raw")
    for i in range(args.repeat):
        topic = f"bench-b-{i}-{uuid.uuid4().hex[:6]}"
        create_topic(broker, topic, args.partitions)
        produced = measured(
            broker, f"b-produce-{i}", partial(run_async, raw_produce(topic, args, broker.port))
        )
        result.produce.append(produced)
        fetch = raw_fetch(topic, args, broker.port, produced.messages)
        result.consume.append(measured(broker, f"b-consume-{i}", partial(run_async, fetch)))
        report_progress(result, i)
    if args.latency_seconds > 0:
        for i in range(args.repeat):
            topic = f"bench-b-lat-{i}-{uuid.uuid4().hex[:6]}"
            create_topic(broker, topic, args.partitions)
            with profiled(broker, f"b-latency-{i}"):
                result.latency.append(run_async(raw_latency(topic, args, broker)))
                print(f"  {result.name} latency run {i + 1}: {result.latency[-1]}", file=sys.stderr)
    return result


# --- report -------------------------------------------------------------------------------------


def report_progress(result: GeneratorResult, i: int) -> None:
    p, c = result.produce[-1], result.consume[-1]
    print(
        f"  {result.name} run {i + 1}: produce {p.rate:,.0f} msgs/s (cpu {p.cpu:.2f}, "
        f"{p.cpu_us_per_message:.2f} us/msg"
        f"{'' if p.complete else ', INCOMPLETE'}), consume {c.rate:,.0f} msgs/s "
        f"(cpu {c.cpu:.2f}, {c.cpu_us_per_message:.2f} us/msg{'' if c.complete else ', INCOMPLETE'})",
        file=sys.stderr,
    )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarise(result: GeneratorResult) -> dict[str, Any]:
    return {
        "generator": result.name,
        "produce_msgs_per_s": median([p.rate for p in result.produce]),
        "produce_mb_per_s": median([p.megabytes_per_s for p in result.produce]),
        "produce_broker_cpu": median([p.cpu for p in result.produce]),
        "produce_broker_cpu_us_per_msg": median([p.cpu_us_per_message for p in result.produce]),
        "consume_msgs_per_s": median([p.rate for p in result.consume]),
        "consume_broker_cpu": median([p.cpu for p in result.consume]),
        "consume_broker_cpu_us_per_msg": median([p.cpu_us_per_message for p in result.consume]),
        "latency_p50_ms": median([lat.p50_ms for lat in result.latency]),
        "latency_p99_ms": median([lat.p99_ms for lat in result.latency]),
        "latency_broker_cpu": median([lat.cpu for lat in result.latency]),
        "complete": all(p.complete for p in result.produce + result.consume),
        "runs": {
            "produce": [asdict(p) | {"rate": p.rate, "cpu": p.cpu} for p in result.produce],
            "consume": [asdict(p) | {"rate": p.rate, "cpu": p.cpu} for p in result.consume],
            "latency": [asdict(lat) for lat in result.latency],
        },
    }


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\n{args.partitions} partitions, {args.size}-byte values, {args.messages:,} messages, "
        f"acks=all with fsync; median of {args.repeat}; latency at {args.rate:,} msgs/s"
    )
    header = (
        "| generator | produce msgs/s | produce MB/s | broker CPU | consume msgs/s | broker CPU "
        "| latency p50 | latency p99 |"
    )
    print(header)
    print("|---" * 8 + "|")
    for row in rows:
        print(
            f"| {row['generator']} | {row['produce_msgs_per_s']:,.0f} "
            f"| {row['produce_mb_per_s']:.1f} | {row['produce_broker_cpu']:.2f} "
            f"| {row['consume_msgs_per_s']:,.0f} | {row['consume_broker_cpu']:.2f} "
            f"| {row['latency_p50_ms']:.2f} ms | {row['latency_p99_ms']:.2f} ms |"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2_000_000, help="per produce run")
    parser.add_argument("--size", type=int, default=100, help="value bytes")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--mode", choices=["a", "b", "all"], default="all")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--rate", type=int, default=10_000, help="msgs/s of the latency run")
    parser.add_argument(
        "--consumers", type=int, default=1, help="(a) consumer processes sharing the partitions"
    )
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="0 skips latency")
    parser.add_argument("--batch", type=int, default=500, help="(b) records per partition batch")
    parser.add_argument("--in-flight", type=int, default=8, help="(b) requests per connection")
    parser.add_argument("--connections", type=int, default=2, help="(b) sockets, 1-4")
    parser.add_argument("--keep-data", action="store_true", help="leave the data folder")
    parser.add_argument("--profile", type=Path, help="folder for py-spy profiles, one per phase")
    args = parser.parse_args(argv)
    if not 1 <= args.connections <= 4:
        parser.error("--connections must be 1-4")
    if args.size < _TS.size:
        parser.error(f"--size must be at least {_TS.size} (latency runs carry a timestamp)")
    return args


def main(argv: list[str] | None = None) -> int:
    global PROFILE_DIR
    args = parse_args(argv)
    PROFILE_DIR = args.profile
    broker = Broker(keep_data=args.keep_data)
    broker.start()
    print(
        f"broker pid {broker.pid} on {broker.bootstrap}, data in {broker.data_dir}", file=sys.stderr
    )
    rows = []
    try:
        if args.mode in ("a", "all"):
            rows.append(summarise(run_confluent(broker, args)))
        if args.mode in ("b", "all"):
            rows.append(summarise(run_pipelined(broker, args)))
    finally:
        broker.stop()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
