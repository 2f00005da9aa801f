"""Kafka error codes and the codec's exception tree.

Every failure the Kafka layer can report carries the wire `error_code` a client understands.
`ErrorCode` lists the codes Firth's broker uses (the numbers are Kafka's; a test checks them
against kio's table, which is generated from Kafka's own `Errors.java`). Whether a client may
retry is Kafka's decision too, so `ErrorCode.retriable` reads kio's table rather than keeping a
second copy.

The tree:

```
KafkaError(code, message)            anything a handler answers with an error code
  ProtocolError                      the bytes are not a request we can serve
    FrameError                       the framing is broken: the connection must close
    UnknownApiError                  API key we do not implement (Kafka closes the connection)
    UnsupportedVersionError          known API, version outside what we decode
    MalformedRequestError            the body does not parse as its schema says
```

`ProtocolError` subclasses are the only exceptions the decoding functions of this package raise
for bad input; the fuzz tests hold them to that.
"""

from __future__ import annotations

from enum import IntEnum

from kio.schema.errors import ErrorCode as _KioErrorCode


class ErrorCode(IntEnum):
    """Kafka protocol error codes used by Firth (values are Kafka's, see `Errors.java`)."""

    UNKNOWN_SERVER_ERROR = -1
    NONE = 0
    OFFSET_OUT_OF_RANGE = 1
    CORRUPT_MESSAGE = 2
    UNKNOWN_TOPIC_OR_PARTITION = 3
    INVALID_FETCH_SIZE = 4
    LEADER_NOT_AVAILABLE = 5
    NOT_LEADER_OR_FOLLOWER = 6
    REQUEST_TIMED_OUT = 7
    MESSAGE_TOO_LARGE = 10
    OFFSET_METADATA_TOO_LARGE = 12
    NETWORK_EXCEPTION = 13
    COORDINATOR_LOAD_IN_PROGRESS = 14
    COORDINATOR_NOT_AVAILABLE = 15
    NOT_COORDINATOR = 16
    INVALID_TOPIC_EXCEPTION = 17
    RECORD_LIST_TOO_LARGE = 18
    NOT_ENOUGH_REPLICAS = 19
    INVALID_REQUIRED_ACKS = 21
    ILLEGAL_GENERATION = 22
    INCONSISTENT_GROUP_PROTOCOL = 23
    INVALID_GROUP_ID = 24
    UNKNOWN_MEMBER_ID = 25
    INVALID_SESSION_TIMEOUT = 26
    REBALANCE_IN_PROGRESS = 27
    INVALID_COMMIT_OFFSET_SIZE = 28
    TOPIC_AUTHORIZATION_FAILED = 29
    GROUP_AUTHORIZATION_FAILED = 30
    CLUSTER_AUTHORIZATION_FAILED = 31
    INVALID_TIMESTAMP = 32
    UNSUPPORTED_SASL_MECHANISM = 33
    UNSUPPORTED_VERSION = 35
    TOPIC_ALREADY_EXISTS = 36
    INVALID_PARTITIONS = 37
    INVALID_REPLICATION_FACTOR = 38
    INVALID_REPLICA_ASSIGNMENT = 39
    INVALID_CONFIG = 40
    NOT_CONTROLLER = 41
    INVALID_REQUEST = 42
    UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
    POLICY_VIOLATION = 44
    OUT_OF_ORDER_SEQUENCE_NUMBER = 45
    DUPLICATE_SEQUENCE_NUMBER = 46
    INVALID_PRODUCER_EPOCH = 47
    INVALID_TXN_STATE = 48
    INVALID_PRODUCER_ID_MAPPING = 49
    INVALID_TRANSACTION_TIMEOUT = 50
    CONCURRENT_TRANSACTIONS = 51
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
    KAFKA_STORAGE_ERROR = 56
    UNKNOWN_PRODUCER_ID = 59
    TOPIC_DELETION_DISABLED = 73
    FENCED_LEADER_EPOCH = 74
    UNKNOWN_LEADER_EPOCH = 75
    UNSUPPORTED_COMPRESSION_TYPE = 76
    OFFSET_NOT_AVAILABLE = 78
    MEMBER_ID_REQUIRED = 79
    GROUP_MAX_SIZE_REACHED = 81
    FENCED_INSTANCE_ID = 82
    GROUP_SUBSCRIBED_TO_TOPIC = 86
    INVALID_RECORD = 87
    UNSTABLE_OFFSET_COMMIT = 88
    THROTTLING_QUOTA_EXCEEDED = 89
    PRODUCER_FENCED = 90
    RESOURCE_NOT_FOUND = 91
    NON_EMPTY_GROUP = 68
    GROUP_ID_NOT_FOUND = 69
    UNKNOWN_TOPIC_ID = 100
    INCONSISTENT_TOPIC_ID = 103
    TRANSACTIONAL_ID_NOT_FOUND = 105
    TRANSACTION_ABORTABLE = 120

    @property
    def retriable(self) -> bool:
        """Whether Kafka's clients treat this error as transient and retry."""
        return bool(_KioErrorCode(int(self)).retriable)


class KafkaError(Exception):
    """An error with the Kafka `error_code` it is reported as."""

    default_code: ErrorCode = ErrorCode.UNKNOWN_SERVER_ERROR

    def __init__(self, code: ErrorCode | int | None = None, message: str = "") -> None:
        self.code = ErrorCode(code) if code is not None else self.default_code
        self.message = message or self.code.name
        super().__init__(f"{self.code.name}: {self.message}")

    @property
    def retriable(self) -> bool:
        return self.code.retriable


class ProtocolError(KafkaError):
    """Bytes that do not form a request we can serve."""

    default_code = ErrorCode.INVALID_REQUEST


class FrameError(ProtocolError):
    """A size prefix that is negative or over the limit: the stream cannot be resynchronised."""


class UnknownApiError(ProtocolError):
    """A request for an API key this codec does not implement."""

    def __init__(self, api_key: int, message: str = "") -> None:
        super().__init__(ErrorCode.INVALID_REQUEST, message or f"unknown API key {api_key}")
        self.api_key = api_key


class UnsupportedVersionError(ProtocolError):
    """A known API at a version we do not decode; answer UNSUPPORTED_VERSION."""

    default_code = ErrorCode.UNSUPPORTED_VERSION

    def __init__(self, api_key: int, api_version: int, message: str = "") -> None:
        super().__init__(
            ErrorCode.UNSUPPORTED_VERSION,
            message or f"API key {api_key} version {api_version} is not supported",
        )
        self.api_key = api_key
        self.api_version = api_version


class MalformedRequestError(ProtocolError):
    """A request body (or header) that does not parse according to its schema."""
