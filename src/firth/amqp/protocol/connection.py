"""The server side of one AMQP 0-9-1 connection, as a sans-IO state machine.

Bytes in (``receive_data``), events out (``next_event`` / ``events``), bytes to write out
(``data_to_send``). It never touches a socket, a clock or the broker: the asyncio adapter
feeds it, acts on the events and writes what it produced. Everything here is testable by
feeding bytes.

What it owns:

- the protocol header check (a wrong header is answered with ours, then the socket closes);
- frame parsing with the frame_max limit (4096 until tune-ok settles it);
- negotiation: start → start-ok (PLAIN/AMQPLAIN checked with the ``authenticate`` callback)
  → tune → tune-ok → open → open-ok, then ``ConnectionOpened``;
- channel lifecycle: channel.open/close/close-ok are answered here; other methods on an open
  channel become ``MethodFrame`` events, and content (method + header + bodies) is assembled
  per channel into one ``Message`` event; a channel given a publish sink
  (``set_publish_sink``) has its single-frame basic.publish messages parsed in place and
  handed to the sink instead, without a ``Message`` or a method object (the publish hot
  path; the sink runs inside ``next_event``, in order with the events around it);
- closing: ``close(error)`` sends connection.close and then ignores everything but close and
  close-ok; ``close_channel(error)`` does the same for one channel.

Connection states, and the connection-class method each one accepts (anything else is
COMMAND_INVALID; connection.close is accepted in every state after the header)::

    AWAIT_HEADER   --(valid header; we send start)----------> AWAIT_START_OK
    AWAIT_START_OK --start-ok (credentials ok; we send tune)-> AWAIT_TUNE_OK
    AWAIT_TUNE_OK  --tune-ok--------------------------------> AWAIT_OPEN
    AWAIT_OPEN     --open (vhost ok; we send open-ok)-------> OPEN
    any            --close (we send close-ok)---------------> CLOSED
    any            --we call close(); we send close---------> CLOSING --close-ok--> CLOSED

Errors are raised from ``next_event`` as ``AmqpConnectionError`` / ``AmqpChannelError``; the
caller answers them with ``close`` / ``close_channel``. A framing error (bad type, size or
frame-end) loses the frame boundaries, so input after it is discarded and ``close`` goes
straight to CLOSED (the adapter flushes connection.close and drops the socket) instead of
waiting for a close-ok that could not be parsed. Events decoded before an error are
returned first, because decoding is lazy: one ``next_event`` call decodes one frame.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from firth.amqp.protocol.constants import (
    CLASS_CONNECTION,
    DEFAULT_CHANNEL_MAX,
    DEFAULT_FRAME_MAX,
    DEFAULT_HEARTBEAT,
    DEFAULT_MAX_MESSAGE_SIZE,
    FRAME_BODY,
    FRAME_END,
    FRAME_HEADER,
    FRAME_HEADER_SIZE,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    FRAME_MIN_SIZE,
    FRAME_OVERHEAD,
    PROTOCOL_HEADER,
    ReplyCode,
)
from firth.amqp.protocol.errors import (
    AmqpChannelError,
    AmqpConnectionError,
    AmqpError,
    ProtocolHeaderError,
    frame_error,
)
from firth.amqp.protocol.frames import (
    FRAME_HEADER_STRUCT,
    FRAME_TYPES,
    HEARTBEAT_FRAME,
    encode_content,
    encode_method_frame,
)
from firth.amqp.protocol.methods import (
    ChannelClose,
    ChannelCloseOk,
    ChannelOpen,
    ChannelOpenOk,
    ConnectionClose,
    ConnectionCloseOk,
    ConnectionOpen,
    ConnectionOpenOk,
    ConnectionStartOk,
    ConnectionTune,
    ConnectionTuneOk,
    Method,
    decode_method,
    encode_deliver,
)
from firth.amqp.protocol.negotiation import Credentials, connection_start, parse_sasl
from firth.amqp.protocol.properties import BasicProperties, ContentHeader

_PUBLISH_IDS = b"\x00\x3c\x00\x28"
"""class 60 (basic), method 40 (publish): the start of a basic.publish method payload."""
_CONTENT_PREFIX = struct.Struct(">HHQ")
_HEADER_FRAME_START = struct.Struct(">BBHIHHQ")
"""frame-end of the method frame, then a content header frame's start up to body-size."""
_BODY_FRAME_START = struct.Struct(">BBHI")
"""frame-end of the header frame, then a body frame's header."""

