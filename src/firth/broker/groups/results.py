"""Value types the coordinator returns: what each operation answers, wire-neutral.

Front ends translate these to their own responses; nothing here knows a version or a field name
of any protocol.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import NamedTuple

from firth.broker.groups.errors import ErrorCode, GroupStoreError


class TopicPartition(NamedTuple):
    """A named tuple, so a plain (topic, partition) tuple works as the same key."""

    topic: str
    partition: int


class CommittedOffset(NamedTuple):
    """A partition's committed offset (a named tuple: one per committed partition in memory)."""

    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp_ms: int


@dataclass(frozen=True, slots=True)
class JoinMember:
    """One entry of the member list the leader receives."""

    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True, slots=True)
class JoinResult:
    error: ErrorCode
    generation: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    member_id: str = ""
    # Only the leader receives the members (with their metadata for the chosen protocol).
    members: list[JoinMember] = field(default_factory=list)

    @classmethod
    def failed(cls, error: ErrorCode, member_id: str = "") -> JoinResult:
        return cls(error=error, member_id=member_id)


@dataclass(frozen=True, slots=True)
class SyncResult:
    error: ErrorCode
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


@dataclass(frozen=True, slots=True)
class MemberLeaveResult:
    member_id: str
    group_instance_id: str | None
    error: ErrorCode


@dataclass(frozen=True, slots=True)
class LeaveResult:
    error: ErrorCode
    members: list[MemberLeaveResult] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class GroupListing:
    group_id: str
    protocol_type: str
    state: str
    group_type: str = "classic"
    """"classic" (JoinGroup) or "consumer" (KIP-848 ConsumerGroupHeartbeat)."""


@dataclass(frozen=True, slots=True)
class MemberDescription:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupDescription:
    error: ErrorCode
    group_id: str
    state: str
    protocol_type: str
    protocol_name: str
    members: list[MemberDescription] = field(default_factory=list)
    # False when the group does not exist (state "Dead" then, as Kafka answers).
    found: bool = True


@dataclass(frozen=True, slots=True)
class OffsetFetchResult:
    error: ErrorCode
    # None for a partition asked for but never committed (the wire says offset -1).
    offsets: dict[TopicPartition, CommittedOffset | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OffsetDeleteResult:
    error: ErrorCode
    partitions: dict[TopicPartition, ErrorCode] = field(default_factory=dict)


@dataclass(slots=True)
class PendingCommit:
    """An offset commit handed to the store: each partition's answer, final once `durable`
    (the store's batch future, shared with other commits: never cancel it) is done. None:
    nothing was written, the answers are final now."""

    results: dict[TopicPartition, ErrorCode]
    durable: asyncio.Future[None] | None = None

    def outcome(self) -> dict[TopicPartition, ErrorCode]:
        """The answers, once `durable` is done: a failed write fails every partition it held."""
        durable = self.durable
        if durable is not None:
            failure = durable.exception()
            if failure is not None:
                if not isinstance(failure, GroupStoreError):
                    raise failure
                code = failure.code
                results = self.results
                for key, error in results.items():
                    if error == ErrorCode.NONE:
                        results[key] = code
        return self.results
