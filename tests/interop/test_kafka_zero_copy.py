"""Fetch sends record bytes from the segment files with sendfile, and the stream stays intact.

Two paths are exercised: a reader that keeps up (every slice goes zero-copy), and a reader with
a tiny receive buffer that does not read until the whole response is due, so the kernel takes
only part of a slice and the server must finish it (and everything after it) through memory
without reordering a byte. Both run on uvloop (what `firth serve` uses) and on asyncio's own
loop (what in-process test brokers may use).
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from firth.app import FirthApp
from firth.config import Config
from firth.kafka.protocol.records import decode_batch
from firth.wire.recordbatch import batch_size_at

from .conftest_broker import RawClient, fetch_fields

MESSAGES = 20_000


def value(i: int) -> bytes:
    return b"%08d" % i * 12


@pytest.fixture(params=["uvloop", "asyncio"])
def app(request: pytest.FixtureRequest) -> Iterator[FirthApp]:
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        with tempfile.TemporaryDirectory() as data_dir:
            app = FirthApp(
                Config(data_dir=Path(data_dir), kafka_listen="127.0.0.1:0", amqp_listen=None)
            )
            await app.start()
            holder["app"], holder["loop"] = app, asyncio.get_running_loop()
            started.set()
            await app.wait_stopped()

    def run() -> None:
        if request.param == "uvloop":
            uvloop.run(serve())
        else:
            asyncio.run(serve())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(30), "broker did not start"
    app: FirthApp = holder["app"]
    yield app
    asyncio.run_coroutine_threadsafe(app.stop(), holder["loop"]).result(30)
    thread.join(30)


def produce(bootstrap: str, topic: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    for i in range(MESSAGES):
        producer.produce(topic, partition=0, value=value(i))
        if i % 5000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0


def test_consumer_reads_every_byte_sent_with_sendfile(app: FirthApp) -> None:
    bootstrap = "{}:{}".format(*app.kafka_address)
    produce(bootstrap, "zero-copy")
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "zc"})
    consumer.assign([TopicPartition("zero-copy", 0, OFFSET_BEGINNING)])
    expected = 0
    try:
        while expected < MESSAGES:
            messages = consumer.consume(10_000, 10)
            assert messages, f"stalled at offset {expected}"
            for message in messages:
                assert message.error() is None
                assert (message.offset(), message.value()) == (expected, value(expected))
                expected += 1
    finally:
        consumer.close()
    record_bytes = MESSAGES * len(value(0))
    assert app.kafka.sendfile_bytes >= record_bytes, "fetches did not go zero-copy"


def test_slow_reader_gets_an_intact_stream_when_sendfile_falls_short(app: FirthApp) -> None:
    bootstrap = "{}:{}".format(*app.kafka_address)
    produce(bootstrap, "zero-copy-slow")
    with RawClient(bootstrap) as client:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        fields = fetch_fields("zero-copy-slow", 0, 0, max_wait_ms=0)
        fields["max_bytes"] = fields["topics"][0]["partitions"][0]["partition_max_bytes"] = 8 << 20
        before = app.kafka.sendfile_bytes
        # Two fetches in flight: the first response fills the socket, so the second one's
        # slices cannot all go zero-copy.
        client.send_raw(client.encode_request(1, 4, fields) + client.encode_request(1, 4, fields))
        record_bytes = 0
        for _ in range(2):
            _, response = client.read_response(1, 4)
            records = response.responses[0].partitions[0].records
            record_bytes += len(records)
            offset, pos = 0, 0
            while pos < len(records):
                size = batch_size_at(records, pos)
                assert size is not None and pos + size <= len(records)
                header, batch_records = decode_batch(records, pos)  # checks the CRC
                for record in batch_records:
                    assert header.base_offset + record.offset_delta == offset
                    assert record.value == value(offset)
                    offset += 1
                pos += size
            assert offset == MESSAGES
    sent_zero_copy = app.kafka.sendfile_bytes - before
    assert 0 < sent_zero_copy < record_bytes, "expected part zero-copy, part through memory"
