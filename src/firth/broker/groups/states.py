"""The group state machine as a table.

A group is in one of five states, named as Kafka names them (the names go on the wire in
ListGroups and DescribeGroups):

- Empty: no members. Committed offsets may exist (a group used only to store offsets, or one
  whose members all left). The first JoinGroup starts a rebalance.
- PreparingRebalance: a rebalance is under way; the coordinator collects JoinGroup requests until
  every known member has rejoined or the rebalance timeout passes.
- CompletingRebalance: the join phase is over, a new generation exists; the coordinator waits
  for the leader's SyncGroup carrying the assignment.
- Stable: every member has (or may fetch) its assignment; heartbeats keep members alive.
- Dead: the group was deleted (or the coordinator shut down); it accepts nothing.

`TRANSITIONS` maps (state, event) to the next state. A pair missing from the table is a bug in
the coordinator and raises `IllegalTransition`; docs/groups.md prints this table and the tests
walk it.
"""

from __future__ import annotations

from enum import Enum

from firth.broker.groups.errors import IllegalTransition


class GroupState(Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


class GroupEvent(Enum):
    # A member joined, rejoined with new metadata, left, expired, or the leader rejoined.
    REBALANCE = "rebalance"
    # The join phase ended and at least one member remains: a new generation starts.
    JOIN_COMPLETE = "join-complete"
    # The join phase ended with nobody left: a new (empty) generation starts.
    JOIN_COMPLETE_EMPTY = "join-complete-empty"
    # The leader's SyncGroup delivered the assignment.
    LEADER_SYNC = "leader-sync"
    # DeleteGroups on an empty group.
    DELETE = "delete"
    # The coordinator is closing; every group ends.
    SHUTDOWN = "shutdown"


S = GroupState
E = GroupEvent

TRANSITIONS: dict[tuple[GroupState, GroupEvent], GroupState] = {
    (S.EMPTY, E.REBALANCE): S.PREPARING_REBALANCE,
    (S.EMPTY, E.DELETE): S.DEAD,
    (S.EMPTY, E.SHUTDOWN): S.DEAD,
    (S.PREPARING_REBALANCE, E.REBALANCE): S.PREPARING_REBALANCE,
    (S.PREPARING_REBALANCE, E.JOIN_COMPLETE): S.COMPLETING_REBALANCE,
    (S.PREPARING_REBALANCE, E.JOIN_COMPLETE_EMPTY): S.EMPTY,
    (S.PREPARING_REBALANCE, E.SHUTDOWN): S.DEAD,
    (S.COMPLETING_REBALANCE, E.REBALANCE): S.PREPARING_REBALANCE,
    (S.COMPLETING_REBALANCE, E.LEADER_SYNC): S.STABLE,
    (S.COMPLETING_REBALANCE, E.SHUTDOWN): S.DEAD,
    (S.STABLE, E.REBALANCE): S.PREPARING_REBALANCE,
    (S.STABLE, E.SHUTDOWN): S.DEAD,
    (S.DEAD, E.SHUTDOWN): S.DEAD,
}


def next_state(state: GroupState, event: GroupEvent) -> GroupState:
    """The state after `event` in `state`; raises IllegalTransition for a pair not in the table."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(f"{event.value} is not allowed in state {state.value}") from None


def state_by_name(name: str) -> GroupState | None:
    """The state with this wire name (case-insensitive, as ListGroups filters are), or None."""
    lowered = name.lower()
    for state in GroupState:
        if state.value.lower() == lowered:
            return state
    return None
