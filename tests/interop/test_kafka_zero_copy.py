"""Fetch sends record bytes from the segment files with sendfile, and the stream stays intact.

Three paths are exercised: a reader that keeps up (every slice goes zero-copy); a connection
whose broker-side send buffer is tiny, so the kernel takes only part of a slice and the server
must finish it (and everything after it) through memory without reordering a byte; and a
response that waits behind another, whose slices are read into memory at once. Both run on uvloop (what `firth serve` uses) and on asyncio's own
loop (what in-process test brokers may use).
"""

from __future__ import annotations

import asyncio
import os
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


def read_fetch_records(client: RawClient) -> bytes:
    """The next Fetch v4 response's records, checked batch by batch (CRC, offsets, values)."""
    _, response = client.read_response(1, 4)
    records = response.responses[0].partitions[0].records
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
    return bytes(records)


def shrink_server_send_buffer(app: FirthApp, client: RawClient) -> None:
    """Give the broker's end of this client's connection a tiny send buffer, so the kernel
    takes only part of a large response at once."""
    local = client.sock.getsockname()
    for connection in app.kafka.connections:
        transport = connection.transport
        if transport is not None and transport.get_extra_info("peername")[:2] == local[:2]:
            server_end = socket.socket(fileno=os.dup(connection.socket_fd or -1))
            try:
                server_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            finally:
                server_end.close()
            return
    raise AssertionError("the broker has no connection for this client")


def test_stream_stays_intact_when_sendfile_falls_short_or_a_response_waits(app: FirthApp) -> None:
    bootstrap = "{}:{}".format(*app.kafka_address)
    produce(bootstrap, "zero-copy-slow")
    with RawClient(bootstrap) as client:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        fields = fetch_fields("zero-copy-slow", 0, 0, max_wait_ms=0)
        fields["max_bytes"] = fields["topics"][0]["partitions"][0]["partition_max_bytes"] = 8 << 20
        client.request(18, 0, {})  # the connection exists on the broker's side now
        shrink_server_send_buffer(app, client)

        # One fetch at the head of the line: sendfile starts it, the kernel takes part, and
        # the rest goes through memory.
        before = app.kafka.sendfile_bytes
        client.send_raw(client.encode_request(1, 4, fields))
        records = read_fetch_records(client)
        sent_zero_copy = app.kafka.sendfile_bytes - before
        assert 0 < sent_zero_copy < len(records), "expected part zero-copy, part through memory"

        # Two fetches pipelined: the second waits behind the first and is read at once.
        client.send_raw(client.encode_request(1, 4, fields) + client.encode_request(1, 4, fields))
        assert read_fetch_records(client) == records
        assert read_fetch_records(client) == records
