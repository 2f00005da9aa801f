"""firth.kafka.protocol: the Kafka wire codec, sans-IO (no asyncio, no storage).

Bytes in, typed values out, bytes back:

- `framing`: `FrameReader` splits the stream into size-prefixed frames.
- `header`: `parse_request_header`, response header versions, first flexible version per API.
- `apis`: the API table and the version ranges ApiVersions advertises (`SUPPORTED_APIS`).
- `codec`: `decode_request` / `build_response` / `encode_response` through kio's entities.
- `produce`, `fetch`: hand-written hot paths (`decode_produce`, `encode_produce_response`,
  `encode_fetch_response`).
- `validation`: `validate_produce_records`, Kafka's checks on a produced batch.
- `records`: record-level batch builder/decoder with compression (tools and tests).
- `error_responses`: `error_response`, one error code in every slot of a request's answer.
- `shape`: the structural walk that guards kio's native decoder.
- `errors`: `ErrorCode` and the `KafkaError` tree; decoding raises only `ProtocolError`s.
"""

from firth.kafka.protocol.apis import ALL_API_RANGES, API_TABLE, ENABLED_GROUPS, SUPPORTED_APIS
from firth.kafka.protocol.codec import (
    api_versions_error_response,
    build_entity,
    build_response,
    decode_request,
    encode_response,
)
from firth.kafka.protocol.error_responses import error_response
from firth.kafka.protocol.errors import (
    ErrorCode,
    FrameError,
    KafkaError,
    MalformedRequestError,
    ProtocolError,
    UnknownApiError,
    UnsupportedVersionError,
)
from firth.kafka.protocol.fetch import (
    FetchPartitionResult,
    FetchTopicResult,
    encode_fetch_response,
)
from firth.kafka.protocol.framing import FrameReader
from firth.kafka.protocol.header import RequestHeader, parse_request_header
from firth.kafka.protocol.produce import (
    PartitionProduceResult,
    ProducePartition,
    ProduceRequestData,
    ProduceTopic,
    decode_produce,
    encode_produce_response,
)
from firth.kafka.protocol.validation import validate_produce_records

__all__ = [
    "ALL_API_RANGES",
    "API_TABLE",
    "ENABLED_GROUPS",
    "SUPPORTED_APIS",
    "ErrorCode",
    "FetchPartitionResult",
    "FetchTopicResult",
    "FrameError",
    "FrameReader",
    "KafkaError",
    "MalformedRequestError",
    "PartitionProduceResult",
    "ProducePartition",
    "ProduceRequestData",
    "ProduceTopic",
    "ProtocolError",
    "RequestHeader",
    "UnknownApiError",
    "UnsupportedVersionError",
    "api_versions_error_response",
    "build_entity",
    "build_response",
    "decode_produce",
    "decode_request",
    "encode_fetch_response",
    "encode_produce_response",
    "encode_response",
    "error_response",
    "parse_request_header",
    "validate_produce_records",
]
