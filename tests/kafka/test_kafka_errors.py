"""ErrorCode numbers and retriability agree with Kafka's table (via kio); the error tree."""

from __future__ import annotations

from kio.schema.errors import ErrorCode as KioErrorCode

from firth.kafka.protocol.errors import (
    ErrorCode,
    FrameError,
    KafkaError,
    MalformedRequestError,
    ProtocolError,
    UnknownApiError,
    UnsupportedVersionError,
)


def test_every_code_matches_kafkas_number_for_its_name() -> None:
    for code in ErrorCode:
        assert int(KioErrorCode[code.name.lower()]) == int(code), code.name


def test_retriable_follows_kafka() -> None:
    assert ErrorCode.NOT_LEADER_OR_FOLLOWER.retriable
    assert ErrorCode.COORDINATOR_LOAD_IN_PROGRESS.retriable
    assert ErrorCode.UNKNOWN_TOPIC_OR_PARTITION.retriable
    assert not ErrorCode.INVALID_RECORD.retriable
    assert not ErrorCode.TOPIC_ALREADY_EXISTS.retriable


def test_error_tree_carries_wire_codes() -> None:
    assert KafkaError(ErrorCode.MESSAGE_TOO_LARGE, "big").code is ErrorCode.MESSAGE_TOO_LARGE
    assert KafkaError().code is ErrorCode.UNKNOWN_SERVER_ERROR
    assert MalformedRequestError().code is ErrorCode.INVALID_REQUEST
    assert FrameError().code is ErrorCode.INVALID_REQUEST
    unsupported = UnsupportedVersionError(0, 99)
    assert unsupported.code is ErrorCode.UNSUPPORTED_VERSION
    assert (unsupported.api_key, unsupported.api_version) == (0, 99)
    assert UnknownApiError(999).api_key == 999
    for cls in (FrameError, MalformedRequestError, UnknownApiError, UnsupportedVersionError):
        assert issubclass(cls, ProtocolError) and issubclass(cls, KafkaError)
    assert KafkaError(ErrorCode.REQUEST_TIMED_OUT).retriable
