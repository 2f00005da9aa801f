"""bench/amqp_throughput.py's flags, in the default run so the benchmark cannot rot.

Tiny runs against an in-process broker: the default flags measure the historical four rows
with one producer and one consumer; ``--producers``/``--consumers`` split a row over several
connections and every message is published, confirmed, delivered and acknowledged;
``--persistent``/``--transient`` choose the rows; ``--queue-type`` reaches the declare.
No rate is asserted.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from firth.testing import running_broker

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "amqp_throughput.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("amqp_throughput_bench", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_broker(amqp_listen="127.0.0.1:0", fsync=False) as broker:
        assert broker.amqp_url is not None
        yield broker.amqp_url


def test_default_flags_name_the_four_historical_rows(bench: ModuleType) -> None:
    args = bench.parse_args([])
    assert (args.producers, args.consumers, args.queue_type) == (1, 1, "classic")
    assert not args.persistent and not args.transient
    names = bench.row_names(args)
    assert [names[k] for k in ("persistent publish", "persistent consume")] == [
        "durable persistent publish (confirms)",
        "durable persistent consume (manual ack)",
    ]
    assert [names[k] for k in ("transient publish", "transient consume")] == [
        "transient publish (no confirms)",
        "transient consume (manual ack)",
    ]
    assert names["latency"] == "latency at 1000 msgs/s (persistent, confirms)"


def test_persistent_and_transient_exclude_each_other(bench: ModuleType) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(["--persistent", "--transient"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--producers", "0"])


def test_shares_split_a_count_whole(bench: ModuleType) -> None:
    assert bench.shares(10, 3) == [4, 3, 3]
    assert bench.shares(2, 4) == [1, 1, 0, 0]
    assert sum(bench.shares(200_000, 7)) == 200_000


def queue_state(bench: ModuleType, url: str, queue: str) -> tuple[int, int]:
    async def ask() -> tuple[int, int]:
        client = await bench.connect(url)
        ok = await client.call(
            1, bench.m.QueueDeclare(queue=queue, passive=True), bench.m.QueueDeclareOk
        )
        client.transport.close()
        return ok.message_count, ok.consumer_count

    return asyncio.run(ask())


def wait_for_state(bench: ModuleType, url: str, queue: str, wanted: tuple[int, int]) -> None:
    deadline = time.monotonic() + 10
    while (state := queue_state(bench, url, queue)) != wanted:
        assert time.monotonic() < deadline, f"{queue}: {state}, wanted {wanted}"
        time.sleep(0.02)


def test_several_producers_and_consumers_move_every_message(bench: ModuleType, url: str) -> None:
    async def setup(queue: str, durable: bool) -> None:
        client = await bench.connect(url)
        await bench.declare(client, queue, durable, "quorum" if durable else "classic")
        client.transport.close()

    asyncio.run(setup("t-durable", True))
    asyncio.run(setup("t-transient", False))
    confirmed = bench.publish_confirmed(url, "t-durable", 301, 16, 20, producers=3)
    assert asyncio.run(confirmed) > 0
    assert queue_state(bench, url, "t-durable") == (301, 0)  # every publish confirmed: queued
    unconfirmed = bench.publish_unconfirmed(url, "t-transient", 301, 16, producers=4)
    assert asyncio.run(unconfirmed) > 0
    assert queue_state(bench, url, "t-transient") == (301, 0)
    for queue in ("t-durable", "t-transient"):
        asyncio.run(bench.consume(url, queue, 301, 20, 7, consumers=2))
        # Once the consumers' connections are gone, anything left unacknowledged would be
        # back in the queue: an empty queue means every delivery was acknowledged.
        wait_for_state(bench, url, queue, (0, 0))


@pytest.mark.parametrize(
    ("flags", "rows"),
    [
        (
            ["--producers", "3", "--consumers", "2"],
            [
                "durable persistent publish (confirms, 3 producers)",
                "durable persistent consume (manual ack, 2 consumers)",
                "transient publish (no confirms, 3 producers)",
                "transient consume (manual ack, 2 consumers)",
            ],
        ),
        (
            ["--persistent", "--queue-type", "quorum"],
            ["quorum persistent publish (confirms)", "quorum persistent consume (manual ack)"],
        ),
        (
            ["--transient", "-y", "3"],
            ["transient publish (no confirms)", "transient consume (manual ack, 3 consumers)"],
        ),
    ],
)
def test_flags_choose_the_rows(
    bench: ModuleType, url: str, flags: list[str], rows: list[str]
) -> None:
    args = bench.parse_args(["--messages", "200", *flags])
    results: list[Any] = asyncio.run(bench.measure("firth", url, args))
    assert [r.row for r in results] == rows
    assert {r.messages for r in results} == {200}
    recorded = bench.parameters(args)
    assert recorded["producers"] == args.producers and recorded["consumers"] == args.consumers
