"""KIP-848 consumer groups: membership by ConsumerGroupHeartbeat, assignment by the coordinator.

Theory of operation (the "consumer" group protocol, librdkafka's group.protocol=consumer):

- A member joins by heartbeating with member epoch 0, its subscription and its rebalance
  timeout, and then heartbeats every heartbeat interval (which the coordinator tells it). The
  session timeout is the coordinator's setting, not the member's: a member not heard from for
  that long is removed. Epoch -1 leaves; epoch -2 is a static member (group.instance.id) leaving
  for a moment: it keeps its partitions until the session timeout, and a new incarnation that
  joins with the same instance id within it takes them over, epoch and all.
- The group epoch goes up whenever what the assignment depends on changes: a member joins or is
  removed, a subscription or the chosen assignor changes, a subscribed topic's partition count
  changes. When the group epoch is ahead of the target assignment's epoch, the next heartbeat
  recomputes the target assignment (`assignors`) for every member at the group epoch.
- Reconciliation is per member and incremental: a member first gives up (revokes) what its
  target no longer holds, keeping its epoch (state UNREVOKED_PARTITIONS) until a heartbeat lists
  its owned partitions without them; only then does it move to the target epoch and get new
  partitions, and only those no other member still holds (the rest come on a later heartbeat,
  state UNRELEASED_PARTITIONS). So a partition never has two owners. A member that does not
  revoke within its rebalance timeout is removed.
- Fencing: a heartbeat with an epoch other than the member's gets FENCED_MEMBER_EPOCH (the
  previous epoch is accepted when the member's owned partitions are a subset of its assignment:
  it lost our answer); an unknown member id gets UNKNOWN_MEMBER_ID. Both make the client drop its
  partitions and rejoin with epoch 0. OffsetCommit from a member carries its epoch: the current
  one commits anything, an older one only the partitions held since then (KIP-1251 assignment
  epochs); the rest get STALE_MEMBER_EPOCH.
- Empty groups are forgotten after `empty_group_retention_ms` (their offsets stay), so joins
  under ever new group ids cost bounded memory over time.
- Membership is not persisted (as for classic groups): after a broker restart members heartbeat
  into a group the coordinator does not know and get UNKNOWN_MEMBER_ID, which makes them rejoin;
  committed offsets live in the shared offsets store and survive. (Kafka, which persists the
  group, would answer GROUP_ID_NOT_FOUND for an unknown group, which librdkafka treats as fatal.)
- One group id, one protocol: the classic coordinator owns groups joined with JoinGroup; a
  heartbeat to a classic group with members gets GROUP_ID_NOT_FOUND, and `protocols` refuses a
  JoinGroup to a consumer group with members (INCONSISTENT_GROUP_PROTOCOL). An empty group of
  either kind is taken over by the other protocol, offsets kept, as Kafka converts empty groups.

Time comes from the injected `Timers`; everything runs on the event-loop thread and nothing
here awaits.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from firth.broker.groups.assignors import ASSIGNORS, Partition, choose_assignor
from firth.broker.groups.config import GroupConfig
from firth.broker.groups.errors import ErrorCode
from firth.broker.groups.timers import TimerHandle, Timers
from firth.broker.groups.topic_regex import TopicMatcher, regex_error

logger = logging.getLogger(__name__)

JOIN_EPOCH = 0
LEAVE_EPOCH = -1
STATIC_LEAVE_EPOCH = -2

TopicPartitionCounts = Callable[[], Mapping[str, int]]
"""Every topic's partition count (looked up on each heartbeat, so it must be cheap)."""


class MemberState(Enum):
    STABLE = "stable"
    UNREVOKED_PARTITIONS = "unrevoked_partitions"
    UNRELEASED_PARTITIONS = "unreleased_partitions"


class ConsumerGroupState(Enum):
    """As Kafka names them in ListGroups and ConsumerGroupDescribe."""

    EMPTY = "Empty"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(slots=True)
