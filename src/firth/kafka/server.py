"""The Kafka listener: a thin asyncio adapter between sockets and the sans-IO codec.

Per connection: bytes go into a FrameReader; each complete frame's header is parsed and the
request handed to its handler as a task. Handlers of one connection run concurrently (so the
pipelined produce requests of one client share group-commit fsyncs), but they start in arrival
order, and responses are written strictly in request order, as the Kafka protocol requires: a
finished response waits in its slot until every earlier one is written. A handler that is a
plain function returning a `Deferred` (OffsetCommit) runs at once instead, and its slot is
completed by a callback on the one future it waits for: no task per request.

Responses that become ready in the same event-loop iteration (a group-commit round wakes every
produce it made durable at once) are written together: completion schedules one flush per
iteration, which hands every ready response to a single `writelines` (one send syscall).

Backpressure has two names: too many requests in flight on a connection, or the transport's
write buffer above its high-water mark, both pause reading until the condition clears.

Bad input closes only that connection: an undecodable frame, an unknown API key, or a version we
do not support (except ApiVersions, answered in the v0 format with UNSUPPORTED_VERSION so the
client retries lower, as Kafka does).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import Awaitable
from typing import Any

from firth.broker.broker import Broker
from firth.kafka.handlers import HANDLERS, RequestContext, Response
from firth.kafka.handlers.api_versions import advertised_apis
from firth.kafka.handlers.context import CloseConnection, Listener
from firth.kafka.handlers.deferred import Deferred
from firth.kafka.protocol.codec import api_versions_error_response
from firth.kafka.protocol.errors import ProtocolError as KafkaProtocolError
from firth.kafka.protocol.framing import FrameError, FrameReader
from firth.kafka.protocol.header import parse_request_header
from firth.log import FileSlice

logger = logging.getLogger(__name__)

API_VERSIONS_KEY = 18
MAX_IN_FLIGHT = 256
"""Requests one connection may have in flight before we stop reading from it."""

FETCH_KEY = 1
MAX_FETCHES_IN_FLIGHT = 4
"""Fetches one connection may have in flight. Each can hold up to its max_bytes of records, so
this (with the write-buffer pause) bounds what a client that never reads its responses costs.
Stock clients keep one fetch in flight per broker connection."""


class _Slot:
    __slots__ = ("done", "response")

    def __init__(self) -> None:
        self.done = False
        self.response: Response = None


class KafkaConnection(asyncio.Protocol):
    def __init__(self, server: KafkaServer) -> None:
        self.server = server
        self.reader = FrameReader()
        self.transport: asyncio.Transport | None = None
        self.peer_host = ""
        self.slots: deque[_Slot] = deque()
        self.tasks: set[asyncio.Task[None]] = set()
        """Handler tasks of this connection (cancelled if it goes away)."""
        self.deferred: dict[asyncio.Future[Any], list[tuple[Deferred, RequestContext, _Slot]]]
        self.deferred = {}
        """Deferred answers by the future they wait on. The futures are shared (a whole fsync
        batch), so never cancelled here; a graceful drain waits for them like for the tasks."""
        self.write_scheduled = False
        self.paused_by_us = False
        self.write_paused = False
        self.closing = False
        self.draining = False
        """Set by a graceful stop: finish what was dispatched, take no new requests."""
        self.held: memoryview | None = None
        """A frame taken from the reader but not yet dispatched (backpressure)."""
        self.fetches_in_flight = 0
        self.socket_fd: int | None = None
        """The socket's descriptor, for os.sendfile of fetched record slices (None: no
        zero-copy on this platform)."""

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer_host = peer[0] if peer else ""
        sock = transport.get_extra_info("socket")
        if hasattr(os, "sendfile") and sock is not None:
            self.socket_fd = sock.fileno()
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.connections.discard(self)
        for task in self.tasks:
            task.cancel()

    def pause_writing(self) -> None:
        self.write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._pump()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        try:
            self.reader.feed(data)
        except FrameError as exc:
            self._abort(f"bad request: {exc}")
            return
        self._pump()

    def _pump(self) -> None:
        """Dispatch buffered frames while backpressure allows, then set reading accordingly."""
        try:
            while not self.closing and not self.draining:
                frame = self.held
                if frame is None:
                    frame = self.reader.next_frame()
                    if frame is None:
                        break
                if not self._may_dispatch(frame):
                    self.held = frame
                    break
                self.held = None
                self._dispatch(frame)
        except (FrameError, KafkaProtocolError) as exc:
            self._abort(f"bad request: {exc}")
        self._update_reading()

    def _may_dispatch(self, frame: memoryview) -> bool:
        if self.write_paused or len(self.slots) >= MAX_IN_FLIGHT:
            return False
        is_fetch = len(frame) >= 2 and frame[0] == 0 and frame[1] == FETCH_KEY
        return not is_fetch or self.fetches_in_flight < MAX_FETCHES_IN_FLIGHT

    # -- dispatch ---------------------------------------------------------------------------

    def _dispatch(self, frame: memoryview) -> None:
        header, body_offset = parse_request_header(frame)
        supported = self.server.supported.get(header.api_key)
        handler = HANDLERS.get(header.api_key)
        if supported is None or handler is None:
            self._abort(f"unsupported API key {header.api_key}")
            return
        low, high = supported
        if not low <= header.api_version <= high:
            if header.api_key == API_VERSIONS_KEY:
                slot = _Slot()
                slot.done = True
                slot.response = api_versions_error_response(
                    header.correlation_id, self.server.supported
                )
                self.slots.append(slot)
                self._write_ready()
                return
            self._abort(f"unsupported version {header.api_version} of API key {header.api_key}")
            return
        ctx = RequestContext(
            header=header,
            frame=frame,
            body_offset=body_offset,
            broker=self.server.broker,
            advertised=self.server.advertised,
            peer_host=self.peer_host,
        )
        slot = _Slot()
        self.slots.append(slot)
        try:
            answer = handler(ctx)
        except Exception as exc:  # a plain-function handler failed before returning
            self._failed(ctx, exc)
            return
        if type(answer) is Deferred:
            future = answer.future
            if future is None or future.done():
                self._finish_deferred(answer, ctx, slot)
                return
            # One callback per (connection, future): a whole fsync batch of this connection's
            # commits completes in one call, in request order.
            waiting = self.deferred.get(future)
            if waiting is None:
                self.deferred[future] = [(answer, ctx, slot)]
                future.add_done_callback(self._deferred_done)
            else:
                waiting.append((answer, ctx, slot))
            return
        if header.api_key == FETCH_KEY:
            self.fetches_in_flight += 1
        task = asyncio.get_running_loop().create_task(self._run(answer, ctx, slot))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, answer: Awaitable[Response], ctx: RequestContext, slot: _Slot) -> None:
        try:
            self._complete(slot, await answer)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(ctx, exc)
        finally:
            if ctx.header.api_key == FETCH_KEY:
                self.fetches_in_flight -= 1

    def _deferred_done(self, future: asyncio.Future[Any]) -> None:
        waiting = self.deferred.pop(future, ())
        for answer, ctx, slot in waiting:
            if self.closing:
                return
            self._finish_deferred(answer, ctx, slot)

    def _finish_deferred(self, answer: Deferred, ctx: RequestContext, slot: _Slot) -> None:
        try:
            self._complete(slot, answer.finish())
        except Exception as exc:
            self._failed(ctx, exc)

    def _failed(self, ctx: RequestContext, exc: Exception) -> None:
        """A handler raised instead of answering: close the connection (logged if unexpected)."""
        if isinstance(exc, CloseConnection):
            self._abort(str(exc))
        elif isinstance(exc, KafkaProtocolError):
            self._abort(f"malformed {ctx.header.api_key} v{ctx.header.api_version}: {exc}")
        else:
            logger.error(
                "handler for API key %d v%d failed; closing the connection",
                ctx.header.api_key,
                ctx.header.api_version,
                exc_info=exc,
            )
            self._abort("internal error")

    def _complete(self, slot: _Slot, response: Response) -> None:
        """Put a finished response in its slot and schedule the in-order write (may raise
        OSError reading file slices: the caller treats that as the handler failing)."""
        if isinstance(response, list) and self.slots and self.slots[0] is not slot:
            # It waits behind earlier responses: read its file slices now, while their
            # descriptors are certainly open (retention closes a retired segment's later).
            response = [p.read_bytes() if isinstance(p, FileSlice) else p for p in response]
        slot.response = response
        slot.done = True
        if not self.write_scheduled:
            self.write_scheduled = True
            asyncio.get_running_loop().call_soon(self._write_ready)

    def _write_ready(self) -> None:
        self.write_scheduled = False
        transport = self.transport
        if transport is None or self.closing:
            return
        slots = self.slots
        out: list[bytes | memoryview] = []
        while slots and slots[0].done:
            response = slots.popleft().response
            if response is None:
                continue
            if isinstance(response, list):
                out.extend(response)
            else:
                out.append(response)
        if any(isinstance(piece, FileSlice) for piece in out):
            self._send_with_files(transport, out)
        elif len(out) == 1:
            transport.write(out[0])
        elif out:
            transport.writelines(out)
        self._pump()

    def _send_with_files(self, transport: asyncio.Transport, pieces: list[Any]) -> None:
        """Write buffers and record-file slices in order, the slices zero-copy when possible.

        A slice goes straight from the segment file to the socket with os.sendfile only while
        the transport's own buffer is empty (so nothing queued could be overtaken). If the
        kernel takes only part of it, the rest of the slice and every later piece are read
        into memory and queued on the transport instead, which keeps the byte order intact.
        """
        zero_copy = self.socket_fd is not None
        pending: list[Any] = []
        for piece in pieces:
            if not isinstance(piece, FileSlice):
                pending.append(piece)
                continue
            if zero_copy:
                if pending:
                    transport.writelines(pending)
                    pending = []
                if transport.get_write_buffer_size() == 0:
                    sent = self._sendfile(piece)
                    self.server.sendfile_bytes += sent
                    if sent == piece.size:
                        continue
                    piece = FileSlice(piece.fd, piece.position + sent, piece.size - sent)
                zero_copy = False
            pending.append(piece.read_bytes())
        if pending:
            transport.writelines(pending)

    def _sendfile(self, piece: FileSlice) -> int:
        """Bytes of `piece` the kernel took without blocking (0 if it took none)."""
        assert self.socket_fd is not None
        sent = 0
        while sent < piece.size:
            try:
                n = os.sendfile(self.socket_fd, piece.fd, piece.position + sent, piece.size - sent)
            except BlockingIOError:
                break
            except OSError:
                break  # e.g. the peer went away: the transport's own write reports it
            if n == 0:
                break
            sent += n
        return sent

    def _update_reading(self) -> None:
        if self.transport is None or self.closing:
            return
        should_pause = self.draining or self.held is not None or self.write_paused
        if should_pause and not self.paused_by_us:
            self.paused_by_us = True
            self.transport.pause_reading()
        elif not should_pause and self.paused_by_us:
            self.paused_by_us = False
            self.transport.resume_reading()

    def _abort(self, reason: str) -> None:
        if self.closing:
            return
        logger.info("closing Kafka connection from %s: %s", self.peer_host, reason)
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    @property
    def idle(self) -> bool:
        return not self.slots

    def start_draining(self) -> None:
        """Graceful stop: read no more requests; those already dispatched still get answers."""
        self.draining = True
        self._update_reading()

    def flushed(self) -> bool:
        """Every response is handed to the kernel (nothing left in the transport's buffer)."""
        transport = self.transport
        return self.closing or transport is None or transport.get_write_buffer_size() == 0


class KafkaServer:
    """Owns the listening socket and the live connections."""

    def __init__(self, broker: Broker, host: str, port: int, advertised: str | None) -> None:
        self.broker = broker
        self.host = host
        self.port = port
        self._advertised = advertised
        self.advertised = Listener(host, port)
        self.connections: set[KafkaConnection] = set()
        self.supported = advertised_apis()
        self.sendfile_bytes = 0
        """Record bytes sent zero-copy from segment files (the rest went through memory)."""
        self._server: asyncio.AbstractServer | None = None

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None
        sock = self._server.sockets[0]  # type: ignore[attr-defined]
        host, port = sock.getsockname()[:2]
        return host, port

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: KafkaConnection(self), self.host, self.port, reuse_address=True, backlog=512
        )
        host, port = self.address
        if self._advertised:
            adv_host, _, adv_port = self._advertised.rpartition(":")
            self.advertised = Listener(adv_host.strip("[]"), int(adv_port))
        else:
            self.advertised = Listener("127.0.0.1" if host in ("0.0.0.0", "") else host, port)
        logger.info(
            "Kafka listener on %s:%d (advertised as %s:%d)",
            host,
            port,
            self.advertised.host,
            self.advertised.port,
        )

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()

    async def drain(self, timeout: float) -> None:
        """Graceful stop, bounded by `timeout`: read no new requests, answer the ones already
        dispatched, let the kernel take every response, then close every connection."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for connection in list(self.connections):
            connection.start_draining()
        while any(not c.idle for c in self.connections) and loop.time() < deadline:
            pending = [t for c in self.connections for t in (*c.tasks, *c.deferred)]
            if not pending:
                break
            await asyncio.wait(pending, timeout=max(0.0, deadline - loop.time()))
        while not all(c.flushed() for c in self.connections) and loop.time() < deadline:
            await asyncio.sleep(0.01)  # polling the transports' buffers; bounded by the deadline
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.close()
        if self._server is not None:
            await self._server.wait_closed()
