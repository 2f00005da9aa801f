"""The Kafka server's task-free path for `Deferred` answers (OffsetCommit).

A real `KafkaServer` on a loopback port, with a stand-in broker that has only a group
coordinator, whose offsets-store writes the test holds back (the worker thread waits on an
event), so that what is in flight at each moment is known rather than hoped for.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from firth.broker.broker import Broker
from firth.broker.groups import GroupConfig, GroupCoordinator
from firth.kafka.handlers.deferred import Deferred
from firth.kafka.handlers.groups import offset_commit
from firth.kafka.server import KafkaConnection, KafkaServer
from tests.interop.conftest_broker import encode_request

OFFSET_COMMIT, API_VERSIONS = 8, 18
WAIT_S = 10.0


@dataclass
class StandIn:
    groups: GroupCoordinator | None


class HeldWrites:
    """Makes the store's worker wait for `release()` before each batch write."""

    def __init__(self, coordinator: GroupCoordinator) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        store = coordinator.store
        real = store._write_batch

        def held(data: bytes) -> None:
            self.started.set()
            if not self.gate.wait(WAIT_S):
                raise OSError(5, "the test never released the write")
            real(data)

        store._write_batch = held  # type: ignore[method-assign]

    def release(self) -> None:
        self.gate.set()


def commit_frame(correlation_id: int, offset: int, group: str = "g") -> bytes:
    return encode_request(
        OFFSET_COMMIT,
        8,
        {
            "group_id": group,
            "generation_id_or_member_epoch": -1,
            "member_id": "",
            "group_instance_id": None,
            "topics": [
                {"name": "t", "partitions": [{"partition_index": 0, "committed_offset": offset}]}
            ],
        },
        correlation_id,
    )


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await asyncio.wait_for(reader.readexactly(4), WAIT_S))
    return await asyncio.wait_for(reader.readexactly(size), WAIT_S)


def correlation(frame: bytes) -> int:
    return int(struct.unpack_from(">i", frame)[0])


def commit_error(frame: bytes) -> int:
    # v8 response: correlation id, header tags, throttle, topics(1), name "t", partitions(1),
    # partition index, then the error code.
    return int(struct.unpack_from(">h", frame, 4 + 1 + 4 + 1 + 2 + 1 + 4)[0])


