"""Consumer-group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups, OffsetDelete.

Each handler translates the kio request entity into a call on the protocol-neutral
`firth.broker.groups.GroupCoordinator` and its result back into a response dict; the semantics
(state machine, fencing, durability) live there, not here. What is Kafka-specific stays here:
version differences (v0 JoinGroup has no rebalance timeout, LeaveGroup v3 batches members,
OffsetFetch v8 batches groups, FindCoordinator v4 batches keys), the client host format
("/127.0.0.1", as Kafka reports it), and the group type (classic or consumer) of ListGroups v5.

This broker is the coordinator of every group and transaction id, so FindCoordinator always
names it. The coordinator's error codes carry Kafka's numbers and go on the wire unchanged.
"""

from __future__ import annotations

import datetime
import struct
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from firth.broker.groups import ErrorCode, GroupCoordinator, JoinRequest
from firth.broker.groups.results import (
    CommittedOffset,
    OffsetFetchResult,
    PendingCommit,
    TopicPartition,
)
from firth.kafka.handlers import handles
from firth.kafka.handlers.consumer_group import fenced_fetch
from firth.kafka.handlers.context import RequestContext
from firth.kafka.handlers.deferred import Deferred
from firth.kafka.protocol.header import RequestHeader
from firth.kafka.protocol.offset_commit import decode_offset_commit
from firth.kafka.protocol.primitives import uvarint

FIND_COORDINATOR, OFFSET_COMMIT, OFFSET_FETCH = 10, 8, 9
JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 11, 12, 13, 14
DESCRIBE_GROUPS, LIST_GROUPS, DELETE_GROUPS, OFFSET_DELETE = 15, 16, 42, 47

GROUP_KEY, TRANSACTION_KEY = 0, 1
"""FindCoordinator key types this broker coordinates (it is the only broker)."""

NOT_PROVIDED = -(2**31)
"""DescribeGroups authorized_operations when the client did not ask for them."""

GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)
"""READ, DELETE and DESCRIBE: what anyone may do to a group here (there are no ACLs)."""

NO_OFFSET = -1
"""OffsetFetch answer for a partition without a committed offset."""


def _ms(value: Any) -> int:
    if isinstance(value, datetime.timedelta):
        return value // datetime.timedelta(milliseconds=1)
    return int(value)


def _coordinator(ctx: RequestContext) -> GroupCoordinator | None:
    return ctx.broker.groups


def _coordinator_not_available(ctx: RequestContext) -> bytes:
    """The answer, while there is no coordinator, of a request whose response needs only a
    top-level error code (the rest of its fields take their defaults)."""
    return ctx.respond({"throttle_time": 0, "error_code": int(ErrorCode.COORDINATOR_NOT_AVAILABLE)})


def _client_host(ctx: RequestContext) -> str:
    return f"/{ctx.peer_host}"


# ---------------------------------------------------------------------------- FindCoordinator


@handles(FIND_COORDINATOR)
async def find_coordinator(ctx: RequestContext) -> bytes:
    request = ctx.decode()
    available = _coordinator(ctx) is not None
    key_type = getattr(request, "key_type", GROUP_KEY)

    def answer(key: str) -> dict[str, Any]:
        if key_type not in (GROUP_KEY, TRANSACTION_KEY):
            error, message = 42, f"key type {key_type} is not supported"  # INVALID_REQUEST
        elif not available:
            error, message = ErrorCode.COORDINATOR_NOT_AVAILABLE, "the broker is starting"
        else:
            error, message = ErrorCode.NONE, None
        ok = error == ErrorCode.NONE
        return {
            "key": key,
            "node_id": ctx.broker.node_id if ok else -1,
            "host": ctx.advertised.host if ok else "",
            "port": ctx.advertised.port if ok else -1,
            "error_code": int(error),
            "error_message": message,
        }

    if ctx.version >= 4:
        return ctx.respond(
            {
                "throttle_time": 0,
                "coordinators": [answer(key) for key in request.coordinator_keys],
            }
        )
    single = answer(request.key)
    single["throttle_time"] = 0
    return ctx.respond(single)


# ---------------------------------------------------------------------------- membership


