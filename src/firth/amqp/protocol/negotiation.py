"""What the server says and checks while a connection opens: properties and SASL.

connection.start carries the server properties. Clients act on them: kombu (and so Celery)
picks its basic.qos semantics from ``product == "RabbitMQ"`` and ``version`` (3.3 up to 4.0:
``global`` means per channel), and every client reads the ``capabilities`` table to decide
which extensions to use. So the product is "RabbitMQ" and the version the 3.10 line we test
parity against; ``firth`` and ``information`` say what really answers.

Capabilities are a parameter, not a constant: the server advertises only what it implements
(DESIGN.md). ``RABBITMQ_CAPABILITIES`` lists the set RabbitMQ 3.10 sends, as the target.

SASL: PLAIN is ``authzid NUL authcid NUL password``; AMQPLAIN is a field table *without* its
size prefix, holding LOGIN and PASSWORD. Both parse to ``Credentials``; a malformed response is
ACCESS_REFUSED, as RabbitMQ answers it.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import firth
from firth.amqp.protocol.constants import ReplyCode
from firth.amqp.protocol.errors import AmqpConnectionError, AmqpError
from firth.amqp.protocol.methods import ConnectionStart
from firth.amqp.protocol.tables import decode_table

PRODUCT = "RabbitMQ"
RABBITMQ_VERSION = "3.10.8"
"""The RabbitMQ release whose behaviour Firth matches (Debian's package, used for parity)."""

RABBITMQ_CAPABILITIES: dict[str, bool] = {
    "publisher_confirms": True,
    "exchange_exchange_bindings": True,
    "basic.nack": True,
    "consumer_cancel_notify": True,
    "connection.blocked": True,
    "consumer_priorities": True,
    "authentication_failure_close": True,
    "per_consumer_qos": True,
    "direct_reply_to": True,
}
"""The capabilities table RabbitMQ 3.10 sends; advertise a key only once it is implemented."""

MECHANISMS = ("PLAIN", "AMQPLAIN")


def server_properties(capabilities: Mapping[str, bool]) -> dict[str, Any]:
    """The server-properties table of connection.start."""
    return {
        "capabilities": dict(capabilities),
        "cluster_name": "firth",
        "copyright": "Firth contributors",
        "information": "Firth, an AMQP 0-9-1 and Kafka broker speaking RabbitMQ's dialect",
        "platform": "Python",
        "product": PRODUCT,
        "version": RABBITMQ_VERSION,
        "firth_version": firth.__version__,
    }


def connection_start(capabilities: Mapping[str, bool]) -> ConnectionStart:
    return ConnectionStart(
        version_major=0,
        version_minor=9,
        server_properties=server_properties(capabilities),
        mechanisms=" ".join(MECHANISMS).encode(),
        locales=b"en_US",
    )


@dataclass(frozen=True, slots=True)
class Credentials:
    mechanism: str
    username: str
    password: str


def _refused(text: str) -> AmqpConnectionError:
    return AmqpConnectionError(ReplyCode.ACCESS_REFUSED, text, 10, 11)


def parse_sasl(mechanism: str, response: bytes) -> Credentials:
    """Credentials from a start-ok response; ACCESS_REFUSED if unsupported or malformed."""
    if mechanism == "PLAIN":
        parts = response.split(b"\x00")
        if len(parts) != 3:
            raise _refused("PLAIN response is not authzid NUL user NUL password")
        raw_user, raw_password = parts[1], parts[2]
    elif mechanism == "AMQPLAIN":
        try:
            table, _ = decode_table(struct.pack(">I", len(response)) + response)
        except AmqpError:
            raise _refused("AMQPLAIN response is not a field table") from None
        login, secret = table.get("LOGIN"), table.get("PASSWORD")
        if isinstance(login, str):
            login = login.encode("utf-8", "surrogateescape")
        if isinstance(secret, str):
            secret = secret.encode("utf-8", "surrogateescape")
        if not isinstance(login, bytes) or not isinstance(secret, bytes):
            raise _refused("AMQPLAIN response lacks LOGIN or PASSWORD")
        raw_user, raw_password = login, secret
    else:
        raise _refused(f"unsupported authentication mechanism {mechanism!r}")
    try:
        return Credentials(mechanism, raw_user.decode("utf-8"), raw_password.decode("utf-8"))
    except UnicodeDecodeError:
        raise _refused("credentials are not UTF-8") from None