# -- events ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MethodFrame:
    """A method without content on an open channel (never connection.* or channel.open/close)."""

    channel: int
    method: Method


@dataclass(slots=True)
class Message:
    """A content-bearing method (basic.publish, ...) with its assembled header and body."""

    channel: int
    method: Method
    header: ContentHeader
    body: bytes

    @property
    def properties(self) -> BasicProperties:
        return self.header.properties


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A heartbeat frame arrived (any frame counts as liveness; this one carries nothing else)."""


@dataclass(frozen=True, slots=True)
class ConnectionOpened:
    """Negotiation finished: the connection is usable."""

    virtual_host: str
    username: str
    client_properties: dict[str, Any]
    channel_max: int
    frame_max: int
    heartbeat: int


@dataclass(frozen=True, slots=True)
class ChannelOpened:
    channel: int


@dataclass(frozen=True, slots=True)
class ChannelClosed:
    """A channel is gone: the peer closed it (``by_peer``) or confirmed our close."""

    channel: int
    reply_code: int
    reply_text: str
    by_peer: bool


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The connection is over; after this the adapter closes the socket."""

    reply_code: int
    reply_text: str
    by_peer: bool


Event = (
    MethodFrame
    | Message
    | Heartbeat
    | ConnectionOpened
    | ChannelOpened
    | ChannelClosed
    | ConnectionClosed
)


class State(Enum):
    AWAIT_HEADER = "await-header"
    AWAIT_START_OK = "await-start-ok"
    AWAIT_TUNE_OK = "await-tune-ok"
    AWAIT_OPEN = "await-open"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


_OPEN, _CLOSING, _CLOSED = State.OPEN, State.CLOSING, State.CLOSED
"""For the frame loop: a module global is cheaper to read than an enum member."""


NEGOTIATION_STEPS: dict[State, type[Method]] = {
    State.AWAIT_START_OK: ConnectionStartOk,
    State.AWAIT_TUNE_OK: ConnectionTuneOk,
    State.AWAIT_OPEN: ConnectionOpen,
}
"""The one connection-class method each negotiation state accepts (besides connection.close)."""


PublishSink = Callable[[str, str, int, bytes, bytes], None]
"""``(exchange, routing_key, bits, properties, body)`` for one basic.publish on its channel: bits
has mandatory in bit 0 and immediate in bit 1; properties are the content header's flags and
properties as sent. Called from ``next_event``; what it raises comes out of ``next_event``."""


@dataclass(slots=True)
class _Channel:
    """Per-channel protocol state: closing, and the content being assembled."""

    closing: bool = False
    method: Method | None = None
    header: ContentHeader | None = None
    parts: list[bytes] = field(default_factory=list)
    received: int = 0
    sink: PublishSink | None = None


Authenticator = Callable[[Credentials], bool]


def _guest_only(credentials: Credentials) -> bool:
    return credentials.username == "guest" and credentials.password == "guest"


