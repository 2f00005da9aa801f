"""The AMQP layer's one error tree: every protocol failure carries its reply code.

``AmqpConnectionError`` ends the connection (the server sends connection.close with the code and
waits for close-ok); ``AmqpChannelError`` ends one channel (channel.close, the connection lives
on). Both remember the class and method that failed so the close frame can name them, as
RabbitMQ does. Names avoid the builtin ``ConnectionError`` on purpose: the socket adapter catches
both kinds and must not confuse them.
"""

from __future__ import annotations

from firth.amqp.protocol.constants import ReplyCode

CONNECTION_CODES = frozenset(
    {
        ReplyCode.CONNECTION_FORCED,
        ReplyCode.INVALID_PATH,
        ReplyCode.FRAME_ERROR,
        ReplyCode.SYNTAX_ERROR,
        ReplyCode.COMMAND_INVALID,
        ReplyCode.CHANNEL_ERROR,
        ReplyCode.UNEXPECTED_FRAME,
        ReplyCode.RESOURCE_ERROR,
        ReplyCode.NOT_ALLOWED,
        ReplyCode.NOT_IMPLEMENTED,
        ReplyCode.INTERNAL_ERROR,
    }
)
"""Codes the spec marks as connection-level ("hard") errors; the rest are channel-level, except
ACCESS_REFUSED, which is a connection error during negotiation and a channel error after it."""


class AmqpError(Exception):
    """Base of the layer. ``reply_code`` goes on the wire; ``reply_text`` is for humans."""

    def __init__(
        self, reply_code: ReplyCode, reply_text: str, class_id: int = 0, method_id: int = 0
    ) -> None:
        super().__init__(f"{reply_code.name} {int(reply_code)}: {reply_text}")
        self.reply_code = reply_code
        self.reply_text = reply_text
        self.class_id = class_id
        self.method_id = method_id

    @property
    def close_text(self) -> str:
        """RabbitMQ's style of close text: ``NOT_FOUND - no queue 'q' in vhost '/'``."""
        return f"{self.reply_code.name} - {self.reply_text}"[:255]


class AmqpConnectionError(AmqpError):
    """A hard error: the whole connection closes."""


class AmqpChannelError(AmqpError):
    """A soft error: channel ``channel`` closes, the connection and other channels go on."""

    def __init__(
        self,
        reply_code: ReplyCode,
        reply_text: str,
        class_id: int = 0,
        method_id: int = 0,
        *,
        channel: int = 0,
    ) -> None:
        super().__init__(reply_code, reply_text, class_id, method_id)
        self.channel = channel


class ProtocolHeaderError(AmqpConnectionError):
    """The peer did not open with ``AMQP 0 0 9 1``: answer our header, then close the socket."""

    def __init__(self, received: bytes) -> None:
        super().__init__(ReplyCode.FRAME_ERROR, f"bad protocol header {received!r}")
        self.received = received


def frame_error(text: str) -> AmqpConnectionError:
    return AmqpConnectionError(ReplyCode.FRAME_ERROR, text)


def syntax_error(text: str, class_id: int = 0, method_id: int = 0) -> AmqpConnectionError:
    return AmqpConnectionError(ReplyCode.SYNTAX_ERROR, text, class_id, method_id)