@handles(JOIN_GROUP)
async def join_group(ctx: RequestContext) -> bytes:
    request = ctx.decode()
    coordinator = _coordinator(ctx)
    fields: dict[str, Any] = {"throttle_time": 0, "skip_assignment": False}
    if coordinator is None:
        fields.update(
            error_code=int(ErrorCode.COORDINATOR_NOT_AVAILABLE),
            generation_id=-1,
            member_id=request.member_id,
        )
        return ctx.respond(fields)
    result = await coordinator.join(
        JoinRequest(
            group_id=request.group_id,
            member_id=request.member_id,
            group_instance_id=getattr(request, "group_instance_id", None),
            client_id=ctx.header.client_id or "",
            client_host=_client_host(ctx),
            session_timeout_ms=_ms(request.session_timeout),
            rebalance_timeout_ms=_ms(request.rebalance_timeout) if ctx.version >= 1 else -1,
            protocol_type=request.protocol_type,
            protocols=[(p.name, bytes(p.metadata)) for p in request.protocols],
            require_known_member_id=ctx.version >= 4,
        )
    )
    fields.update(
        error_code=int(result.error),
        generation_id=result.generation,
        protocol_type=result.protocol_type,
        protocol_name=result.protocol_name,
        leader=result.leader,
        member_id=result.member_id,
        members=[
            {
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "metadata": m.metadata,
            }
            for m in result.members
        ],
    )
    return ctx.respond(fields)


@handles(SYNC_GROUP)
async def sync_group(ctx: RequestContext) -> bytes:
    request = ctx.decode()
    coordinator = _coordinator(ctx)
    if coordinator is None:
        return _coordinator_not_available(ctx)
    result = await coordinator.sync(
        request.group_id,
        request.generation_id,
        request.member_id,
        getattr(request, "group_instance_id", None),
        {a.member_id: bytes(a.assignment) for a in request.assignments},
        protocol_type=getattr(request, "protocol_type", None),
        protocol_name=getattr(request, "protocol_name", None),
    )
    return ctx.respond(
        {
            "throttle_time": 0,
            "error_code": int(result.error),
            "protocol_type": result.protocol_type,
            "protocol_name": result.protocol_name,
            "assignment": result.assignment,
        }
    )


@handles(HEARTBEAT)
async def heartbeat(ctx: RequestContext) -> bytes:
    request = ctx.decode()
    coordinator = _coordinator(ctx)
    if coordinator is None:
        error = ErrorCode.COORDINATOR_NOT_AVAILABLE
    else:
        error = coordinator.heartbeat(
            request.group_id,
            request.generation_id,
            request.member_id,
            getattr(request, "group_instance_id", None),
        )
    return ctx.respond({"throttle_time": 0, "error_code": int(error)})


@handles(LEAVE_GROUP)
async def leave_group(ctx: RequestContext) -> bytes:
    request = ctx.decode()
    coordinator = _coordinator(ctx)
    if ctx.version >= 3:
        wanted = [(m.member_id, m.group_instance_id) for m in request.members]
    else:
        wanted = [(request.member_id, None)]
    if coordinator is None:
        return _coordinator_not_available(ctx)
    result = coordinator.leave(request.group_id, wanted)
    if ctx.version >= 3:
        return ctx.respond(
            {
                "throttle_time": 0,
                "error_code": int(result.error),
                "members": [
                    {
                        "member_id": m.member_id,
                        "group_instance_id": m.group_instance_id,
                        "error_code": int(m.error),
                    }
                    for m in result.members
                ],
            }
        )
    # v0-v2 name one member; its outcome is the answer.
    error = result.error
    if error is ErrorCode.NONE and result.members:
        error = result.members[0].error
    return ctx.respond({"throttle_time": 0, "error_code": int(error)})


# ---------------------------------------------------------------------------- offsets


_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_PARTITION_ERROR = struct.Struct(">ih")
_PARTITION_ERROR_TAGS = struct.Struct(">ihB")
"""A flexible version's partition: index, error code, empty tagged fields (0)."""
_NO_TAGS = b"\x00"
_FIRST_FLEXIBLE = 8
"""OffsetCommit v8+ is flexible (compact lengths, tagged fields, response header v1)."""


_NAME_BYTES: dict[tuple[str, bool], bytes] = {}
_NAME_BYTES_LIMIT = 4096


def _encoded_name(name: str, flexible: bool) -> bytes:
    """A topic name with its length prefix, cached: the same few names are answered per commit."""
    key = (name, flexible)
    encoded = _NAME_BYTES.get(key)
    if encoded is None:
        if len(_NAME_BYTES) >= _NAME_BYTES_LIMIT:
            _NAME_BYTES.clear()
        raw = name.encode()
        prefix = uvarint(len(raw) + 1) if flexible else _I16.pack(len(raw))
        encoded = _NAME_BYTES[key] = prefix + raw
    return encoded