class ConsumerMember:
    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    subscribed_names: frozenset[str] = frozenset()
    subscribed_regex: str | None = None
    server_assignor: str | None = None
    rack_id: str | None = None
    epoch: int = 0
    previous_epoch: int = 0
    state: MemberState = MemberState.STABLE
    assigned: frozenset[Partition] = frozenset()
    assignment_epochs: dict[Partition, int] = field(default_factory=dict)
    """Partition -> the member epoch at which it was given to this member (KIP-1251)."""
    revoking: frozenset[Partition] = frozenset()
    session_timer: TimerHandle | None = None
    revocation_timer: TimerHandle | None = None

    matcher: TopicMatcher | None = None

    def subscribed(self, topics: Iterable[str]) -> frozenset[str]:
        """Subscribed topic names: the listed ones and those the regex matches in `topics`."""
        if self.subscribed_regex is None:
            return self.subscribed_names
        if self.matcher is None or self.matcher.pattern != self.subscribed_regex:
            self.matcher = TopicMatcher(self.subscribed_regex)
        matcher = self.matcher
        return self.subscribed_names | {t for t in topics if matcher.matches(t)}

    def cancel_timers(self) -> None:
        for timer in (self.session_timer, self.revocation_timer):
            if timer is not None:
                timer.cancel()
        self.session_timer = self.revocation_timer = None


@dataclass(slots=True)
class ConsumerGroup:
    group_id: str
    epoch: int = 0
    target_epoch: int = 0
    target: dict[str, frozenset[Partition]] = field(default_factory=dict)
    members: dict[str, ConsumerMember] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)
    """instance id -> member id."""
    owners: dict[Partition, str] = field(default_factory=dict)
    """Partition -> the member holding it (assigned, or not yet revoked)."""
    partition_counts: dict[str, int] = field(default_factory=dict)
    subscriptions: tuple[frozenset[str], list[ConsumerMember]] | None = None
    """Cache: the topic names members list, and the members with a regex; None after a change."""
    """Partition counts of the subscribed topics the target assignment was computed with."""
    assignor: str = next(iter(ASSIGNORS))
    empty_timer: TimerHandle | None = None
    """Forgets the group once it has been empty for `empty_group_retention_ms`."""

    @property
    def state(self) -> ConsumerGroupState:
        if not self.members:
            return ConsumerGroupState.EMPTY
        if self.epoch > self.target_epoch:
            return ConsumerGroupState.ASSIGNING
        if any(
            m.epoch != self.target_epoch or m.state is not MemberState.STABLE
            for m in self.members.values()
        ):
            return ConsumerGroupState.RECONCILING
        return ConsumerGroupState.STABLE


@dataclass(frozen=True, slots=True)
class HeartbeatRequest:
    group_id: str
    member_id: str
    member_epoch: int
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    subscribed_topic_names: tuple[str, ...] | None = None
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    owned: frozenset[Partition] | None = None
    client_id: str = ""
    client_host: str = ""
    member_id_required: bool = True
    """ConsumerGroupHeartbeat v1+: the client generates its member id, so it must send one."""


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    error: ErrorCode
    message: str | None = None
    member_id: str | None = None
    member_epoch: int = 0
    heartbeat_interval_ms: int = 0
    assignment: frozenset[Partition] | None = None
    """None: unchanged since the last answer (the client keeps what it has)."""


@dataclass(frozen=True, slots=True)
class ConsumerMemberDescription:
    member_id: str
    instance_id: str | None
    rack_id: str | None
    member_epoch: int
    client_id: str
    client_host: str
    subscribed_topic_names: tuple[str, ...]
    subscribed_topic_regex: str | None
    assignment: frozenset[Partition]
    target_assignment: frozenset[Partition]


@dataclass(frozen=True, slots=True)
class ConsumerGroupDescription:
    error: ErrorCode
    message: str | None
    group_id: str
    state: str = ""
    group_epoch: int = 0
    assignment_epoch: int = 0
    assignor: str = ""
    members: tuple[ConsumerMemberDescription, ...] = ()


def _failed(error: ErrorCode, message: str, member_id: str | None = None) -> HeartbeatResult:
    return HeartbeatResult(error, message, member_id, 0)


