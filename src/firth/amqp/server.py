"""The asyncio front end for AMQP 0-9-1: sockets in, ``AmqpConnection`` events out.

A thin adapter (STYLE.md 1-2): ``AmqpProtocol.data_received`` feeds the sans-IO connection,
acts on each event and writes what the connection produced. What lives here and nowhere else:

- the socket, the peer address (guest logs in from loopback only, as in RabbitMQ);
- time: the handshake timeout (10 s, RabbitMQ's), heartbeats (we send one every half
  interval; a peer silent for two intervals is dropped without a close handshake, as the spec
  says), and the bounded wait for close-ok after we close;
- write backpressure (``_Flow``): when the transport's buffer is full we stop reading, so a
  client that does not read its deliveries cannot make us buffer without bound.

Method dispatch is the ``HANDLERS`` table of ``firth.amqp.channel`` (method class → handler
on the broker-side ``Channel``); a method without a handler is answered with 540
NOT_IMPLEMENTED. Errors from the broker core are mapped to reply codes by
``firth.amqp.errors.amqp_error_for``.

Output batching: handlers and deliveries append frames to the connection's buffer; it is
written once per batch of input (``_process``) or, for deliveries and confirms caused by
other connections or timers, once per loop turn (``request_flush``). While the transport's
buffer is full, consumers on this connection take no more messages (``writing_paused``); they
resume when it drains.

The capabilities advertised are exactly those implemented (``IMPLEMENTED_CAPABILITIES``).

Resource alarms: once a second the server asks the virtual host how much memory its queued
messages take (``VirtualHost.memory_bytes``, an estimate) and the file system how much disk is
free under the data folder; above ``memory_limit`` or below ``disk_free_limit`` it sends connection.blocked to every client that announced the capability and
stops reading from connections that have published (as RabbitMQ does: consumers keep
consuming, which is what frees memory); below it again, connection.unblocked and reading
resumes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, cast

from firth.amqp.admin import AdminServer
from firth.amqp.channel import HANDLERS, Channel
from firth.amqp.codec import AmqpPropertiesCodec
from firth.amqp.errors import amqp_error_for
from firth.amqp.protocol import (
    AmqpChannelError,
    AmqpConnection,
    AmqpConnectionError,
    AmqpError,
    ChannelClosed,
    ChannelOpened,
    ConnectionClosed,
    ConnectionOpened,
    Event,
    Message,
    MethodFrame,
    ProtocolHeaderError,
    ReplyCode,
)
from firth.amqp.protocol.connection import State
from firth.amqp.protocol.constants import DEFAULT_FRAME_MAX, DEFAULT_HEARTBEAT
from firth.amqp.protocol.methods import ConnectionBlocked, ConnectionUnblocked
from firth.amqp.protocol.negotiation import Credentials
from firth.broker.exchanges import RoutingError
from firth.broker.queues import VirtualHost

if TYPE_CHECKING:
    from firth.broker.group_commit import GroupCommit

logger = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_S = 10.0
"""RabbitMQ's handshake_timeout: from accept to connection.open."""
CLOSE_OK_TIMEOUT_S = 3.0
"""How long we wait for close-ok after sending connection.close before dropping the socket."""

IMPLEMENTED_CAPABILITIES: dict[str, bool] = {
    "publisher_confirms": True,
    "exchange_exchange_bindings": True,
    "basic.nack": True,
    "consumer_cancel_notify": True,
    "consumer_priorities": True,
    "authentication_failure_close": True,
    "per_consumer_qos": True,
    "direct_reply_to": True,
    "connection.blocked": True,
}
"""What this front end really does: RabbitMQ 3.10's whole set."""

MEMORY_CHECK_INTERVAL_S = 1.0
DISK_FREE_LIMIT = 50 * 1000 * 1000
"""Publishers are blocked when less disk than this is free (RabbitMQ's disk_free_limit)."""
MEMORY_HIGH_WATERMARK = 0.4
"""Fraction of physical memory that queued message bodies may fill before publishers are
blocked (RabbitMQ's vm_memory_high_watermark default)."""