def encode_offset_commit_response(
    header: RequestHeader, topics: list[tuple[str, list[tuple[int, int]]]]
) -> bytes:
    """The framed OffsetCommit response, written with struct (any version 2-9).

    OffsetCommit is the one group API on a hot path (consumers commit after every batch), and
    the generic kio encoder costs more than the rest of the request; this writes the same bytes
    (a test compares them with the generic path for every version).
    """
    version = header.api_version
    flexible = version >= _FIRST_FLEXIBLE
    # Response header v1 (flexible versions) adds empty tagged fields after the correlation id.
    correlation = _I32.pack(header.correlation_id)
    parts = [correlation + _NO_TAGS if flexible else correlation]
    if version >= 3:
        parts.append(b"\x00\x00\x00\x00")  # throttle_time_ms
    parts.append(uvarint(len(topics) + 1) if flexible else _I32.pack(len(topics)))
    for name, partitions in topics:
        parts.append(_encoded_name(name, flexible))
        if flexible:
            parts.append(uvarint(len(partitions) + 1))
            pack = _PARTITION_ERROR_TAGS.pack
            parts.extend([pack(index, error, 0) for index, error in partitions])
            parts.append(_NO_TAGS)
        else:
            parts.append(_I32.pack(len(partitions)))
            pack = _PARTITION_ERROR.pack
            parts.extend([pack(index, error) for index, error in partitions])
    if flexible:
        parts.append(_NO_TAGS)
    body = b"".join(parts)
    return _I32.pack(len(body)) + body


@handles(OFFSET_COMMIT)
def offset_commit(ctx: RequestContext) -> Deferred:
    """Not a coroutine: the only wait is the offsets store's fsync batch, which the server
    waits on with a callback (see `Deferred`); the hand-written decoder and encoder, not kio.
    This is the one group API on a hot path (consumers commit after every batch)."""
    request = decode_offset_commit(ctx.header, ctx.frame, ctx.body_offset)
    coordinator = _coordinator(ctx)
    offsets: dict[tuple[str, int], tuple[int, str | None]] = {}
    epochs: dict[tuple[str, int], int] = {}
    for name, partitions in request.topics:
        for index, offset, epoch, metadata in partitions:
            key = (name, index)
            offsets[key] = (offset, metadata)
            epochs[key] = epoch
    if coordinator is None:
        pending = PendingCommit(
            dict.fromkeys(
                (TopicPartition(*key) for key in offsets), ErrorCode.COORDINATOR_NOT_AVAILABLE
            )
        )
    else:
        pending = coordinator.start_commit(
            request.group_id,
            request.generation_id_or_member_epoch,
            request.member_id,
            request.group_instance_id,
            offsets,
            leader_epochs=epochs,
        )

    def finish() -> bytes:
        errors: Mapping[Any, ErrorCode] = pending.outcome()
        return encode_offset_commit_response(
            ctx.header,
            [
                (name, [(p[0], int(errors[(name, p[0])])) for p in partitions])
                for name, partitions in request.topics
            ],
        )

    return Deferred(pending.durable, finish)


def _fetched_topics(
    result: OffsetFetchResult, asked: list[tuple[str, list[int]]] | None, error_in_partitions: bool
) -> list[dict[str, Any]]:
    """Response topics of one group: those asked for, or (None) every committed partition."""
    if asked is None:
        by_topic: dict[str, list[int]] = defaultdict(list)
        for topic, partition in result.offsets:
            by_topic[topic].append(partition)
        asked = [(topic, sorted(parts)) for topic, parts in by_topic.items()]
    partition_error = int(result.error) if error_in_partitions else 0
    topics = []
    for name, partitions in asked:
        entries = []
        for index in partitions:
            committed: CommittedOffset | None = result.offsets.get((name, index))  # type: ignore[call-overload]
            entries.append(
                {
                    "partition_index": index,
                    "committed_offset": committed.offset if committed else NO_OFFSET,
                    "committed_leader_epoch": committed.leader_epoch if committed else -1,
                    "metadata": committed.metadata if committed else "",
                    "error_code": partition_error,
                }
            )
        topics.append({"name": name, "partitions": entries})
    return topics


def _fetch_one(
    coordinator: GroupCoordinator | None, group_id: str, topics: Any
) -> tuple[OffsetFetchResult, list[tuple[str, list[int]]] | None]:
    asked = (
        None
        if topics is None
        else [(t.name, [int(i) for i in t.partition_indexes]) for t in topics]
    )
    if coordinator is None:
        return OffsetFetchResult(ErrorCode.COORDINATOR_NOT_AVAILABLE), asked
    wanted = None if asked is None else [(name, i) for name, parts in asked for i in parts]
    return coordinator.fetch_offsets(group_id, wanted), asked