class ConsumerGroupCoordinator:
    """Every KIP-848 consumer group of this broker (membership and assignment only)."""

    def __init__(
        self,
        config: GroupConfig,
        timers: Timers,
        partition_counts: TopicPartitionCounts,
        classic_in_use: Callable[[str], bool] = lambda _group_id: False,
    ) -> None:
        self.config = config
        self.timers = timers
        self.partition_counts = partition_counts
        self.classic_in_use = classic_in_use
        """Does a classic group with this id have members (so this protocol may not take it)?"""
        self.groups: dict[str, ConsumerGroup] = {}
        self.closed = False

    def close(self) -> None:
        self.closed = True
        for group in self.groups.values():
            if group.empty_timer is not None:
                group.empty_timer.cancel()
            for member in group.members.values():
                member.cancel_timers()
        self.groups.clear()

    # ------------------------------------------------------------------ queries

    def owns(self, group_id: str) -> bool:
        return group_id in self.groups

    def has_members(self, group_id: str) -> bool:
        group = self.groups.get(group_id)
        return group is not None and bool(group.members)

    def forget_empty(self, group_id: str) -> bool:
        """Drop an empty group (another protocol takes the id over); False if it has members."""
        group = self.groups.get(group_id)
        if group is None:
            return True
        if group.members:
            return False
        if group.empty_timer is not None:
            group.empty_timer.cancel()
        del self.groups[group_id]
        return True

    def describe(self, group_id: str) -> ConsumerGroupDescription:
        """ConsumerGroupDescribe: GROUP_ID_NOT_FOUND unless `group_id` is a consumer group."""
        group = self.groups.get(group_id)
        if group is None:
            why = "is not a consumer group" if self.classic_in_use(group_id) else "not found"
            return ConsumerGroupDescription(
                ErrorCode.GROUP_ID_NOT_FOUND, f"group {group_id} {why}", group_id
            )
        members = tuple(
            ConsumerMemberDescription(
                m.member_id,
                m.instance_id,
                m.rack_id,
                m.epoch,
                m.client_id,
                m.client_host,
                tuple(sorted(m.subscribed_names)),
                m.subscribed_regex,
                m.assigned,
                group.target.get(m.member_id, frozenset()),
            )
            for m in group.members.values()
        )
        return ConsumerGroupDescription(
            ErrorCode.NONE,
            None,
            group_id,
            group.state.value,
            group.epoch,
            group.target_epoch,
            group.assignor,
            members,
        )

    # ------------------------------------------------------------------ heartbeat

    def heartbeat(self, request: HeartbeatRequest) -> HeartbeatResult:
        if self.closed:
            return _failed(ErrorCode.COORDINATOR_NOT_AVAILABLE, "the coordinator is stopping")
        error = self._invalid(request)
        if error is not None:
            return error
        if request.member_epoch in (LEAVE_EPOCH, STATIC_LEAVE_EPOCH):
            return self._leave(request)
        group = self.groups.get(request.group_id)
        if group is None:
            if request.member_epoch != JOIN_EPOCH:
                # Not persisted across restarts: make the member rejoin (see the docstring).
                return _failed(
                    ErrorCode.UNKNOWN_MEMBER_ID,
                    f"group {request.group_id} has no member {request.member_id}",
                    request.member_id,
                )
            if self.classic_in_use(request.group_id):
                return _failed(
                    ErrorCode.GROUP_ID_NOT_FOUND,
                    f"group {request.group_id} is not a consumer group",
                )
            group = ConsumerGroup(request.group_id)
            self.groups[request.group_id] = group
        member_or_error = self._member(group, request)
        if isinstance(member_or_error, HeartbeatResult):
            if not group.members and group.empty_timer is None and group.epoch == 0:
                del self.groups[group.group_id]  # created for this join, which failed
            return member_or_error
        member, is_new = member_or_error
        before = member.assigned
        bump = is_new
        if request.subscribed_topic_names is not None:
            names = frozenset(request.subscribed_topic_names)
            bump |= names != member.subscribed_names
            member.subscribed_names = names
        if request.subscribed_topic_regex is not None:
            regex = request.subscribed_topic_regex or None
            bump |= regex != member.subscribed_regex
            member.subscribed_regex = regex
        if request.server_assignor is not None:
            bump |= request.server_assignor != member.server_assignor
            member.server_assignor = request.server_assignor
        if request.rebalance_timeout_ms != -1:
            member.rebalance_timeout_ms = request.rebalance_timeout_ms
        if request.rack_id is not None:
            member.rack_id = request.rack_id
        member.client_id, member.client_host = request.client_id, request.client_host
        if bump:
            group.subscriptions = None
        counts = self._subscribed_counts(group)
        if counts != group.partition_counts:
            group.partition_counts = counts
            bump = True
        if bump:
            group.epoch += 1
        if group.epoch > group.target_epoch:
            self._compute_target(group)
        self._reconcile(group, member, request.owned)
        self._touch_session(group, member)
        full = request.member_epoch == JOIN_EPOCH or (
            request.rebalance_timeout_ms != -1
            and request.subscribed_topic_names is not None
            and request.owned is not None
        )
        return HeartbeatResult(
            ErrorCode.NONE,
            None,
            member.member_id,
            member.epoch,
            self.config.consumer_heartbeat_interval_ms,
            member.assigned if full or member.assigned != before else None,
        )

    def _invalid(self, request: HeartbeatRequest) -> HeartbeatResult | None:
        def invalid(message: str) -> HeartbeatResult:
            return _failed(ErrorCode.INVALID_REQUEST, message, request.member_id)

        group_id = request.group_id
        if not group_id:
            return _failed(ErrorCode.INVALID_GROUP_ID, "GroupId can't be empty")
        if len(group_id) * 4 > self.config.max_group_id_bytes and (
            len(group_id.encode()) > self.config.max_group_id_bytes
        ):
            return _failed(ErrorCode.INVALID_GROUP_ID, "GroupId is too long")
        if request.instance_id == "":
            return invalid("InstanceId can't be empty")
        if request.rack_id == "":
            return invalid("RackId can't be empty")
        epoch = request.member_epoch
        if request.member_id_required and not request.member_id:
            return invalid("MemberId can't be empty")
        if epoch > 0 or epoch == LEAVE_EPOCH:
            if not request.member_id:
                return invalid("MemberId can't be empty")
        elif epoch == JOIN_EPOCH:
            if request.rebalance_timeout_ms == -1:
                return invalid("RebalanceTimeoutMs must be provided in first request")
            if request.owned is None or request.owned:
                return invalid("TopicPartitions must be empty when (re-)joining")
            if not request.subscribed_topic_names and not request.subscribed_topic_regex:
                return invalid("SubscribedTopicNames or SubscribedTopicRegex must be set")
        elif epoch == STATIC_LEAVE_EPOCH:
            if not request.member_id:
                return invalid("MemberId can't be empty")
            if request.instance_id is None:
                return invalid("InstanceId can't be null")
        else:
            return invalid("MemberEpoch is invalid")
        if request.server_assignor is not None and request.server_assignor not in ASSIGNORS:
            return _failed(
                ErrorCode.UNSUPPORTED_ASSIGNOR,
                f"ServerAssignor {request.server_assignor} is not supported; "
                f"supported: {', '.join(ASSIGNORS)}",
                request.member_id,
            )
        if request.subscribed_topic_regex:
            why = regex_error(request.subscribed_topic_regex)
            if why is not None:
                return _failed(
                    ErrorCode.INVALID_REGULAR_EXPRESSION,
                    f"SubscribedTopicRegex is not served: {why}",
                    request.member_id,
                )
        return None

    def _member(
        self, group: ConsumerGroup, request: HeartbeatRequest
    ) -> tuple[ConsumerMember, bool] | HeartbeatResult:
        """The member the heartbeat is from (new or taking over a static one), or the error."""
        member_id = request.member_id or str(uuid.uuid4())
        epoch = request.member_epoch
        if epoch == JOIN_EPOCH:
            known = group.members.get(member_id)
            if known is not None and known.instance_id != request.instance_id:
                # A member id keeps its instance id: otherwise a rejoin could not be told from
                # one member taking over another's instance id.
                return _failed(
                    ErrorCode.INVALID_REQUEST,
                    f"member {member_id} cannot change its instance id",
                    member_id,
                )
            if request.instance_id is not None and request.instance_id in group.static_members:
                old = group.members[group.static_members[request.instance_id]]
                if old.member_id != member_id and old.epoch != STATIC_LEAVE_EPOCH:
                    return _failed(
                        ErrorCode.UNRELEASED_INSTANCE_ID,
                        f"instance id {request.instance_id} is still owned by member "
                        f"{old.member_id}",
                        member_id,
                    )
                return self._replace_static(group, old, member_id), False
            existing = group.members.get(member_id)
            if existing is not None:
                # Rejoining after being fenced: it gave up its partitions; start afresh.
                self._remove(group, existing, "rejoined with epoch 0")
            if len(group.members) >= self.config.max_group_size:
                return _failed(
                    ErrorCode.GROUP_MAX_SIZE_REACHED,
                    f"group {group.group_id} has reached its maximum size",
                    member_id,
                )
            member = ConsumerMember(
                member_id,
                request.instance_id,
                request.client_id,
                request.client_host,
                request.rebalance_timeout_ms,
            )
            group.members[member_id] = member
            if group.empty_timer is not None:
                group.empty_timer.cancel()
                group.empty_timer = None
            if request.instance_id is not None:
                group.static_members[request.instance_id] = member_id
            logger.info("consumer group %s: member %s joined", group.group_id, member_id)
            return member, True
        if request.instance_id is not None:
            holder = group.static_members.get(request.instance_id)
            if holder is None:
                return _failed(
                    ErrorCode.UNKNOWN_MEMBER_ID,
                    f"instance id {request.instance_id} is unknown",
                    member_id,
                )
            if holder != member_id:
                return _failed(
                    ErrorCode.FENCED_INSTANCE_ID,
                    f"member {member_id} was fenced by member {holder}",
                    member_id,
                )
        known = group.members.get(member_id)
        if known is None:
            return _failed(
                ErrorCode.UNKNOWN_MEMBER_ID,
                f"group {group.group_id} has no member {member_id}",
                member_id,
            )
        error = self._epoch_error(known, epoch, request.owned)
        if error is not None:
            return error
        return known, False

    @staticmethod
    def _epoch_error(
        member: ConsumerMember, epoch: int, owned: frozenset[Partition] | None
    ) -> HeartbeatResult | None:
        if epoch == member.epoch:
            return None
        # The previous epoch, owning no more than it is assigned: it lost our last answer.
        if (
            epoch < member.epoch
            and epoch == member.previous_epoch
            and owned is not None
            and owned <= member.assigned
        ):
            return None
        return _failed(
            ErrorCode.FENCED_MEMBER_EPOCH,
            f"member epoch {epoch} is not the coordinator's {member.epoch}; "
            "the member must give up its partitions and rejoin",
            member.member_id,
        )

    def _replace_static(
        self, group: ConsumerGroup, old: ConsumerMember, member_id: str
    ) -> ConsumerMember:
        """A static member's new incarnation takes over the old one's partitions."""
        old.cancel_timers()
        # What the old incarnation was still revoking is free: the new one never had it.
        self._release(group, old.revoking)
        old.revoking = frozenset()
        del group.members[old.member_id]
        if old.member_id in group.target:
            group.target[member_id] = group.target.pop(old.member_id)
        for partition, owner in group.owners.items():
            if owner == old.member_id:
                group.owners[partition] = member_id
        old.member_id = member_id
        # Epoch 0 until reconciled: the next reconciliation returns its partitions at once.
        old.epoch = old.previous_epoch = 0
        old.state = MemberState.STABLE
        group.members[member_id] = old
        assert old.instance_id is not None
        group.static_members[old.instance_id] = member_id
        logger.info(
            "consumer group %s: static member %s rejoined as %s",
            group.group_id,
            old.instance_id,
            member_id,
        )
        return old

    def _leave(self, request: HeartbeatRequest) -> HeartbeatResult:
        group = self.groups.get(request.group_id)
        if group is None:
            return _failed(
                ErrorCode.GROUP_ID_NOT_FOUND, f"consumer group {request.group_id} not found"
            )
        if request.instance_id is None:
            member = group.members.get(request.member_id)
            if member is None:
                return _failed(
                    ErrorCode.UNKNOWN_MEMBER_ID,
                    f"group {group.group_id} has no member {request.member_id}",
                    request.member_id,
                )
        else:
            holder = group.static_members.get(request.instance_id)
            if holder is None:
                return _failed(
                    ErrorCode.UNKNOWN_MEMBER_ID,
                    f"instance id {request.instance_id} is unknown",
                    request.member_id,
                )
            if holder != request.member_id:
                return _failed(
                    ErrorCode.FENCED_INSTANCE_ID,
                    f"member {request.member_id} was fenced by member {holder}",
                    request.member_id,
                )
            member = group.members[holder]
            if request.member_epoch == STATIC_LEAVE_EPOCH:
                # Keeps its partitions (and session timer) for its next incarnation.
                self._release(group, member.revoking)
                member.revoking = frozenset()
                member.epoch = STATIC_LEAVE_EPOCH
                if member.revocation_timer is not None:
                    member.revocation_timer.cancel()
                    member.revocation_timer = None
                logger.info(
                    "consumer group %s: static member %s left for now",
                    group.group_id,
                    request.instance_id,
                )
                return HeartbeatResult(
                    ErrorCode.NONE, None, member.member_id, STATIC_LEAVE_EPOCH, 0, None
                )
        self._remove(group, member, "left the group")
        return HeartbeatResult(ErrorCode.NONE, None, request.member_id, request.member_epoch, 0)

    # ------------------------------------------------------------------ assignment

    def _subscribed_counts(self, group: ConsumerGroup) -> dict[str, int]:
        """Partition counts of every topic some member subscribes to (by name or regex)."""
        counts = self.partition_counts()
        if group.subscriptions is None:
            members = group.members.values()
            names = frozenset().union(*(m.subscribed_names for m in members))
            group.subscriptions = names, [m for m in members if m.subscribed_regex is not None]
        names, with_regex = group.subscriptions
        topics = set(names)
        for member in with_regex:
            topics |= member.subscribed(counts)
        return {t: counts[t] for t in sorted(topics) if t in counts}

    def _compute_target(self, group: ConsumerGroup) -> None:
        members = group.members.values()
        group.assignor = choose_assignor([m.server_assignor for m in members])
        counts = group.partition_counts
        subscriptions = {m.member_id: m.subscribed(counts) for m in members}
        instances = {m.member_id: m.instance_id for m in members}
        group.target = ASSIGNORS[group.assignor](subscriptions, counts, group.target, instances)
        group.target_epoch = group.epoch
        logger.info(
            "consumer group %s: target assignment at epoch %d (%s) for %d members",
            group.group_id,
            group.epoch,
            group.assignor,
            len(subscriptions),
        )

    def _release(self, group: ConsumerGroup, partitions: Iterable[Partition]) -> None:
        for partition in partitions:
            group.owners.pop(partition, None)

    def _reconcile(
        self, group: ConsumerGroup, member: ConsumerMember, owned: frozenset[Partition] | None
    ) -> None:
        """Move the member towards its target (see the module docstring)."""
        if member.state is MemberState.UNREVOKED_PARTITIONS:
            if owned is None or owned & member.revoking:
                return
            self._release(group, member.revoking)
            member.revoking = frozenset()
            if member.revocation_timer is not None:
                member.revocation_timer.cancel()
                member.revocation_timer = None
        elif member.state is MemberState.STABLE and member.epoch == group.target_epoch:
            return
        target = group.target.get(member.member_id, frozenset())
        keep = member.assigned & target
        revoke = member.assigned - target
        if revoke:
            member.assigned, member.revoking = keep, revoke
            member.state = MemberState.UNREVOKED_PARTITIONS
            epoch = member.epoch
            member.revocation_timer = self.timers.call_at(
                self.timers.now() + member.rebalance_timeout_ms / 1000,
                lambda: self._revocation_expired(group, member, epoch),
            )
            return
        wanted = target - keep
        free = frozenset(
            p for p in wanted if group.owners.get(p, member.member_id) == member.member_id
        )
        for partition in free:
            group.owners[partition] = member.member_id
            member.assignment_epochs[partition] = group.target_epoch
        member.assigned = keep | free
        if member.epoch != group.target_epoch:
            member.previous_epoch, member.epoch = member.epoch, group.target_epoch
        member.state = MemberState.UNRELEASED_PARTITIONS if wanted - free else MemberState.STABLE

    # ------------------------------------------------------------------ removal

    def _touch_session(self, group: ConsumerGroup, member: ConsumerMember) -> None:
        if member.session_timer is not None:
            member.session_timer.cancel()
        member_id = member.member_id
        member.session_timer = self.timers.call_at(
            self.timers.now() + self.config.consumer_session_timeout_ms / 1000,
            lambda: self._session_expired(group, member_id),
        )

    def _session_expired(self, group: ConsumerGroup, member_id: str) -> None:
        member = group.members.get(member_id)
        if member is not None and self.groups.get(group.group_id) is group:
            member.session_timer = None
            self._remove(group, member, "session timed out")

    def _revocation_expired(self, group: ConsumerGroup, member: ConsumerMember, epoch: int) -> None:
        member.revocation_timer = None
        current = group.members.get(member.member_id)
        if (
            current is member
            and member.epoch == epoch
            and member.state is MemberState.UNREVOKED_PARTITIONS
            and self.groups.get(group.group_id) is group
        ):
            self._remove(
                group, member, "did not revoke its partitions within its rebalance timeout"
            )

    def _remove(self, group: ConsumerGroup, member: ConsumerMember, why: str) -> None:
        member.cancel_timers()
        self._release(group, member.assigned | member.revoking)
        group.members.pop(member.member_id, None)
        group.target.pop(member.member_id, None)
        if member.instance_id is not None and (
            group.static_members.get(member.instance_id) == member.member_id
        ):
            del group.static_members[member.instance_id]
        group.subscriptions = None
        group.partition_counts = self._subscribed_counts(group)
        group.epoch += 1
        logger.info(
            "consumer group %s: member %s removed (%s); group epoch %d",
            group.group_id,
            member.member_id,
            why,
            group.epoch,
        )
        if not group.members:
            group.empty_timer = self.timers.call_at(
                self.timers.now() + self.config.empty_group_retention_ms / 1000,
                lambda: self._forget_if_empty(group),
            )

    def _forget_if_empty(self, group: ConsumerGroup) -> None:
        group.empty_timer = None
        if not group.members and self.groups.get(group.group_id) is group:
            del self.groups[group.group_id]

    # ------------------------------------------------------------------ offsets

    def commit_errors(
        self, group_id: str, member_id: str, member_epoch: int, partitions: Iterable[Partition]
    ) -> dict[Partition, ErrorCode]:
        """The partitions of an OffsetCommit to this consumer group that are refused, and why.

        The member's current epoch commits anything. An older epoch (the member has not yet
        heard of its new one) commits the partitions it has held since that epoch or earlier,
        which no one else can have committed since (Kafka's KIP-1251 assignment epochs); the
        rest get STALE_MEMBER_EPOCH, as does a newer epoch.
        """
        group = self.groups[group_id]
        wanted = list(partitions)
        if member_epoch < 0 and not group.members:
            return {}  # an admin or a consumer outside group management: the group is empty
        member = group.members.get(member_id)
        if member is None:
            return dict.fromkeys(wanted, ErrorCode.UNKNOWN_MEMBER_ID)
        if member_epoch == member.epoch:
            return {}
        if member_epoch > member.epoch or member_epoch < 0:
            return dict.fromkeys(wanted, ErrorCode.STALE_MEMBER_EPOCH)
        held = member.assigned | member.revoking
        return {
            p: ErrorCode.STALE_MEMBER_EPOCH
            for p in wanted
            if p not in held or member.assignment_epochs.get(p, member.epoch) > member_epoch
        }

    def fetch_error(
        self, group_id: str, member_id: str | None, member_epoch: int
    ) -> ErrorCode | None:
        """Why an OffsetFetch naming a member of this consumer group is refused, or None."""
        if member_id is None or member_epoch < 0:
            return None
        group = self.groups.get(group_id)
        member = group.members.get(member_id) if group is not None else None
        if member is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if member_epoch != member.epoch:
            return ErrorCode.STALE_MEMBER_EPOCH
        return None
