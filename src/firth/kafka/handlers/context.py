"""What a Kafka API handler receives: the request, the broker, and how to answer.

A handler is `async def handle(ctx: RequestContext) -> Response`, where Response is the encoded
response (bytes, or a list of buffers for writelines) or None when the request gets no answer
(Produce with acks=0). Handlers that do not need a hand-written fast path call `ctx.decode()`
for the kio request entity and `ctx.respond({...})` to build and encode the response of the
request's version from plain dicts, so a handler never branches on the version to shape its
answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from firth.kafka.protocol.codec import build_response, decode_request, encode_response
from firth.kafka.protocol.header import RequestHeader

if TYPE_CHECKING:
    from firth.broker.broker import Broker

Response = bytes | list[bytes | memoryview] | None


class CloseConnection(Exception):
    """Raised by a handler whose only correct answer is to close the connection (Kafka does
    this, for example, when an acks=0 produce fails: the client expects no response)."""


@dataclass(frozen=True, slots=True)
class Listener:
    """The address clients are told to connect to (Metadata, FindCoordinator, DescribeCluster)."""

    host: str
    port: int


@dataclass(slots=True)
class RequestContext:
    header: RequestHeader
    frame: memoryview
    body_offset: int
    broker: Broker
    advertised: Listener
    peer_host: str

    @property
    def version(self) -> int:
        return self.header.api_version

    def decode(self) -> Any:
        return decode_request(self.header, self.frame, self.body_offset)

    def respond(self, fields: dict[str, Any]) -> bytes:
        entity = build_response(self.header.api_key, self.header.api_version, fields)
        return encode_response(self.header, entity)