def _default_memory_limit() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * MEMORY_HIGH_WATERMARK)
    except (ValueError, OSError):
        return 1 << 30


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


class _Flow:
    """Write backpressure: reading stops while the transport says its buffer is full."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.writing_paused = False

    def pause_writing(self) -> None:
        self.writing_paused = True
        self._transport.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._transport.resume_reading()


class AmqpProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, server: AmqpServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.flow: _Flow | None = None
        self.peer: tuple[str, int] = ("", 0)
        self.conn = AmqpConnection(
            authenticate=self._authenticate,
            capabilities=IMPLEMENTED_CAPABILITIES,
            frame_max=server.frame_max,
            heartbeat=server.heartbeat,
        )
        self._loop = asyncio.get_running_loop()
        self._last_received = self._loop.time()
        self._timers: list[asyncio.TimerHandle] = []
        self._heartbeat_interval = 0.0
        self.channels: dict[int, Channel] = {}
        self.dirty_channels: set[Channel] = set()
        """Channels with confirms to send at the end of this batch."""
        self.cancel_notify = False
        self.blocked_notify = False
        self.published = False
        """Whether this connection has published (the memory alarm blocks only publishers)."""
        self.alarm_blocked = False
        self._flush_scheduled = False
        self._held = False

    # -- asyncio.Protocol --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport = transport
        self.flow = _Flow(transport)
        peer = transport.get_extra_info("peername") or ("", 0)
        self.peer = (str(peer[0]), int(peer[1]))
        self.server.connections.add(self)
        self.server.all_closed.clear()
        self._timers.append(self._loop.call_later(HANDSHAKE_TIMEOUT_S, self._handshake_timeout))

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget_channels()
        self.server.vhost.owner_gone(self)
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self.server.connections.discard(self)
        if not self.server.connections:
            self.server.all_closed.set()
        self.transport = None

    def pause_writing(self) -> None:
        if self.flow is not None:
            self.flow.pause_writing()

    def resume_writing(self) -> None:
        if self.flow is not None:
            self.flow.resume_writing()
        for channel in list(self.channels.values()):
            channel.resume()
        self._flush()

    @property
    def writing_paused(self) -> bool:
        return self.flow is not None and self.flow.writing_paused

    def request_flush(self) -> None:
        """Write buffered output at the end of this loop turn (once, however often asked)."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self._flush()

    def hold(self) -> None:
        """Stop handling input until ``release`` (a tx.commit waiting for its fsync)."""
        self._held = True
        if self.transport is not None:
            self.transport.pause_reading()

    def release(self) -> None:
        self._held = False
        if self.transport is not None and not self.writing_paused and not self.alarm_blocked:
            self.transport.resume_reading()
        self._process()

    def set_alarm(self, active: bool) -> None:
        """The memory alarm went on or off: tell the client, pause or resume reading."""
        if self.transport is None or self.conn.state is not State.OPEN:
            return
        if active and not self.alarm_blocked:
            self.alarm_blocked = True
            if self.blocked_notify:
                self.conn.send_method(0, ConnectionBlocked(self.server.alarm_reason))
            if self.published:
                self.transport.pause_reading()
        elif not active and self.alarm_blocked:
            self.alarm_blocked = False
            if self.blocked_notify:
                self.conn.send_method(0, ConnectionUnblocked())
            if not self.writing_paused and not self._held:
                self.transport.resume_reading()
        self._flush()

    def _forget_channels(self) -> None:
        channels, self.channels = self.channels, {}
        for channel in channels.values():
            channel.close()

    def data_received(self, data: bytes) -> None:
        self._last_received = self._loop.time()
        self.conn.receive_data(data)
        self._process()

    # -- events ------------------------------------------------------------------------------------

    def _process(self) -> None:
        conn = self.conn
        closed = State.CLOSED
        while conn.state is not closed and not self._held:  # conn.closed, without the property
            try:
                event = conn.next_event()
                if event is None:
                    break
                try:
                    self._on_event(event)
                except RoutingError as error:
                    channel = getattr(event, "channel", 0)
                    method = getattr(event, "method", None)
                    raise amqp_error_for(
                        error,
                        channel=channel,
                        class_id=method.CLASS_ID if method is not None else 0,
                        method_id=method.METHOD_ID if method is not None else 0,
                    ) from None
            except ProtocolHeaderError:
                break
            except AmqpChannelError as error:
                broken = self.channels.pop(error.channel, None)
                if broken is not None:
                    broken.close()
                conn.close_channel(error)
            except AmqpConnectionError as error:
                logger.info("closing AMQP connection from %s:%d: %s", *self.peer, error)
                conn.close(error)
                self._forget_channels()
                self._timers.append(self._loop.call_later(CLOSE_OK_TIMEOUT_S, self._abort))
        self._flush()

    def _on_event(self, event: Event) -> None:
        kind = type(event)  # neither class has subclasses: identity is isinstance, cheaper
        if kind is Message or kind is MethodFrame:
            frame = cast("MethodFrame | Message", event)
            method = frame.method
            handler = HANDLERS.get(type(method))
            channel = self.channels.get(frame.channel)
            if handler is None or channel is None:
                raise AmqpConnectionError(
                    ReplyCode.NOT_IMPLEMENTED,
                    f"{method.NAME} is not implemented by this server",
                    method.CLASS_ID,
                    method.METHOD_ID,
                )
            handler(channel, frame if kind is Message else method)
        elif isinstance(event, ChannelOpened):
            channel = Channel(self, event.channel)
            self.channels[event.channel] = channel
            self.conn.set_publish_sink(event.channel, channel.publish)
        elif isinstance(event, ChannelClosed):
            closed = self.channels.pop(event.channel, None)
            if closed is not None:
                closed.close()
        elif isinstance(event, ConnectionOpened):
            self._on_opened(event)
        elif isinstance(event, ConnectionClosed):
            logger.debug("AMQP connection from %s:%d closed: %s", *self.peer, event)
            self._forget_channels()

    def _on_opened(self, event: ConnectionOpened) -> None:
        capabilities = event.client_properties.get("capabilities")
        if isinstance(capabilities, dict):
            self.cancel_notify = bool(capabilities.get("consumer_cancel_notify"))
            self.blocked_notify = bool(capabilities.get("connection.blocked"))
        if self.server.alarm:
            self.set_alarm(True)
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if event.heartbeat:
            self._heartbeat_interval = float(event.heartbeat)
            self._schedule_heartbeat()

    def _authenticate(self, credentials: Credentials) -> bool:
        expected = self.server.users.get(credentials.username)
        if expected is None or expected != credentials.password:
            return False
        if credentials.username in self.server.loopback_users:
            return _is_loopback(self.peer[0])
        return True

    # -- output and timers -------------------------------------------------------------------------

    def _flush(self) -> None:
        if self.dirty_channels:
            dirty, self.dirty_channels = self.dirty_channels, set()
            for channel in dirty:
                if not channel.closed:
                    channel.flush_confirms()
        transport = self.transport
        if transport is None:
            return
        self.server.vhost.write_pending()  # journal entries before the deliveries they record
        data = self.conn.data_to_send()
        if data:
            transport.write(data)
        if self.conn.closed:
            transport.close()

    def _schedule_heartbeat(self) -> None:
        self._timers = [t for t in self._timers if not t.cancelled()]
        self._timers.append(
            self._loop.call_later(self._heartbeat_interval / 2, self._heartbeat_tick)
        )

    def _heartbeat_tick(self) -> None:
        if self.transport is None or self.conn.closed:
            return
        silent_for = self._loop.time() - self._last_received
        if silent_for > 2 * self._heartbeat_interval:
            logger.info("AMQP client %s:%d missed heartbeats; dropping it", *self.peer)
            self._abort()
            return
        self.conn.send_heartbeat()
        self._flush()
        self._schedule_heartbeat()

    def _handshake_timeout(self) -> None:
        if self.transport is not None:
            logger.info("AMQP client %s:%d did not finish the handshake in time", *self.peer)
            self._abort()

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def close(self, error: AmqpError | None = None) -> None:
        """Start a server-initiated close (connection.close, then close-ok or timeout)."""
        if self.conn.closed or self.transport is None:
            return
        self.conn.close(error)
        self._flush()
        self._timers.append(self._loop.call_later(CLOSE_OK_TIMEOUT_S, self._abort))


