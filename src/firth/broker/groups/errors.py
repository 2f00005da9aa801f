"""Wire-neutral error codes of the group coordinator.

The coordinator answers with codes, not exceptions: every operation returns a result carrying an
`ErrorCode` (per group, per member or per partition, as the operation needs). The numbers are
Kafka's, so the Kafka front end passes them through unchanged, and another front end maps them to
its own vocabulary. Only the codes the coordinator can produce are listed.

`GroupStoreError` is the one exception the offsets store raises (an I/O failure while making a
record durable); the coordinator turns it into COORDINATOR_NOT_AVAILABLE, a code clients retry.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    NONE = 0
    UNKNOWN_TOPIC_OR_PARTITION = 3
    OFFSET_METADATA_TOO_LARGE = 12
    COORDINATOR_LOAD_IN_PROGRESS = 14
    COORDINATOR_NOT_AVAILABLE = 15
    NOT_COORDINATOR = 16
    ILLEGAL_GENERATION = 22
    INCONSISTENT_GROUP_PROTOCOL = 23
    INVALID_GROUP_ID = 24
    UNKNOWN_MEMBER_ID = 25
    INVALID_SESSION_TIMEOUT = 26
    REBALANCE_IN_PROGRESS = 27
    INVALID_REQUEST = 42
    NON_EMPTY_GROUP = 68
    GROUP_ID_NOT_FOUND = 69
    MEMBER_ID_REQUIRED = 79
    GROUP_MAX_SIZE_REACHED = 81
    FENCED_INSTANCE_ID = 82
    GROUP_SUBSCRIBED_TO_TOPIC = 86
    FENCED_MEMBER_EPOCH = 110
    UNRELEASED_INSTANCE_ID = 111
    UNSUPPORTED_ASSIGNOR = 112
    STALE_MEMBER_EPOCH = 113
    INVALID_REGULAR_EXPRESSION = 128


class GroupStoreError(Exception):
    """The offsets store could not make a record durable (disk full, I/O error, closed store)."""

    code = ErrorCode.COORDINATOR_NOT_AVAILABLE


class IllegalTransition(Exception):
    """A (state, event) pair that the state table does not allow: a coordinator bug, not input."""
