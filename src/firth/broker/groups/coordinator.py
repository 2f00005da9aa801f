"""The group coordinator: membership, rebalances and committed offsets of every group.

Theory of operation (the classic Kafka group protocol, as the stock clients speak it):

- A rebalance starts when membership changes: a member joins, rejoins with different protocol
  metadata, leaves, misses its session timeout, or the leader rejoins (the leader uses this to
  ask for a rebalance). The group goes to PreparingRebalance and collects JoinGroup requests;
  each one waits (a future) until the join phase ends.
- The join phase ends when every member has rejoined and no handed-out member id is outstanding,
  or when the rebalance timeout (the largest of the members') passes; members that did not
  rejoin by then are removed. A new Empty group first waits `initial_rebalance_delay_ms`,
  extended while new members keep arriving, so that consumers starting together share one
  rebalance instead of one each.
- Ending the join phase bumps the generation, picks the protocol every member supports (by vote)
  and answers every waiting JoinGroup; the leader's answer carries every member's metadata. The
  group waits in CompletingRebalance for the leader's SyncGroup with the assignment, relayed
  byte for byte to every member. Members that do not SyncGroup within the rebalance timeout are
  removed (another rebalance follows).
- Generation fencing: SyncGroup, Heartbeat and OffsetCommit name a generation and a member id;
  a stale generation gets ILLEGAL_GENERATION, an unknown member UNKNOWN_MEMBER_ID, and a member
  id that lost its group.instance.id to a newer incarnation FENCED_INSTANCE_ID.
- Static membership: a JoinGroup with a known group.instance.id and no member id replaces the
  old member id (which is fenced from then on). In Stable, if the group's protocol would not
  change, it gets the current generation back (with the old leader id, so it never computes a
  new assignment) and its old assignment from SyncGroup: no rebalance for the others.
- Cooperative rebalancing needs nothing special: members that revoked partitions simply rejoin,
  which starts the next rebalance.

Time comes from an injected `Timers`, so tests drive session and rebalance timeouts with a
manual clock. Everything runs in the event-loop thread; the only awaits are the join and sync
futures and the offsets store's durable writes.

Bounds: group ids longer than `max_group_id_bytes` are refused (INVALID_GROUP_ID); a group never
holds more than `max_group_size` members plus outstanding member ids (GROUP_MAX_SIZE_REACHED);
an outstanding member id lapses after its session timeout; an Empty group without offsets is
forgotten after `empty_group_retention_ms`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from firth.broker.groups.config import GroupConfig
from firth.broker.groups.consumer_protocol import subscribed_topics
from firth.broker.groups.errors import ErrorCode, GroupStoreError
from firth.broker.groups.group import CONSUMER_PROTOCOL_TYPE, Group
from firth.broker.groups.member import Member
from firth.broker.groups.records import OffsetEntry
from firth.broker.groups.requests import JoinRequest
from firth.broker.groups.results import (
    GroupDescription,
    GroupListing,
    JoinMember,
    JoinResult,
    LeaveResult,
    MemberDescription,
    MemberLeaveResult,
    OffsetDeleteResult,
    OffsetFetchResult,
    PendingCommit,
    SyncResult,
    TopicPartition,
)
from firth.broker.groups.states import GroupEvent, GroupState
from firth.broker.groups.store import DIRECTORY_NAME, OffsetStore
from firth.broker.groups.timers import LoopTimers, Timers

logger = logging.getLogger(__name__)

E = GroupEvent
S = GroupState

MEMBER_ID_PREFIX_CHARS = 200
"""At most this much of the client id (or instance id) starts a generated member id."""

PartitionExists = Callable[[str, int], bool]
"""Does this topic partition exist? Commits to ones that do not get UNKNOWN_TOPIC_OR_PARTITION."""

OffsetCommits = Mapping[tuple[str, int], tuple[int, str | None]]
"""(topic, partition) -> (offset, metadata) of an OffsetCommit."""


class GroupCoordinator:
    """Owns every group of this broker and their committed offsets."""

    def __init__(
        self,
        store: OffsetStore,
        config: GroupConfig | None = None,
        *,
        timers: Timers | None = None,
        partition_exists: PartitionExists | None = None,
    ) -> None:
        self.config = config or GroupConfig()
        self.store = store
        self.timers: Timers = timers or LoopTimers()
        self.partition_exists = partition_exists
        self._groups: dict[str, Group] = {}
        self._closed = False
        now = self.timers.now()
        for group_id in store.group_ids():
            self._groups[group_id] = self._new_group(group_id)
        self._retention_timer = self.timers.call_at(
            now + self.config.offsets_retention_check_interval_ms / 1000, self._on_retention_check
        )
        self._retention_task: asyncio.Task[int] | None = None

    @classmethod
    def open(
        cls,
        data_dir: Path,
        config: GroupConfig | None = None,
        *,
        timers: Timers | None = None,
        partition_exists: PartitionExists | None = None,
    ) -> GroupCoordinator:
        """Load the offsets store under `data_dir` and build the coordinator (blocking I/O)."""
        config = config or GroupConfig()
        store = OffsetStore.open(
            data_dir / DIRECTORY_NAME,
            fsync=config.fsync,
            compact_after_bytes=config.compact_after_bytes,
        )
        return cls(store, config, timers=timers, partition_exists=partition_exists)

    async def close(self) -> None:
        """Answer every waiting request with NOT_COORDINATOR, end all groups, close the store."""
        if self._closed:
            return
        self._closed = True
        self._retention_timer.cancel()
        if self._retention_task is not None:
            await asyncio.gather(self._retention_task, return_exceptions=True)
        for group in self._groups.values():
            self._cancel_group_timers(group)
            for member in group.members.values():
                self._fail_waiters(member, ErrorCode.NOT_COORDINATOR)
                if member.session_timer is not None:
                    member.session_timer.cancel()
            group.transition(E.SHUTDOWN, self.timers.now())
        self._groups.clear()
        await self.store.close()

    def _new_group(self, group_id: str) -> Group:
        return Group(group_id, state_since=self.timers.now(), empty_since_ms=self.timers.wall_ms())

    # ------------------------------------------------------------------ offsets retention

    def _on_retention_check(self) -> None:
        self._retention_timer = self.timers.call_at(
            self.timers.now() + self.config.offsets_retention_check_interval_ms / 1000,
            self._on_retention_check,
        )
        if self._retention_task is None or self._retention_task.done():
            self._retention_task = asyncio.get_running_loop().create_task(self.expire_offsets())

    async def expire_offsets(self) -> int:
        """Delete offsets past retention in groups Empty for as long; returns how many."""
        now_ms = self.timers.wall_ms()
        horizon = now_ms - self.config.offsets_retention_ms
        expired = 0
        for group in list(self._groups.values()):
            if not group.is_(S.EMPTY) or group.empty_since_ms > horizon:
                continue
            committed = self.store.offsets(group.group_id)
            old = [key for key, value in committed.items() if value.commit_timestamp_ms <= horizon]
            if not old:
                continue
            try:
                if len(old) == len(committed):
                    await self.store.delete_group(group.group_id)
                else:
                    await self.store.delete_offsets(group.group_id, old)
            except GroupStoreError as exc:
                logger.error("group %s: expiring offsets failed: %s", group.group_id, exc)
                continue
            expired += len(old)
            logger.info("group %s: %d committed offsets expired", group.group_id, len(old))
            self._forget_if_unused(group)
        return expired

    # ------------------------------------------------------------------ introspection

    def group(self, group_id: str) -> Group | None:
        """The live group object (for tests, metrics and the admin API); do not mutate it."""
        return self._groups.get(group_id)

    def group_ids(self) -> list[str]:
        return list(self._groups)

    # ------------------------------------------------------------------ validation

    def _group_id_error(self, group_id: str | None, *, allow_empty: bool) -> ErrorCode | None:
        if self._closed:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        if group_id is None or (not group_id and not allow_empty):
            return ErrorCode.INVALID_GROUP_ID
        if len(group_id) * 4 > self.config.max_group_id_bytes and (
            len(group_id.encode()) > self.config.max_group_id_bytes
        ):
            return ErrorCode.INVALID_GROUP_ID
        return None

    # ------------------------------------------------------------------ JoinGroup

    async def join(self, request: JoinRequest) -> JoinResult:
        """Join (or rejoin) a group; waits until the join phase of the rebalance ends."""
        group_id, member_id = request.group_id, request.member_id
        error = self._group_id_error(group_id, allow_empty=False)
        if error is not None:
            return JoinResult.failed(error, member_id)
        cfg = self.config
        session_timeout_ms = request.session_timeout_ms
        if not cfg.min_session_timeout_ms <= session_timeout_ms <= cfg.max_session_timeout_ms:
            return JoinResult.failed(ErrorCode.INVALID_SESSION_TIMEOUT, member_id)
        if request.rebalance_timeout_ms < 0:
            # JoinGroup v0 has no rebalance timeout; Kafka uses the session timeout then.
            request = dataclasses.replace(request, rebalance_timeout_ms=session_timeout_ms)
        group = self._groups.get(group_id)
        if group is None:
            if member_id:
                return JoinResult.failed(ErrorCode.UNKNOWN_MEMBER_ID, member_id)
            group = self._new_group(group_id)
        if group.is_(S.DEAD):
            return JoinResult.failed(ErrorCode.COORDINATOR_NOT_AVAILABLE, member_id)
        names = [name for name, _ in request.protocols]
        if not group.supports_protocols(request.protocol_type, names):
            return JoinResult.failed(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id)
        is_unknown = member_id == ""
        instance_id = request.group_instance_id
        known_instance = instance_id is not None and instance_id in group.static_members
        if is_unknown and not known_instance and group.size >= cfg.max_group_size:
            return JoinResult.failed(ErrorCode.GROUP_MAX_SIZE_REACHED, member_id)
        self._groups.setdefault(group_id, group)

        outcome: JoinResult | asyncio.Future[JoinResult]
        if is_unknown:
            outcome = self._join_unknown_member(group, request)
        else:
            outcome = self._join_known_member(group, request)
        if group.is_(S.PREPARING_REBALANCE):
            self._maybe_complete_join(group)
        if isinstance(outcome, JoinResult):
            return outcome
        return await outcome

    def _new_member_id(self, client_id: str, group_instance_id: str | None) -> str:
        # The prefix is cut short so that the id still fits a non-flexible string (32767 bytes)
        # when the client id or instance id it comes from is already near that length.
        prefix = group_instance_id if group_instance_id is not None else client_id
        return f"{prefix[:MEMBER_ID_PREFIX_CHARS]}-{uuid.uuid4()}"

    def _join_unknown_member(
        self, group: Group, request: JoinRequest
    ) -> JoinResult | asyncio.Future[JoinResult]:
        group_instance_id = request.group_instance_id
        new_id = self._new_member_id(request.client_id, group_instance_id)
        if group_instance_id is not None and group_instance_id in group.static_members:
            return self._replace_static_member(group, group_instance_id, new_id, request)
        if request.require_known_member_id and group_instance_id is None:
            # JoinGroup v4+: hand out the id first, so a client that times out and retries
            # does not leave a ghost member behind; the id lapses after a session timeout.
            expiry = self.timers.call_at(
                self.timers.now() + request.session_timeout_ms / 1000,
                lambda: self._expire_pending_member(group, new_id),
            )
            group.pending_members[new_id] = expiry
            return JoinResult.failed(ErrorCode.MEMBER_ID_REQUIRED, new_id)
        return self._add_member_and_rebalance(group, new_id, request)

    def _join_known_member(
        self, group: Group, request: JoinRequest
    ) -> JoinResult | asyncio.Future[JoinResult]:
        member_id, group_instance_id = request.member_id, request.group_instance_id
        expiry = group.pending_members.pop(member_id, None)
        if expiry is not None:
            expiry.cancel()
            return self._add_member_and_rebalance(group, member_id, request)
        if group.is_static_member_fenced(member_id, group_instance_id):
            return JoinResult.failed(ErrorCode.FENCED_INSTANCE_ID, member_id)
        member = group.members.get(member_id)
        if member is None or (
            group_instance_id is not None and group_instance_id not in group.static_members
        ):
            return JoinResult.failed(ErrorCode.UNKNOWN_MEMBER_ID, member_id)
        self._touch_session(group, member)
        if group.is_(S.PREPARING_REBALANCE):
            return self._update_member_and_rebalance(group, member, request)
        if group.is_(S.COMPLETING_REBALANCE):
            if member.matches(request.protocols):
                # It lost our JoinGroup answer: give the same answer again.
                return self._join_result(group, member)
            return self._update_member_and_rebalance(group, member, request)
        if group.is_(S.STABLE):
            if group.is_leader(member_id) or not member.matches(request.protocols):
                return self._update_member_and_rebalance(group, member, request)
            return self._join_result(group, member, include_members=False)
        return JoinResult.failed(ErrorCode.UNKNOWN_MEMBER_ID, member_id)

    def _join_result(
        self, group: Group, member: Member, *, include_members: bool = True
    ) -> JoinResult:
        members: list[JoinMember] = []
        if include_members and group.is_leader(member.member_id):
            members = [
                JoinMember(m.member_id, m.group_instance_id, m.metadata_for(group.protocol_name))
                for m in group.members.values()
            ]
        return JoinResult(
            error=ErrorCode.NONE,
            generation=group.generation,
            protocol_type=group.protocol_type,
            protocol_name=group.protocol_name,
            leader=group.leader_id or "",
            member_id=member.member_id,
            members=members,
        )

    def _add_member_and_rebalance(
        self, group: Group, member_id: str, request: JoinRequest
    ) -> asyncio.Future[JoinResult]:
        member = Member(
            member_id=member_id,
            group_instance_id=request.group_instance_id,
            client_id=request.client_id,
            client_host=request.client_host,
            session_timeout_ms=request.session_timeout_ms,
            rebalance_timeout_ms=request.rebalance_timeout_ms,
            protocol_type=request.protocol_type,
            protocols=request.protocols,
        )
        if group.is_(S.PREPARING_REBALANCE) and group.generation == 0:
            group.new_member_added = True
        group.add(member)
        future = self._await_join(member)
        self._touch_session(group, member)
        self._maybe_prepare_rebalance(group, f"member {member_id} joined")
        return future

    def _update_member_and_rebalance(
        self, group: Group, member: Member, request: JoinRequest
    ) -> asyncio.Future[JoinResult]:
        member.protocols = request.protocols
        member.session_timeout_ms = request.session_timeout_ms
        member.rebalance_timeout_ms = request.rebalance_timeout_ms
        future = self._await_join(member)
        self._maybe_prepare_rebalance(group, f"member {member.member_id} rejoined")
        return future

    def _await_join(self, member: Member) -> asyncio.Future[JoinResult]:
        if member.join_waiter is not None and not member.join_waiter.done():
            # A second JoinGroup while the first still waits (a client that retried after its
            # own timeout): the older request is answered so that it does not linger.
            member.join_waiter.set_result(
                JoinResult.failed(ErrorCode.REBALANCE_IN_PROGRESS, member.member_id)
            )
        future: asyncio.Future[JoinResult] = asyncio.get_running_loop().create_future()
        member.join_waiter = future
        return future

    def _replace_static_member(
        self, group: Group, group_instance_id: str, new_id: str, request: JoinRequest
    ) -> JoinResult | asyncio.Future[JoinResult]:
        old_id = group.static_members[group_instance_id]
        old = group.members.pop(old_id)
        previous_leader = group.leader_id or ""
        # The old incarnation is fenced: whatever it still waits for ends now.
        self._fail_waiters(old, ErrorCode.FENCED_INSTANCE_ID)
        if old.session_timer is not None:
            old.session_timer.cancel()
            old.session_timer = None
        old.member_id = new_id
        old.client_id = request.client_id
        old.client_host = request.client_host
        group.members[new_id] = old
        group.static_members[group_instance_id] = new_id
        if group.leader_id == old_id:
            group.leader_id = new_id
        if old_id in group.pending_sync:
            group.pending_sync.discard(old_id)
            group.pending_sync.add(new_id)
        member = old
        member.session_timeout_ms = request.session_timeout_ms
        member.rebalance_timeout_ms = request.rebalance_timeout_ms
        self._touch_session(group, member)
        if group.is_(S.STABLE):
            current_protocol = group.protocol_name
            old_protocols = member.protocols
            member.protocols = request.protocols
            if group.select_protocol() == current_protocol:
                # No rebalance: the same generation, and the *previous* leader id, so that a
                # restarted leader acts as a follower and does not compute an assignment
                # nobody would receive; SyncGroup returns its stored assignment.
                return JoinResult(
                    error=ErrorCode.NONE,
                    generation=group.generation,
                    protocol_type=group.protocol_type,
                    protocol_name=group.protocol_name,
                    leader=previous_leader,
                    member_id=new_id,
                )
            member.protocols = old_protocols
        return self._update_member_and_rebalance(group, member, request)

    # ------------------------------------------------------------------ rebalance machinery

    def _maybe_prepare_rebalance(self, group: Group, reason: str) -> None:
        if group.state in (S.EMPTY, S.STABLE, S.COMPLETING_REBALANCE):
            self._prepare_rebalance(group, reason)

    def _prepare_rebalance(self, group: Group, reason: str) -> None:
        logger.info(
            "group %s: rebalancing from %s, generation %d: %s",
            group.group_id,
            group.state.value,
            group.generation,
            reason,
        )
        if group.is_(S.COMPLETING_REBALANCE):
            # The generation that was being assigned is abandoned: its SyncGroups fail.
            for member in group.members.values():
                self._fail_sync(member, ErrorCode.REBALANCE_IN_PROGRESS)
        if group.sync_timer is not None:
            group.sync_timer.cancel()
            group.sync_timer = None
        group.pending_sync.clear()
        if group.join_timer is not None:
            group.join_timer.cancel()
        now = self.timers.now()
        rebalance_timeout = group.rebalance_timeout_ms() / 1000
        initial_delay = self.config.initial_rebalance_delay_ms / 1000
        if group.is_(S.EMPTY) and initial_delay > 0:
            delay = min(initial_delay, rebalance_timeout)
            group.initial_delay_active = True
            group.new_member_added = False
            group.join_timer = self.timers.call_at(
                now + delay,
                lambda: self._on_initial_delay(group, rebalance_timeout - delay),
            )
        else:
            group.join_timer = self.timers.call_at(
                now + rebalance_timeout, lambda: self._on_rebalance_timeout(group)
            )
        group.transition(E.REBALANCE, now)

    def _on_initial_delay(self, group: Group, remaining: float) -> None:
        group.join_timer = None
        if not group.is_(S.PREPARING_REBALANCE):
            return
        if group.new_member_added and remaining > 0:
            delay = min(self.config.initial_rebalance_delay_ms / 1000, remaining)
            group.new_member_added = False
            group.join_timer = self.timers.call_at(
                self.timers.now() + delay,
                lambda: self._on_initial_delay(group, remaining - delay),
            )
            return
        group.initial_delay_active = False
        self._complete_join(group)

    def _on_rebalance_timeout(self, group: Group) -> None:
        group.join_timer = None
        if group.is_(S.PREPARING_REBALANCE):
            self._complete_join(group)

    def _maybe_complete_join(self, group: Group) -> None:
        if (
            group.is_(S.PREPARING_REBALANCE)
            and not group.initial_delay_active
            and group.all_joined()
        ):
            self._complete_join(group)

    def _complete_join(self, group: Group) -> None:
        """End the join phase: drop who did not rejoin, start the next generation."""
        if group.join_timer is not None:
            group.join_timer.cancel()
            group.join_timer = None
        group.initial_delay_active = False
        for member in [m for m in group.members.values() if not m.awaiting_join]:
            logger.info(
                "group %s: member %s did not rejoin in time; removed",
                group.group_id,
                member.member_id,
            )
            self._drop_member(group, member, ErrorCode.UNKNOWN_MEMBER_ID)
        leader = group.members.get(group.leader_id or "")
        if leader is None:
            group.leader_id = next(iter(group.members), None)
        now = self.timers.now()
        group.generation += 1
        if not group.members:
            group.protocol_name = None
            group.leader_id = None
            group.transition(E.JOIN_COMPLETE_EMPTY, now)
            group.empty_since_ms = self.timers.wall_ms()
            self._forget_if_unused(group)
            return
        group.protocol_name = group.select_protocol()
        group.transition(E.JOIN_COMPLETE, now)
        logger.info(
            "group %s: generation %d with %d members, protocol %s, leader %s",
            group.group_id,
            group.generation,
            len(group.members),
            group.protocol_name,
            group.leader_id,
        )
        for member in group.members.values():
            result = self._join_result(group, member)
            waiter = member.join_waiter
            member.join_waiter = None
            member.is_new = False
            if waiter is not None and not waiter.done():
                waiter.set_result(result)
            self._touch_session(group, member)
        group.pending_sync = set(group.members)
        generation = group.generation
        group.sync_timer = self.timers.call_at(
            now + group.rebalance_timeout_ms() / 1000,
            lambda: self._on_sync_timeout(group, generation),
        )

    def _on_sync_timeout(self, group: Group, generation: int) -> None:
        group.sync_timer = None
        if group.generation != generation or group.state not in (
            S.COMPLETING_REBALANCE,
            S.STABLE,
        ):
            return
        if not group.pending_sync:
            return
        for member_id in list(group.pending_sync):
            member = group.members.get(member_id)
            if member is not None:
                logger.info(
                    "group %s: member %s did not SyncGroup in time; removed",
                    group.group_id,
                    member_id,
                )
                self._drop_member(group, member, ErrorCode.UNKNOWN_MEMBER_ID)
        group.pending_sync.clear()
        self._after_member_removed(group, "members did not SyncGroup in time")

    def _expire_pending_member(self, group: Group, member_id: str) -> None:
        if group.pending_members.pop(member_id, None) is not None:
            self._maybe_complete_join(group)
            self._forget_if_unused(group)

    # ------------------------------------------------------------------ sessions

    def _touch_session(self, group: Group, member: Member) -> None:
        """The member showed a sign of life: push its session deadline out."""
        member.session_deadline = self.timers.now() + member.session_timeout_ms / 1000
        if member.session_timer is None:
            member.session_timer = self.timers.call_at(
                member.session_deadline, lambda: self._on_session_timer(group, member)
            )

    def _on_session_timer(self, group: Group, member: Member) -> None:
        # Deadlines move on every heartbeat; the timer is re-armed lazily here rather than
        # cancelled and re-created per heartbeat.
        member.session_timer = None
        if group.members.get(member.member_id) is not member:
            return
        now = self.timers.now()
        if member.join_waiter is not None or member.sync_waiter is not None:
            member.session_deadline = now + member.session_timeout_ms / 1000
        if now < member.session_deadline:
            member.session_timer = self.timers.call_at(
                member.session_deadline, lambda: self._on_session_timer(group, member)
            )
            return
        logger.info(
            "group %s: member %s missed its session timeout", group.group_id, member.member_id
        )
        self._drop_member(group, member, ErrorCode.UNKNOWN_MEMBER_ID)
        self._after_member_removed(group, f"member {member.member_id} expired")

    def _drop_member(self, group: Group, member: Member, error: ErrorCode) -> None:
        self._fail_waiters(member, error)
        if member.session_timer is not None:
            member.session_timer.cancel()
            member.session_timer = None
        group.remove(member.member_id)

    def _after_member_removed(self, group: Group, reason: str) -> None:
        if group.state in (S.STABLE, S.COMPLETING_REBALANCE):
            self._prepare_rebalance(group, reason)
        # The members still missing may have been exactly the ones removed.
        self._maybe_complete_join(group)

    def _fail_waiters(self, member: Member, error: ErrorCode) -> None:
        waiter = member.join_waiter
        member.join_waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(JoinResult.failed(error, member.member_id))
        self._fail_sync(member, error)

    def _fail_sync(self, member: Member, error: ErrorCode) -> None:
        waiter = member.sync_waiter
        member.sync_waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(SyncResult(error))

    def _cancel_group_timers(self, group: Group) -> None:
        for timer in (group.join_timer, group.sync_timer, *group.pending_members.values()):
            if timer is not None:
                timer.cancel()
        group.join_timer = None
        group.sync_timer = None

    def _forget_if_unused(self, group: Group) -> None:
        """Schedule forgetting an Empty group that has no offsets and nobody on the way in."""
        if group.is_(S.EMPTY) and not group.pending_members:
            since = group.state_since
            self.timers.call_at(
                self.timers.now() + self.config.empty_group_retention_ms / 1000,
                lambda: self._forget(group, since),
            )

    def _forget(self, group: Group, since: float) -> None:
        if (
            self._groups.get(group.group_id) is group
            and group.is_(S.EMPTY)
            and group.state_since == since
            and not group.pending_members
            and not self.store.has_offsets(group.group_id)
        ):
            del self._groups[group.group_id]

    # ------------------------------------------------------------------ SyncGroup

    async def sync(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        group_instance_id: str | None,
        assignments: Mapping[str, bytes],
        protocol_type: str | None = None,
        protocol_name: str | None = None,
    ) -> SyncResult:
        """Deliver (leader) or wait for (followers) the assignment of this generation."""
        error = self._group_id_error(group_id, allow_empty=False)
        if error is not None:
            return SyncResult(error)
        group = self._groups.get(group_id)
        if group is None:
            return SyncResult(ErrorCode.UNKNOWN_MEMBER_ID)
        error = self._member_error(group, generation, member_id, group_instance_id)
        if error is not None:
            return SyncResult(error)
        if (protocol_type is not None and protocol_type != group.protocol_type) or (
            protocol_name is not None and protocol_name != group.protocol_name
        ):
            return SyncResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        member = group.members[member_id]
        if group.is_(S.EMPTY):
            return SyncResult(ErrorCode.UNKNOWN_MEMBER_ID)
        if group.is_(S.PREPARING_REBALANCE):
            return SyncResult(ErrorCode.REBALANCE_IN_PROGRESS)
        group.pending_sync.discard(member_id)
        self._touch_session(group, member)
        if group.is_(S.STABLE):
            return self._sync_result(group, member)
        # CompletingRebalance: wait for the leader (or be the leader).
        self._fail_sync(member, ErrorCode.REBALANCE_IN_PROGRESS)
        future: asyncio.Future[SyncResult] = asyncio.get_running_loop().create_future()
        member.sync_waiter = future
        if group.is_leader(member_id):
            for each in group.members.values():
                each.assignment = assignments.get(each.member_id, b"")
            group.transition(E.LEADER_SYNC, self.timers.now())
            logger.info("group %s: stable at generation %d", group.group_id, group.generation)
            for each in group.members.values():
                waiter = each.sync_waiter
                each.sync_waiter = None
                if waiter is not None and not waiter.done():
                    waiter.set_result(self._sync_result(group, each))
        return await future

    def _sync_result(self, group: Group, member: Member) -> SyncResult:
        return SyncResult(
            ErrorCode.NONE, group.protocol_type, group.protocol_name, member.assignment
        )

    def _member_error(
        self, group: Group, generation: int, member_id: str, group_instance_id: str | None
    ) -> ErrorCode | None:
        """The checks SyncGroup and Heartbeat share, in Kafka's order."""
        if group.is_(S.DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        if group.is_static_member_fenced(member_id, group_instance_id):
            return ErrorCode.FENCED_INSTANCE_ID
        if member_id not in group.members:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if generation != group.generation:
            return ErrorCode.ILLEGAL_GENERATION
        return None

    # ------------------------------------------------------------------ Heartbeat

    def heartbeat(
        self, group_id: str, generation: int, member_id: str, group_instance_id: str | None
    ) -> ErrorCode:
        error = self._group_id_error(group_id, allow_empty=False)
        if error is not None:
            return error
        group = self._groups.get(group_id)
        if group is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        error = self._member_error(group, generation, member_id, group_instance_id)
        if error is not None:
            return error
        if group.is_(S.EMPTY):
            return ErrorCode.UNKNOWN_MEMBER_ID
        self._touch_session(group, group.members[member_id])
        if group.is_(S.PREPARING_REBALANCE):
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE

    # ------------------------------------------------------------------ LeaveGroup

    def leave(self, group_id: str, members: Iterable[tuple[str, str | None]]) -> LeaveResult:
        """Remove members, each named by member id and/or group.instance.id."""
        wanted = list(members)
        error = self._group_id_error(group_id, allow_empty=False)
        if error is not None:
            return LeaveResult(error)
        group = self._groups.get(group_id)
        if group is None:
            return LeaveResult(
                ErrorCode.NONE,
                [MemberLeaveResult(m, i, ErrorCode.UNKNOWN_MEMBER_ID) for m, i in wanted],
            )
        if group.is_(S.DEAD):
            return LeaveResult(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        results = []
        removed = False
        for member_id, instance_id in wanted:
            outcome = self._leave_one(group, member_id, instance_id)
            removed = removed or outcome is ErrorCode.NONE
            results.append(MemberLeaveResult(member_id, instance_id, outcome))
        if removed:
            self._after_member_removed(group, "members left")
        return LeaveResult(ErrorCode.NONE, results)

    def _leave_one(self, group: Group, member_id: str, instance_id: str | None) -> ErrorCode:
        if instance_id is not None:
            holder = group.static_members.get(instance_id)
            if holder is None:
                return ErrorCode.UNKNOWN_MEMBER_ID
            if member_id and member_id != holder:
                return ErrorCode.FENCED_INSTANCE_ID
            member_id = holder
        expiry = group.pending_members.pop(member_id, None)
        if expiry is not None:
            expiry.cancel()
            return ErrorCode.NONE
        member = group.members.get(member_id)
        if member is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        self._drop_member(group, member, ErrorCode.UNKNOWN_MEMBER_ID)
        return ErrorCode.NONE

    # ------------------------------------------------------------------ listing

    def list_groups(
        self, states: Iterable[str] | None = None, types: Iterable[str] | None = None
    ) -> list[GroupListing]:
        """Every group, optionally only those in `states` / of protocol `types` (any case)."""
        state_filter = {s.lower() for s in states} if states else None
        type_filter = set(types) if types else None
        listings = []
        for group in self._groups.values():
            if state_filter is not None and group.state.value.lower() not in state_filter:
                continue
            protocol_type = group.protocol_type or ""
            if type_filter is not None and protocol_type not in type_filter:
                continue
            listings.append(GroupListing(group.group_id, protocol_type, group.state.value))
        return listings

    def describe_groups(self, group_ids: Iterable[str]) -> list[GroupDescription]:
        descriptions = []
        for group_id in group_ids:
            error = self._group_id_error(group_id, allow_empty=True)
            group = self._groups.get(group_id) if error is None else None
            if error is not None or group is None:
                descriptions.append(
                    GroupDescription(
                        error or ErrorCode.NONE, group_id, S.DEAD.value, "", "", found=False
                    )
                )
                continue
            stable = group.is_(S.STABLE)
            members = [
                MemberDescription(
                    member.member_id,
                    member.group_instance_id,
                    member.client_id,
                    member.client_host,
                    member.metadata_for(group.protocol_name) if stable else b"",
                    member.assignment if stable else b"",
                )
                for member in group.members.values()
            ]
            descriptions.append(
                GroupDescription(
                    ErrorCode.NONE,
                    group_id,
                    group.state.value,
                    group.protocol_type or "",
                    group.protocol_name or "",
                    members,
                )
            )
        return descriptions

    async def delete_groups(self, group_ids: Iterable[str]) -> dict[str, ErrorCode]:
        results: dict[str, ErrorCode] = {}
        for group_id in group_ids:
            error = self._group_id_error(group_id, allow_empty=True)
            if error is not None:
                results[group_id] = error
                continue
            group = self._groups.get(group_id)
            if group is None or group.is_(S.DEAD):
                results[group_id] = ErrorCode.GROUP_ID_NOT_FOUND
            elif not group.is_(S.EMPTY) or group.pending_members:
                results[group_id] = ErrorCode.NON_EMPTY_GROUP
            else:
                self._cancel_group_timers(group)
                group.transition(E.DELETE, self.timers.now())
                del self._groups[group_id]
                try:
                    if self.store.has_offsets(group_id):
                        await self.store.delete_group(group_id)
                    results[group_id] = ErrorCode.NONE
                except GroupStoreError as exc:
                    results[group_id] = exc.code
        return results

    # ------------------------------------------------------------------ offsets

    async def commit_offsets(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        group_instance_id: str | None,
        offsets: OffsetCommits,
        leader_epochs: Mapping[tuple[str, int], int] | None = None,
    ) -> dict[TopicPartition, ErrorCode]:
        """Commit offsets durably; answers once the record is fsynced (see `start_commit`)."""
        pending = self.start_commit(
            group_id, generation, member_id, group_instance_id, offsets, leader_epochs
        )
        if pending.durable is not None:
            # Shielded: the store's future is shared by the whole batch.
            with contextlib.suppress(GroupStoreError):
                await asyncio.shield(pending.durable)
        return pending.outcome()

    def start_commit(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        group_instance_id: str | None,
        offsets: OffsetCommits,
        leader_epochs: Mapping[tuple[str, int], int] | None = None,
    ) -> PendingCommit:
        """Validate a commit and hand its record to the store, without waiting: the answers
        are final once `durable` is done (they are NONE only for what the store made durable).

        Generation -1 with an empty member id is a standalone commit (a group used only to
        store offsets, or an admin resetting them): allowed while the group has no members.
        """

        def all_failed(error: ErrorCode) -> PendingCommit:
            return PendingCommit(dict.fromkeys((TopicPartition(*key) for key in offsets), error))

        error = self._group_id_error(group_id, allow_empty=True)
        if error is not None:
            return all_failed(error)
        group = self._groups.get(group_id)
        if group is None:
            if generation >= 0:
                # No such group, so whatever generation the member thinks it is in is stale.
                return all_failed(ErrorCode.ILLEGAL_GENERATION)
            group = self._new_group(group_id)
            self._groups[group_id] = group
            self._forget_if_unused(group)
        if group.is_(S.DEAD):
            return all_failed(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        if group.is_static_member_fenced(member_id, group_instance_id):
            return all_failed(ErrorCode.FENCED_INSTANCE_ID)
        if not (generation < 0 and group.is_(S.EMPTY)):
            if group.is_(S.COMPLETING_REBALANCE):
                return all_failed(ErrorCode.REBALANCE_IN_PROGRESS)
            member = group.members.get(member_id)
            if member is None:
                return all_failed(ErrorCode.UNKNOWN_MEMBER_ID)
            if generation != group.generation:
                return all_failed(ErrorCode.ILLEGAL_GENERATION)
            self._touch_session(group, member)
        results: dict[TopicPartition, ErrorCode] = {}
        entries: list[OffsetEntry] = []
        epochs = leader_epochs or {}
        exists = self.partition_exists
        limit = self.config.max_offset_metadata_bytes
        for (topic, partition), (offset, metadata) in offsets.items():
            key = TopicPartition(topic, partition)
            if not metadata:
                metadata = ""
            elif len(metadata) * 4 > limit and len(metadata.encode()) > limit:
                results[key] = ErrorCode.OFFSET_METADATA_TOO_LARGE
                continue
            if exists is not None and not exists(topic, partition):
                results[key] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                continue
            results[key] = ErrorCode.NONE
            entries.append(OffsetEntry(topic, partition, offset, epochs.get(key, -1), metadata))
        if not entries:
            return PendingCommit(results)
        try:
            durable = self.store.submit_commit(group_id, entries, self.timers.wall_ms())
        except GroupStoreError as exc:
            for entry in entries:
                results[entry.key] = exc.code
            return PendingCommit(results)
        return PendingCommit(results, durable)

    def fetch_offsets(
        self, group_id: str, partitions: Iterable[tuple[str, int]] | None
    ) -> OffsetFetchResult:
        """Committed offsets of `partitions` (None: every partition the group committed)."""
        error = self._group_id_error(group_id, allow_empty=True)
        if error is not None:
            return OffsetFetchResult(error)
        committed = self.store.offsets(group_id)
        if partitions is None:
            return OffsetFetchResult(ErrorCode.NONE, dict(committed))
        wanted = [TopicPartition(*key) for key in partitions]
        return OffsetFetchResult(ErrorCode.NONE, {key: committed.get(key) for key in wanted})

    async def delete_offsets(
        self, group_id: str, partitions: Iterable[tuple[str, int]]
    ) -> OffsetDeleteResult:
        """OffsetDelete: forget committed offsets the group no longer consumes."""
        keys = [TopicPartition(*key) for key in partitions]
        error = self._group_id_error(group_id, allow_empty=True)
        if error is not None:
            return OffsetDeleteResult(error)
        group = self._groups.get(group_id)
        if group is None or group.is_(S.DEAD):
            return OffsetDeleteResult(ErrorCode.GROUP_ID_NOT_FOUND)
        if group.is_(S.EMPTY):
            subscribed: set[str] = set()
        elif group.protocol_type == CONSUMER_PROTOCOL_TYPE:
            subscribed = self._subscribed_topics(group, keys)
        else:
            return OffsetDeleteResult(ErrorCode.NON_EMPTY_GROUP)
        results: dict[TopicPartition, ErrorCode] = {}
        deletable = []
        for key in keys:
            if key.topic in subscribed:
                results[key] = ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
            elif self.partition_exists is not None and not self.partition_exists(*key):
                results[key] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            else:
                results[key] = ErrorCode.NONE
                deletable.append(key)
        committed = self.store.offsets(group_id)
        try:
            await self.store.delete_offsets(group_id, [k for k in deletable if k in committed])
        except GroupStoreError as exc:
            for key in deletable:
                results[key] = exc.code
        self._forget_if_unused(group)
        return OffsetDeleteResult(ErrorCode.NONE, results)

    def _subscribed_topics(self, group: Group, keys: list[TopicPartition]) -> set[str]:
        """Topics any member subscribes to; when that cannot be known, every topic asked."""
        topics: set[str] = set()
        for member in group.members.values():
            metadata = member.metadata_for(group.protocol_name)
            parsed = subscribed_topics(metadata) if group.protocol_name else None
            if parsed is None:
                return {key.topic for key in keys}
            topics |= parsed
        return topics
