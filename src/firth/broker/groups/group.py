"""One group's membership state: members, leader, generation, chosen protocol, state.

`Group` holds data and answers questions about it (who is the leader, which protocol every member
supports, has everyone rejoined); the coordinator decides what happens. State changes go only
through `transition`, which consults the table in `states`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from firth.broker.groups.member import Member
from firth.broker.groups.states import GroupEvent, GroupState, next_state
from firth.broker.groups.timers import TimerHandle

CONSUMER_PROTOCOL_TYPE = "consumer"


@dataclass(slots=True, eq=False)
class Group:
    group_id: str
    state: GroupState = GroupState.EMPTY
    generation: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    # group.instance.id -> the member id currently holding it.
    static_members: dict[str, str] = field(default_factory=dict)
    # Member ids handed out with MEMBER_ID_REQUIRED, not yet joined -> expiry timer.
    pending_members: dict[str, TimerHandle] = field(default_factory=dict)
    # Members of the current generation that have not sent SyncGroup yet.
    pending_sync: set[str] = field(default_factory=set)
    # Timer ending the join phase (initial delay or rebalance timeout) and the sync deadline.
    join_timer: TimerHandle | None = None
    sync_timer: TimerHandle | None = None
    # While the initial delay of a new group runs, the join does not complete early.
    initial_delay_active: bool = False
    new_member_added: bool = False
    # Monotonic time of the last state change (Empty groups without offsets are forgotten).
    state_since: float = 0.0
    # Wall-clock ms since when the group has had no members (offsets retention counts from it).
    empty_since_ms: int = 0

    def transition(self, event: GroupEvent, now: float) -> GroupState:
        self.state = next_state(self.state, event)
        self.state_since = now
        return self.state

    def is_(self, state: GroupState) -> bool:
        return self.state is state

    @property
    def size(self) -> int:
        """Members plus member ids handed out but not yet joined: both cost memory."""
        return len(self.members) + len(self.pending_members)

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id == member_id

    def add(self, member: Member) -> None:
        if not self.members:
            self.protocol_type = member.protocol_type
        self.members[member.member_id] = member
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        if self.leader_id is None:
            self.leader_id = member.member_id

    def remove(self, member_id: str) -> Member | None:
        member = self.members.pop(member_id, None)
        if member is None:
            return None
        if (
            member.group_instance_id is not None
            and self.static_members.get(member.group_instance_id) == member_id
        ):
            del self.static_members[member.group_instance_id]
        self.pending_sync.discard(member_id)
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        return member

    def is_static_member_fenced(self, member_id: str, group_instance_id: str | None) -> bool:
        """The instance id is held by a different member id (a newer incarnation)."""
        if group_instance_id is None:
            return False
        holder = self.static_members.get(group_instance_id)
        return holder is not None and holder != member_id

    def candidate_protocols(self) -> set[str]:
        """Protocols every member supports."""
        counts: Counter[str] = Counter()
        for member in self.members.values():
            counts.update(set(member.protocol_names))
        return {name for name, count in counts.items() if count == len(self.members)}

    def supports_protocols(self, protocol_type: str, names: list[str]) -> bool:
        """Could a member with this protocol type and these protocols join?"""
        if not protocol_type or not names:
            return False
        if not self.members:
            return True
        return self.protocol_type == protocol_type and bool(self.candidate_protocols() & set(names))

    def select_protocol(self) -> str:
        """Each member votes for its most preferred candidate; the most votes win.

        Ties go to the protocol the earliest member prefers, so the choice is deterministic.
        """
        candidates = self.candidate_protocols()
        votes = Counter(member.vote(candidates) for member in self.members.values())
        best = max(votes.values())
        for member in self.members.values():
            for name in member.protocol_names:
                if votes.get(name) == best:
                    return name
        raise AssertionError("unreachable: some protocol got the most votes")

    def all_joined(self) -> bool:
        return not self.pending_members and all(m.awaiting_join for m in self.members.values())

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)