async def until(condition: Any, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


@asynccontextmanager
async def serving(tmp_path: Path) -> AsyncIterator[tuple[KafkaServer, GroupCoordinator]]:
    coordinator = GroupCoordinator.open(tmp_path, GroupConfig(fsync=False))
    server = KafkaServer(cast(Broker, StandIn(coordinator)), "127.0.0.1", 0, None)
    await server.start()
    try:
        yield server, coordinator
    finally:
        server.stop_accepting()
        await coordinator.close()


def the_connection(server: KafkaServer) -> KafkaConnection:
    (connection,) = server.connections
    return connection


def test_offset_commit_handler_is_a_deferred_that_can_also_be_awaited(tmp_path: Path) -> None:
    async def body() -> None:
        async with serving(tmp_path) as (server, coordinator):
            reader, writer = await asyncio.open_connection(*server.address)
            writer.write(commit_frame(1, 5))
            assert commit_error(await read_frame(reader)) == 0
            assert coordinator.fetch_offsets("g", None).offsets[("t", 0)].offset == 5  # type: ignore[union-attr]
            assert the_connection(server).tasks == set()  # no task was made for it
            writer.close()

    asyncio.run(body())
    assert not asyncio.iscoroutinefunction(offset_commit)


def test_without_a_coordinator_a_commit_is_answered_at_once() -> None:
    async def body() -> None:
        server = KafkaServer(cast(Broker, StandIn(None)), "127.0.0.1", 0, None)
        await server.start()
        try:
            reader, writer = await asyncio.open_connection(*server.address)
            writer.write(commit_frame(1, 5) + commit_frame(2, 6))
            frames = [await read_frame(reader) for _ in range(2)]
            assert [correlation(f) for f in frames] == [1, 2]
            assert {commit_error(f) for f in frames} == {15}  # COORDINATOR_NOT_AVAILABLE
            assert the_connection(server).deferred == {}
            writer.close()
        finally:
            server.stop_accepting()

    asyncio.run(body())


def test_a_deferred_can_be_awaited_and_reads_a_failure_itself() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        assert await Deferred(None, lambda: b"now") == b"now"
        ok: asyncio.Future[None] = loop.create_future()
        loop.call_soon(ok.set_result, None)
        assert await Deferred(ok, lambda: b"later") == b"later"
        failed: asyncio.Future[None] = loop.create_future()
        loop.call_soon(failed.set_exception, OSError("disk"))
        answer = Deferred(failed, lambda: repr(failed.exception()).encode())
        assert await answer == b"OSError('disk')"
        # A waiter that is cancelled leaves the (shared) future alone.
        shared: asyncio.Future[None] = loop.create_future()
        waiter = asyncio.ensure_future(_await(Deferred(shared, lambda: b"x")))
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.sleep(0)
        assert waiter.cancelled() and not shared.cancelled()

    asyncio.run(body())


async def _await(answer: Deferred) -> Any:
    return await answer


def test_responses_keep_request_order_across_deferred_and_task_answers(tmp_path: Path) -> None:
    async def body() -> None:
        async with serving(tmp_path) as (server, coordinator):
            held = HeldWrites(coordinator)
            reader, writer = await asyncio.open_connection(*server.address)
            versions = {"client_software_name": "test", "client_software_version": "1"}
            writer.write(
                commit_frame(1, 10)
                + encode_request(API_VERSIONS, 3, versions, 2)
                + commit_frame(3, 11)
            )
            await until(lambda: len(server.connections) == 1, "the connection")
            connection = the_connection(server)
            # ApiVersions (a task) is answered while the commit before it waits on its fsync.
            await until(
                lambda: len(connection.slots) == 3 and connection.slots[1].done,
                "ApiVersions answered behind the held commit",
            )
            assert not connection.slots[0].done
            assert held.started.is_set()
            held.release()
            frames = [await read_frame(reader) for _ in range(3)]
            assert [correlation(f) for f in frames] == [1, 2, 3]
            assert commit_error(frames[0]) == 0 and commit_error(frames[2]) == 0
            assert coordinator.fetch_offsets("g", None).offsets[("t", 0)].offset == 11  # type: ignore[union-attr]
            writer.close()

    asyncio.run(body())


def test_graceful_drain_answers_commits_waiting_for_their_fsync(tmp_path: Path) -> None:
    async def body() -> None:
        async with serving(tmp_path) as (server, coordinator):
            held = HeldWrites(coordinator)
            reader, writer = await asyncio.open_connection(*server.address)
            writer.write(b"".join(commit_frame(c, c) for c in range(1, 21)))
            await until(lambda: len(server.connections) == 1, "the connection")
            connection = the_connection(server)
            await until(lambda: len(connection.slots) == 20, "20 commits dispatched")
            assert held.started.is_set() and connection.deferred  # waiting on store futures
            server.stop_accepting()  # as the app's graceful stop does first
            drain = asyncio.ensure_future(server.drain(WAIT_S))
            await asyncio.sleep(0)
            assert not drain.done()  # it waits for the held commits
            held.release()
            frames = [await read_frame(reader) for _ in range(20)]
            await drain
            assert [correlation(f) for f in frames] == list(range(1, 21))
            assert {commit_error(f) for f in frames} == {0}
            assert await reader.read() == b""  # then the connection is closed
            assert coordinator.fetch_offsets("g", None).offsets[("t", 0)].offset == 20  # type: ignore[union-attr]

    asyncio.run(body())


def test_a_commit_whose_connection_went_away_is_still_made_durable(tmp_path: Path) -> None:
    async def body() -> None:
        async with serving(tmp_path) as (server, coordinator):
            held = HeldWrites(coordinator)
            _reader_a, writer_a = await asyncio.open_connection(*server.address)
            writer_a.write(commit_frame(1, 7, group="a"))
            await until(held.started.is_set, "the first batch's write to start")
            reader_b, writer_b = await asyncio.open_connection(*server.address)
            writer_b.write(commit_frame(1, 8, group="b"))  # the next batch
            await until(
                lambda: sum(len(c.slots) for c in server.connections) == 2,
                "both commits dispatched",
            )
            writer_a.transport.abort()
            await until(lambda: len(server.connections) == 1, "the first connection gone")
            held.release()
            assert commit_error(await read_frame(reader_b)) == 0  # its batch was not cancelled
            assert coordinator.fetch_offsets("a", None).offsets[("t", 0)].offset == 7  # type: ignore[union-attr]
            assert coordinator.fetch_offsets("b", None).offsets[("t", 0)].offset == 8  # type: ignore[union-attr]
            writer_b.close()

    asyncio.run(body())