class AmqpServer:
    """Owns the listening socket and the live AMQP connections."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5672,
        *,
        users: Mapping[str, str] | None = None,
        loopback_users: frozenset[str] = frozenset({"guest"}),
        frame_max: int = DEFAULT_FRAME_MAX,
        heartbeat: int = DEFAULT_HEARTBEAT,
        vhost: VirtualHost | None = None,
        group_commit: GroupCommit | None = None,
        memory_limit: int | None = None,
        disk_free_limit: int = DISK_FREE_LIMIT,
        admin_path: Path | None = None,
    ) -> None:
        self._own_dir: Path | None = None
        if vhost is None:  # a broker of its own, removed by drain (tests of the front end)
            self._own_dir = Path(tempfile.mkdtemp(prefix="firth-amqp-"))
            vhost = VirtualHost(self._own_dir, AmqpPropertiesCodec(), fsync=False)
        self.vhost = vhost
        self.group_commit = group_commit
        self.memory_limit = _default_memory_limit() if memory_limit is None else memory_limit
        self.disk_free_limit = disk_free_limit
        self.alarm_reason = ""
        self.alarm = False
        self._alarm_task: asyncio.Task[None] | None = None
        self.admin = AdminServer(vhost, admin_path) if admin_path is not None else None
        self.host = host
        self.port = port
        self.users = dict(users if users is not None else {"guest": "guest"})
        self.loopback_users = loopback_users
        self.frame_max = frame_max
        self.heartbeat = heartbeat
        self.connections: set[AmqpProtocol] = set()
        self.all_closed = asyncio.Event()
        self.all_closed.set()
        self._server: asyncio.Server | None = None

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: AmqpProtocol(self), self.host, self.port, reuse_address=True, backlog=512
        )
        logger.info("AMQP listener on %s:%d", *self.address)
        self._alarm_task = loop.create_task(self._watch_memory())
        if self.admin is not None:
            await self.admin.start()

    async def _watch_memory(self) -> None:
        while True:
            await asyncio.sleep(MEMORY_CHECK_INTERVAL_S)
            self.check_memory()

    def check_memory(self) -> None:
        """Raise or clear the alarm: queued messages over ``memory_limit``, or less free disk
        under the data folder than ``disk_free_limit``."""
        used = self.vhost.memory_bytes()
        reasons = []
        if used > self.memory_limit:
            reasons.append("low on memory")
        try:
            free = shutil.disk_usage(self.vhost.directory).free
        except OSError:
            free = self.disk_free_limit + 1
        if free < self.disk_free_limit:
            reasons.append("low on disk")
        active = bool(reasons)
        if active != self.alarm:
            self.alarm = active
            self.alarm_reason = " and ".join(reasons)
            logger.warning(
                "resource alarm %s: %d bytes queued (limit %d), %d bytes of disk free (limit %d)",
                "set" if active else "cleared",
                used,
                self.memory_limit,
                free,
                self.disk_free_limit,
            )
            for connection in list(self.connections):
                connection.set_alarm(active)

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._alarm_task is not None:
            self._alarm_task.cancel()
            self._alarm_task = None

    async def drain(self, timeout: float) -> None:
        """Close every connection with 320 CONNECTION_FORCED; wait (bounded) for them to go."""
        forced = AmqpConnectionError(
            ReplyCode.CONNECTION_FORCED, "broker forced connection closure"
        )
        for connection in list(self.connections):
            connection.close(forced)
        try:
            await asyncio.wait_for(self.all_closed.wait(), timeout)
        except TimeoutError:
            pass
        for connection in list(self.connections):
            connection._abort()
        if self.admin is not None:
            await self.admin.stop()
        if self._server is not None:
            await self._server.wait_closed()
        if self._own_dir is not None:
            self.vhost.close()
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None