@handles(OFFSET_FETCH)
async def offset_fetch(ctx: RequestContext) -> bytes:
    request = ctx.decode()
    coordinator = _coordinator(ctx)
    if ctx.version >= 8:
        groups = []
        for group in request.groups:
            result, asked = _fetch_one(coordinator, group.group_id, group.topics)
            if ctx.version >= 9:  # v9 names the member: a consumer group checks its epoch
                result = fenced_fetch(coordinator, group.group_id, group, result)
            groups.append(
                {
                    "group_id": group.group_id,
                    "topics": _fetched_topics(result, asked, error_in_partitions=False),
                    "error_code": int(result.error),
                }
            )
        return ctx.respond({"throttle_time": 0, "groups": groups})
    result, asked = _fetch_one(coordinator, request.group_id, request.topics)
    return ctx.respond(
        {
            "throttle_time": 0,
            # v1 has no top-level error: a group-level error goes into every partition.
            "topics": _fetched_topics(result, asked, error_in_partitions=ctx.version < 2),
            "error_code": int(result.error),
        }
    )


@handles(OFFSET_DELETE)
async def offset_delete(ctx: RequestContext) -> bytes:
    request = ctx.decode()
    coordinator = _coordinator(ctx)
    wanted = [(t.name, p.partition_index) for t in request.topics for p in t.partitions]
    if coordinator is None:
        return _coordinator_not_available(ctx)
    result = await coordinator.delete_offsets(request.group_id, wanted)
    if result.error is not ErrorCode.NONE:
        return ctx.respond({"throttle_time": 0, "error_code": int(result.error), "topics": []})
    return ctx.respond(
        {
            "throttle_time": 0,
            "error_code": 0,
            "topics": [
                {
                    "name": t.name,
                    "partitions": [
                        {
                            "partition_index": p.partition_index,
                            "error_code": int(result.partitions[(t.name, p.partition_index)]),  # type: ignore[index]
                        }
                        for p in t.partitions
                    ],
                }
                for t in request.topics
            ],
        }
    )


# ---------------------------------------------------------------------------- administration


@handles(LIST_GROUPS)
async def list_groups(ctx: RequestContext) -> bytes:
    request = ctx.decode()
    coordinator = _coordinator(ctx)
    if coordinator is None:
        return _coordinator_not_available(ctx)
    states = list(getattr(request, "states_filter", ()) or ())
    types = {t.lower() for t in getattr(request, "types_filter", ()) or ()}
    listings = [g for g in coordinator.list_groups(states) if not types or g.group_type in types]
    return ctx.respond(
        {
            "throttle_time": 0,
            "error_code": 0,
            "groups": [
                {
                    "group_id": g.group_id,
                    "protocol_type": g.protocol_type,
                    "group_state": g.state,
                    "group_type": g.group_type,
                }
                for g in listings
            ],
        }
    )


@handles(DESCRIBE_GROUPS)
async def describe_groups(ctx: RequestContext) -> bytes:
    request = ctx.decode()
    coordinator = _coordinator(ctx)
    operations = (
        GROUP_OPERATIONS
        if getattr(request, "include_authorized_operations", False)
        else NOT_PROVIDED
    )
    described = []
    for group_id in request.groups:
        if coordinator is None:
            described.append(
                {
                    "error_code": int(ErrorCode.COORDINATOR_NOT_AVAILABLE),
                    "group_id": group_id,
                    "authorized_operations": operations,
                }
            )
            continue
        (d,) = coordinator.describe_groups([group_id])
        error, message = int(d.error), None
        if not d.found and d.error is ErrorCode.NONE and ctx.version >= 6:
            # Since v6 (KIP-1043) an unknown group is an error rather than a Dead group.
            error, message = int(ErrorCode.GROUP_ID_NOT_FOUND), f"group {group_id} not found"
        described.append(
            {
                "error_code": error,
                "error_message": message,
                "group_id": group_id,
                "group_state": d.state,
                "protocol_type": d.protocol_type,
                "protocol_data": d.protocol_name,
                "members": [
                    {
                        "member_id": m.member_id,
                        "group_instance_id": m.group_instance_id,
                        "client_id": m.client_id,
                        "client_host": m.client_host,
                        "member_metadata": m.metadata,
                        "member_assignment": m.assignment,
                    }
                    for m in d.members
                ],
                "authorized_operations": operations,
            }
        )
    return ctx.respond({"throttle_time": 0, "groups": described})


@handles(DELETE_GROUPS)
async def delete_groups(ctx: RequestContext) -> bytes:
    request = ctx.decode()
    coordinator = _coordinator(ctx)
    names = list(request.groups_names)
    if coordinator is None:
        results = dict.fromkeys(names, ErrorCode.COORDINATOR_NOT_AVAILABLE)
    else:
        results = await coordinator.delete_groups(names)
    return ctx.respond(
        {
            "throttle_time": 0,
            "results": [{"group_id": name, "error_code": int(results[name])} for name in names],
        }
    )