class AmqpConnection:
    """Server side of one connection. Not thread-safe: one owner feeds and drains it."""

    def __init__(
        self,
        *,
        authenticate: Authenticator = _guest_only,
        virtual_hosts: frozenset[str] = frozenset({"/"}),
        capabilities: Mapping[str, bool] | None = None,
        frame_max: int = DEFAULT_FRAME_MAX,
        channel_max: int = DEFAULT_CHANNEL_MAX,
        heartbeat: int = DEFAULT_HEARTBEAT,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        self._authenticate = authenticate
        self._virtual_hosts = virtual_hosts
        self._capabilities = dict(capabilities or {"authentication_failure_close": True})
        self.server_frame_max = frame_max
        self.server_channel_max = channel_max
        self.server_heartbeat = heartbeat
        self.max_message_size = max_message_size
        # Negotiated values; frame_max stays at the spec minimum until tune-ok.
        self.frame_max = FRAME_MIN_SIZE
        self.channel_max = channel_max
        self.heartbeat = 0
        self.state = State.AWAIT_HEADER
        self.username = ""
        self.virtual_host = ""
        self.client_properties: dict[str, Any] = {}
        self.channels: dict[int, _Channel] = {}
        self._in = b""
        self._in_pos = 0
        self._out = bytearray()
        self._framing_broken = False

    # -- input -------------------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer bytes from the peer; call ``next_event`` (or iterate ``events``) after.

        The buffer is immutable ``bytes``: when everything before has been parsed (the common
        case) it is ``data`` itself, not a copy, and a payload sliced out of it is one copy.
        """
        if self.state is not State.CLOSED and not self._framing_broken:
            pos = self._in_pos
            if pos >= len(self._in):
                self._in = bytes(data)
            else:
                self._in = self._in[pos:] + data
            self._in_pos = 0

    def set_publish_sink(self, channel: int, sink: PublishSink | None) -> None:
        """Hand the channel's complete single-frame basic.publish messages to ``sink`` inside
        ``next_event`` instead of making ``Message`` events of them (see ``PublishSink``).

        Ignored if the channel is not open."""
        state = self.channels.get(channel)
        if state is not None:
            state.sink = sink

    def events(self) -> Iterator[Event]:
        """Every event the buffered bytes make, in order; raises at the first protocol error."""
        while (event := self.next_event()) is not None:
            yield event

    def next_event(self) -> Event | None:
        """Decode buffered frames until one makes an event; ``None`` means more data is needed.

        The frame layer is inlined here (it is ``frames.parse_frame``, kept in step by the
        tests) and body frames of content in progress take a short path: this loop runs three
        times per published message.
        """
        buf = self._in
        while True:
            state = self.state
            if state is not _OPEN and state is not _CLOSING:
                if state is _CLOSED:
                    return None
                if state is State.AWAIT_HEADER:
                    if not self._read_header():
                        return None
                    buf = self._in
                    continue
            pos = self._in_pos
            if len(buf) - pos < FRAME_HEADER_SIZE:
                self._compact()
                return None
            frame_type, channel, size = FRAME_HEADER_STRUCT.unpack_from(buf, pos)
            if size + FRAME_OVERHEAD > self.frame_max:
                raise self._framing_error(
                    f"frame size {size + FRAME_OVERHEAD} exceeds frame_max {self.frame_max}"
                )
            if frame_type not in FRAME_TYPES:
                raise self._framing_error(f"unknown frame type {frame_type}")
            end = pos + FRAME_HEADER_SIZE + size
            if len(buf) <= end:
                self._compact()
                return None
            if buf[end] != FRAME_END:
                raise self._framing_error(f"frame-end octet {buf[end]:#04x}, expected 0xce")
            if (
                frame_type == FRAME_METHOD
                and state is _OPEN
                and channel
                and buf.startswith(_PUBLISH_IDS, pos + FRAME_HEADER_SIZE)
            ):
                channel_state = self.channels.get(channel)
                if (
                    channel_state is not None
                    and (sink := channel_state.sink) is not None
                    and not channel_state.closing
                    and channel_state.method is None
                ):
                    self._in_pos = end + 1
                    if self._sink_publish(sink, channel, pos + FRAME_HEADER_SIZE, end):
                        continue
            payload = buf[pos + FRAME_HEADER_SIZE : end]
            self._in_pos = end + 1
            if frame_type == FRAME_BODY and state is _OPEN:
                channel_state = self.channels.get(channel)
                if channel_state is not None and not channel_state.closing:
                    event = self._on_content_body(channel, channel_state, payload)
                    if event is not None:
                        return event
                    continue
            event = self._on_frame(frame_type, channel, payload)
            if event is not None:
                return event

    def _sink_publish(self, sink: PublishSink, channel: int, start: int, end: int) -> bool:
        """basic.publish (method payload ``buf[start:end]``, already consumed) whose header and
        single body frame are buffered right behind it on the same channel: parsed in place
        and given to ``sink``; nothing is built but the strings and byte strings it takes.

        Returns False, consuming nothing after the method, for anything unusual (frames
        missing, another channel in between, a bad size or frame-end, a class mismatch, an
        oversized body, arguments that do not add up): the general path then handles it,
        errors included, exactly as without a sink.
        """
        if end - start < 9:  # ids, ticket, two empty short strings, bits
            return False
        buf = self._in
        ex_len = buf[start + 6]
        ex_end = start + 7 + ex_len
        if ex_end >= end:
            return False
        rk_end = ex_end + 1 + buf[ex_end]
        if rk_end + 1 != end:
            return False
        pos = end + 1
        available = len(buf)
        if available - pos < FRAME_HEADER_SIZE:
            return False
        frame_type, header_channel, size = FRAME_HEADER_STRUCT.unpack_from(buf, pos)
        header_end = pos + FRAME_HEADER_SIZE + size
        if (
            frame_type != FRAME_HEADER
            or header_channel != channel
            or size + FRAME_OVERHEAD > self.frame_max
            or size < 14
            or available <= header_end
            or buf[header_end] != FRAME_END
        ):
            return False
        class_id, _weight, body_size = _CONTENT_PREFIX.unpack_from(buf, pos + FRAME_HEADER_SIZE)
        if class_id != 60 or body_size > self.max_message_size:
            return False
        if body_size:
            body_start = header_end + 1
            if available - body_start < FRAME_HEADER_SIZE:
                return False
            frame_type, body_channel, size = FRAME_HEADER_STRUCT.unpack_from(buf, body_start)
            body_end = body_start + FRAME_HEADER_SIZE + size
            if (
                frame_type != FRAME_BODY
                or body_channel != channel
                or size != body_size
                or size + FRAME_OVERHEAD > self.frame_max
                or available <= body_end
                or buf[body_end] != FRAME_END
            ):
                return False
            body = buf[body_start + FRAME_HEADER_SIZE : body_end]
            self._in_pos = body_end + 1
        else:
            body = b""
            self._in_pos = header_end + 1
        sink(
            buf[start + 7 : ex_end].decode("utf-8", "surrogateescape") if ex_len else "",
            buf[ex_end + 1 : rk_end].decode("utf-8", "surrogateescape"),
            buf[rk_end],
            buf[pos + FRAME_HEADER_SIZE + 12 : header_end],
            body,
        )
        return True

    def _framing_error(self, text: str) -> AmqpConnectionError:
        """The stream cannot be resynchronised after a bad frame: drop what is buffered and all
        that follows; ``close()`` then ends the connection outright."""
        self._framing_broken = True
        self._in = b""
        self._in_pos = 0
        return frame_error(text)

    def _compact(self) -> None:
        if self._in_pos:
            self._in = self._in[self._in_pos :]
            self._in_pos = 0

    def _read_header(self) -> bool:
        got = bytes(self._in[:8])
        if got != PROTOCOL_HEADER[: len(got)]:
            self._fail_header(got)
        if len(got) < 8:
            return False
        self._in = self._in[8:]
        self._send_method(0, connection_start(self._capabilities))
        self.state = State.AWAIT_START_OK
        return True

    def _fail_header(self, got: bytes) -> None:
        self._out += PROTOCOL_HEADER
        self.state = State.CLOSED
        self._in = b""
        raise ProtocolHeaderError(got)

    # -- frames ------------------------------------------------------------------------------------

    def _on_frame(self, frame_type: int, channel: int, payload: bytes) -> Event | None:
        if frame_type == FRAME_HEARTBEAT:
            if channel != 0:
                raise frame_error(f"heartbeat frame on channel {channel}")
            return Heartbeat()
        if self.state is State.CLOSING:
            return self._while_closing(frame_type, channel, payload)
        if channel == 0:
            if frame_type != FRAME_METHOD:
                raise AmqpConnectionError(
                    ReplyCode.UNEXPECTED_FRAME, f"content frame (type {frame_type}) on channel 0"
                )
            return self._on_connection_method(decode_method(payload))
        if self.state is not State.OPEN:
            raise AmqpConnectionError(
                ReplyCode.COMMAND_INVALID, f"frame on channel {channel} before connection.open"
            )
        state = self.channels.get(channel)
        if state is None:
            return self._on_unopened_channel(frame_type, channel, payload)
        if state.closing:
            return self._while_channel_closing(frame_type, channel, payload)
        if frame_type == FRAME_METHOD:
            if state.method is not None:
                raise AmqpConnectionError(
                    ReplyCode.UNEXPECTED_FRAME,
                    f"method frame on channel {channel} while expecting content for "
                    f"{state.method.NAME}",
                )
            return self._on_channel_method(channel, state, decode_method(payload))
        if frame_type == FRAME_HEADER:
            return self._on_content_header(channel, state, payload)
        return self._on_content_body(channel, state, payload)

    def _on_unopened_channel(self, frame_type: int, channel: int, payload: bytes) -> Event | None:
        if frame_type != FRAME_METHOD:
            raise AmqpConnectionError(
                ReplyCode.CHANNEL_ERROR, f"content frame on unopened channel {channel}"
            )
        method = decode_method(payload)
        if isinstance(method, ChannelOpen):
            if channel > self.channel_max:
                raise AmqpConnectionError(
                    ReplyCode.CHANNEL_ERROR,
                    f"channel {channel} above channel_max {self.channel_max}",
                    20,
                    10,
                )
            self.channels[channel] = _Channel()
            self._send_method(channel, ChannelOpenOk())
            return ChannelOpened(channel)
        if isinstance(method, ChannelCloseOk):
            return None  # late close-ok for a channel already forgotten
        raise AmqpConnectionError(
            ReplyCode.CHANNEL_ERROR,
            f"expected 'channel.open' on channel {channel}, got '{method.NAME}'",
            method.CLASS_ID,
            method.METHOD_ID,
        )

    def _on_channel_method(self, channel: int, state: _Channel, method: Method) -> Event | None:
        if method.CLASS_ID == CLASS_CONNECTION:
            raise AmqpConnectionError(
                ReplyCode.COMMAND_INVALID,
                f"{method.NAME} on channel {channel}",
                method.CLASS_ID,
                method.METHOD_ID,
            )
        if isinstance(method, ChannelOpen):
            raise AmqpConnectionError(
                ReplyCode.CHANNEL_ERROR, f"second 'channel.open' on channel {channel}", 20, 10
            )
        if isinstance(method, ChannelClose):
            del self.channels[channel]
            self._send_method(channel, ChannelCloseOk())
            return ChannelClosed(channel, method.reply_code, method.reply_text, by_peer=True)
        if isinstance(method, ChannelCloseOk):
            raise AmqpConnectionError(
                ReplyCode.COMMAND_INVALID,
                f"unexpected channel.close-ok on channel {channel}",
                20,
                41,
            )
        if method.HAS_CONTENT:
            state.method = method
            return None
        return MethodFrame(channel, method)

    def _on_content_header(self, channel: int, state: _Channel, payload: bytes) -> Event | None:
        method = state.method
        if method is None or state.header is not None:
            raise AmqpConnectionError(
                ReplyCode.UNEXPECTED_FRAME, f"unexpected content header on channel {channel}"
            )
        header = ContentHeader.parse(payload)
        if header.class_id != method.CLASS_ID:
            raise AmqpConnectionError(
                ReplyCode.UNEXPECTED_FRAME,
                f"content header class {header.class_id} for {method.NAME}",
                method.CLASS_ID,
                method.METHOD_ID,
            )
        if header.body_size > self.max_message_size:
            state.method = None
            state.closing = True  # discard the body frames still to come
            raise AmqpChannelError(
                ReplyCode.PRECONDITION_FAILED,
                f"message size {header.body_size} is larger than configured max size "
                f"{self.max_message_size}",
                method.CLASS_ID,
                method.METHOD_ID,
                channel=channel,
            )
        if header.body_size == 0:
            state.method = None
            return Message(channel, method, header, b"")
        state.header = header
        return None

    def _on_content_body(self, channel: int, state: _Channel, payload: bytes) -> Event | None:
        header = state.header
        method = state.method
        if header is None or method is None:
            raise AmqpConnectionError(
                ReplyCode.UNEXPECTED_FRAME, f"unexpected content body on channel {channel}"
            )
        state.received += len(payload)
        if state.received > header.body_size:
            raise frame_error(
                f"content body of {state.received} bytes exceeds body-size {header.body_size}"
            )
        if state.received < header.body_size:
            state.parts.append(payload)
            return None
        if state.parts:
            state.parts.append(payload)
            body = b"".join(state.parts)
            state.parts = []
        else:
            body = payload
        state.method = None
        state.header = None
        state.received = 0
        return Message(channel, method, header, body)

    def _while_channel_closing(self, frame_type: int, channel: int, payload: bytes) -> Event | None:
        """After we sent channel.close: drop everything but close/close-ok (spec 2.3.5.1)."""
        if frame_type != FRAME_METHOD:
            return None
        try:
            method = decode_method(payload)
        except AmqpError:
            return None
        if isinstance(method, ChannelCloseOk):
            del self.channels[channel]
            return ChannelClosed(channel, 0, "", by_peer=False)
        if isinstance(method, ChannelClose):
            # Both sides closed at once: answer, and the channel is gone.
            del self.channels[channel]
            self._send_method(channel, ChannelCloseOk())
            return ChannelClosed(channel, method.reply_code, method.reply_text, by_peer=True)
        return None

    def _while_closing(self, frame_type: int, channel: int, payload: bytes) -> Event | None:
        """After we sent connection.close: only close and close-ok matter."""
        if frame_type != FRAME_METHOD or channel != 0:
            return None
        try:
            method = decode_method(payload)
        except AmqpError:
            return None
        if isinstance(method, ConnectionCloseOk):
            self.state = State.CLOSED
            return ConnectionClosed(0, "", by_peer=False)
        if isinstance(method, ConnectionClose):
            self._send_method(0, ConnectionCloseOk())
            self.state = State.CLOSED
            return ConnectionClosed(method.reply_code, method.reply_text, by_peer=True)
        return None

    # -- connection class --------------------------------------------------------------------------

    def _on_connection_method(self, method: Method) -> Event | None:
        if isinstance(method, ConnectionClose):
            self._send_method(0, ConnectionCloseOk())
            self.state = State.CLOSED
            return ConnectionClosed(method.reply_code, method.reply_text, by_peer=True)
        expected = NEGOTIATION_STEPS.get(self.state)
        if expected is None or not isinstance(method, expected):
            raise AmqpConnectionError(
                ReplyCode.COMMAND_INVALID,
                f"{method.NAME} not allowed in state {self.state.value}",
                method.CLASS_ID,
                method.METHOD_ID,
            )
        if isinstance(method, ConnectionStartOk):
            self._on_start_ok(method)
            return None
        if isinstance(method, ConnectionTuneOk):
            self._on_tune_ok(method)
            return None
        assert isinstance(method, ConnectionOpen)
        return self._on_open(method)

    def _on_start_ok(self, method: ConnectionStartOk) -> None:
        credentials = parse_sasl(method.mechanism, method.response)
        if not self._authenticate(credentials):
            raise AmqpConnectionError(
                ReplyCode.ACCESS_REFUSED,
                f"Login was refused using authentication mechanism {credentials.mechanism}. "
                "For details see the broker logfile.",
                10,
                11,
            )
        self.username = credentials.username
        self.client_properties = method.client_properties
        self._send_method(
            0, ConnectionTune(self.server_channel_max, self.server_frame_max, self.server_heartbeat)
        )
        self.state = State.AWAIT_TUNE_OK

    def _on_tune_ok(self, method: ConnectionTuneOk) -> None:
        frame_max = method.frame_max or self.server_frame_max
        if not FRAME_MIN_SIZE <= frame_max <= self.server_frame_max:
            raise AmqpConnectionError(
                ReplyCode.NOT_ALLOWED,
                f"negotiated frame_max = {frame_max} is outside [{FRAME_MIN_SIZE}, "
                f"{self.server_frame_max}]",
                10,
                31,
            )
        channel_max = method.channel_max or self.server_channel_max
        if channel_max > self.server_channel_max:
            raise AmqpConnectionError(
                ReplyCode.NOT_ALLOWED,
                f"negotiated channel_max = {channel_max} is higher than the maximum allowed "
                f"value ({self.server_channel_max})",
                10,
                31,
            )
        self.frame_max = frame_max
        self.channel_max = channel_max
        self.heartbeat = method.heartbeat
        self.state = State.AWAIT_OPEN

    def _on_open(self, method: ConnectionOpen) -> Event:
        if method.virtual_host not in self._virtual_hosts:
            raise AmqpConnectionError(
                ReplyCode.NOT_ALLOWED,
                f"vhost {method.virtual_host} not found",
                10,
                40,
            )
        self.virtual_host = method.virtual_host
        self._send_method(0, ConnectionOpenOk())
        self.state = State.OPEN
        return ConnectionOpened(
            self.virtual_host,
            self.username,
            self.client_properties,
            self.channel_max,
            self.frame_max,
            self.heartbeat,
        )

    # -- output ------------------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Everything produced since the last call (empty if nothing)."""
        data = bytes(self._out)
        self._out.clear()
        return data

    def _send_method(self, channel: int, method: Method) -> None:
        self._out += encode_method_frame(channel, method)

    def send_method(self, channel: int, method: Method) -> None:
        """Queue a content-less method on an open channel (or 0 for connection methods)."""
        self._check_sendable(channel)
        self._out += encode_method_frame(channel, method)

    def send_content(
        self, channel: int, method: Method, properties: BasicProperties | bytes, body: bytes
    ) -> None:
        """Queue a content method (deliver, get-ok, return) with its header and body frames."""
        self._check_sendable(channel)
        self._out += encode_content(channel, method.encode(), properties, body, self.frame_max)

    def send_deliver(
        self,
        channel: int,
        consumer_tag: str,
        delivery_tag: int,
        redelivered: bool,
        exchange: str,
        routing_key: str,
        properties: BasicProperties | bytes,
        body: bytes,
    ) -> None:
        """basic.deliver fast path: no method object; ``properties`` may be raw bytes.

        A body that fits one frame is written straight into the output buffer."""
        size = len(body)
        if isinstance(properties, bytes) and size + FRAME_OVERHEAD <= self.frame_max:
            payload = encode_deliver(consumer_tag, delivery_tag, redelivered, exchange, routing_key)
            out = self._out
            out += FRAME_HEADER_STRUCT.pack(FRAME_METHOD, channel, len(payload))
            out += payload
            out += _HEADER_FRAME_START.pack(
                FRAME_END, FRAME_HEADER, channel, 12 + len(properties), 60, 0, size
            )
            out += properties
            if size:
                out += _BODY_FRAME_START.pack(FRAME_END, FRAME_BODY, channel, size)
                out += body
            out.append(FRAME_END)
            return
        self._out += encode_content(
            channel,
            encode_deliver(consumer_tag, delivery_tag, redelivered, exchange, routing_key),
            properties,
            body,
            self.frame_max,
        )

    def send_heartbeat(self) -> None:
        self._out += HEARTBEAT_FRAME

    def _check_sendable(self, channel: int) -> None:
        if channel and (channel not in self.channels or self.channels[channel].closing):
            raise ValueError(f"channel {channel} is not open")

    def close_channel(self, error: AmqpChannelError) -> None:
        """Send channel.close for ``error`` and drop frames on it until close-ok arrives."""
        state = self.channels.get(error.channel)
        if state is None or self.state is not State.OPEN:
            return
        state.closing = True
        state.method = None
        state.header = None
        state.parts = []
        state.received = 0
        self._send_method(
            error.channel,
            ChannelClose(int(error.reply_code), error.close_text, error.class_id, error.method_id),
        )

    def close(self, error: AmqpError | None = None) -> None:
        """Send connection.close (with ``error``'s code, or 200) and wait for close-ok."""
        if self.state in (State.CLOSING, State.CLOSED):
            return
        if self.state is State.AWAIT_HEADER:
            self.state = State.CLOSED
            return
        if error is None:
            close = ConnectionClose(200, "Goodbye", 0, 0)
        else:
            close = ConnectionClose(
                int(error.reply_code), error.close_text, error.class_id, error.method_id
            )
        self._send_method(0, close)
        # After a framing error no close-ok can be read back: the connection ends here.
        self.state = State.CLOSED if self._framing_broken else State.CLOSING
        self.channels.clear()

    @property
    def closed(self) -> bool:
        """True once nothing more will be read: close the socket after flushing output."""
        return self.state is State.CLOSED
