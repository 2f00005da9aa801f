"""The group state table: exactly Kafka's transitions, nothing else."""

from __future__ import annotations

import pytest

from firth.broker.groups.errors import IllegalTransition
from firth.broker.groups.states import (
    TRANSITIONS,
    GroupEvent,
    GroupState,
    next_state,
    state_by_name,
)

S = GroupState

# Kafka's GroupMetadata: each state and the states it may be entered from.
KAFKA_VALID_PREVIOUS = {
    S.PREPARING_REBALANCE: {S.STABLE, S.COMPLETING_REBALANCE, S.EMPTY},
    S.COMPLETING_REBALANCE: {S.PREPARING_REBALANCE},
    S.STABLE: {S.COMPLETING_REBALANCE},
    S.EMPTY: {S.PREPARING_REBALANCE},
    S.DEAD: {S.STABLE, S.PREPARING_REBALANCE, S.COMPLETING_REBALANCE, S.EMPTY, S.DEAD},
}


def test_every_transition_is_one_kafka_allows() -> None:
    for (state, _event), target in TRANSITIONS.items():
        if state is target and state is S.PREPARING_REBALANCE:
            continue  # another trigger while already rebalancing: stays, no transition
        assert state in KAFKA_VALID_PREVIOUS[target], (state, target)


def test_every_kafka_transition_is_reachable() -> None:
    reachable = {(state, target) for (state, _), target in TRANSITIONS.items()}
    for target, previous in KAFKA_VALID_PREVIOUS.items():
        for state in previous:
            assert (state, target) in reachable, (state, target)


def test_pairs_missing_from_the_table_raise() -> None:
    for state in GroupState:
        for event in GroupEvent:
            if (state, event) in TRANSITIONS:
                assert next_state(state, event) is TRANSITIONS[(state, event)]
            else:
                with pytest.raises(IllegalTransition):
                    next_state(state, event)


def test_dead_is_terminal() -> None:
    assert {target for (state, _), target in TRANSITIONS.items() if state is S.DEAD} == {S.DEAD}


def test_state_names_are_kafkas_wire_names() -> None:
    assert [s.value for s in GroupState] == [
        "Empty",
        "PreparingRebalance",
        "CompletingRebalance",
        "Stable",
        "Dead",
    ]
    assert state_by_name("stable") is S.STABLE
    assert state_by_name("PREPARINGREBALANCE") is S.PREPARING_REBALANCE
    assert state_by_name("nope") is None


def test_docs_print_exactly_this_table() -> None:
    from pathlib import Path

    page = Path(__file__).resolve().parents[2] / "docs" / "groups.md"
    rows = set()
    for line in page.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and state_by_name(cells[0]) and state_by_name(cells[2]):
            rows.add((cells[0], cells[1], cells[2]))
    expected = {(s.value, e.value, t.value) for (s, e), t in TRANSITIONS.items()}
    assert rows == expected
