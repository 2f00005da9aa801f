"""The KIP-848 consumer-group core and its assignors, driven directly with a manual clock.

What the interop tests cannot pin down exactly: the order of a handover (a partition is given to
its new owner only after the old one revoked it), epochs, the rebalance and session timeouts, a
lost heartbeat answer, partition-count changes, and the assignors' balance and stickiness.
"""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firth.broker.groups.assignors import choose_assignor, range_, uniform
from firth.broker.groups.config import GroupConfig
from firth.broker.groups.consumer_groups import (
    ConsumerGroupCoordinator,
    HeartbeatRequest,
    HeartbeatResult,
    MemberState,
)
from firth.broker.groups.errors import ErrorCode
from firth.broker.groups.timers import ManualTimers
from firth.broker.groups.topic_regex import TopicMatcher, regex_error

SESSION_MS = 6000
TOPICS = {"t": 6, "u": 3}


class Harness:
    def __init__(self) -> None:
        self.timers = ManualTimers()
        self.counts = dict(TOPICS)
        self.core = ConsumerGroupCoordinator(
            GroupConfig(consumer_session_timeout_ms=SESSION_MS, consumer_heartbeat_interval_ms=500),
            self.timers,
            lambda: self.counts,
        )
        self.epochs: dict[str, int] = {}
        self.owned: dict[str, frozenset[tuple[str, int]]] = {}

    def join(
        self, member: str, topics: tuple[str, ...] = ("t",), **extra: object
    ) -> HeartbeatResult:
        result = self.core.heartbeat(
            HeartbeatRequest(
                "g",
                member,
                0,
                rebalance_timeout_ms=extra.pop("rebalance_timeout_ms", 10_000),  # type: ignore[arg-type]
                subscribed_topic_names=topics,
                owned=frozenset(),
                **extra,  # type: ignore[arg-type]
            )
        )
        assert result.error is ErrorCode.NONE, result
        self._apply(member, result)
        return result

    def beat(self, member: str, *, ack: bool = True, epoch: int | None = None) -> HeartbeatResult:
        result = self.core.heartbeat(
            HeartbeatRequest(
                "g",
                member,
                self.epochs[member] if epoch is None else epoch,
                owned=self.owned.get(member, frozenset()) if ack else None,
            )
        )
        if result.error is ErrorCode.NONE:
            self._apply(member, result)
        return result

    def _apply(self, member: str, result: HeartbeatResult) -> None:
        self.epochs[member] = result.member_epoch
        if result.assignment is not None:
            self.owned[member] = result.assignment
        # The client view never has two owners of one partition.
        held = Counter(p for parts in self.owned.values() for p in parts)
        assert all(n == 1 for n in held.values()), self.owned

    def settle(self, members: list[str], rounds: int = 4) -> None:
        for _ in range(rounds):
            for member in members:
                assert self.beat(member).error is ErrorCode.NONE

    @property
    def group(self):  # type: ignore[no-untyped-def]
        return self.core.groups["g"]


def test_a_partition_moves_only_after_its_owner_revoked_it() -> None:
    h = Harness()
    first = h.join("a")
    assert first.assignment == {("t", p) for p in range(6)} and first.member_epoch == 1
    second = h.join("b")
    assert second.member_epoch == 2 and second.assignment == frozenset()
    assert h.group.members["b"].state is MemberState.UNRELEASED_PARTITIONS
    # a learns it must give three back, keeping its epoch until it has.
    shrink = h.beat("a", ack=False)
    assert shrink.member_epoch == 1 and shrink.assignment is not None
    assert len(shrink.assignment) == 3
    assert h.group.members["a"].state is MemberState.UNREVOKED_PARTITIONS
    # b asks again before a acknowledged: nothing yet.
    assert h.beat("b").assignment is None
    # a acknowledges (owned = what it kept): it moves to epoch 2, then b gets the rest.
    done = h.beat("a")
    assert done.member_epoch == 2
    given_ = h.beat("b")
    assert given_.assignment == {("t", p) for p in range(6)} - shrink.assignment
    assert h.group.state.value == "Stable"


def test_survivors_keep_their_partitions_when_a_member_leaves() -> None:
    h = Harness()
    for member in "abc":
        h.join(member)
        h.settle(["a", "b", "c"][: "abc".index(member) + 1])
    before = dict(h.owned)
    assert sorted(len(p) for p in before.values()) == [2, 2, 2]
    left = h.core.heartbeat(HeartbeatRequest("g", "a", h.epochs["a"]))
    assert left.error is ErrorCode.NONE  # epoch not -1 yet: a plain heartbeat
    left = h.core.heartbeat(HeartbeatRequest("g", "a", -1))
    assert (left.error, left.member_epoch) == (ErrorCode.NONE, -1)
    del h.owned["a"]
    h.settle(["b", "c"])
    for member in "bc":
        assert before[member] <= h.owned[member]
        assert len(h.owned[member]) == 3


def test_session_timeout_removes_a_silent_member() -> None:
    h = Harness()
    h.join("a")
    h.join("b")
    h.settle(["a", "b"])
    for _ in range(4):
        h.timers.advance(SESSION_MS / 1000 / 5)
        h.beat("b")
    assert "a" in h.group.members  # still within its session
    del h.owned["a"]  # the client is gone (SIGKILL): its view no longer counts
    h.timers.advance(SESSION_MS / 1000 / 5 + 0.01)
    assert "a" not in h.group.members
    h.settle(["b"])
    assert h.owned["b"] == {("t", p) for p in range(6)}
    assert h.beat("a", epoch=h.epochs["a"]).error is ErrorCode.UNKNOWN_MEMBER_ID


def test_a_member_that_does_not_revoke_in_time_is_removed() -> None:
    h = Harness()
    h.join("a", rebalance_timeout_ms=2000)
    h.join("b")
    h.beat("a", ack=False)  # told to revoke; never acknowledges
    assert h.group.members["a"].state is MemberState.UNREVOKED_PARTITIONS
    h.timers.advance(1.0)
    h.beat("a", ack=False)
    assert "a" in h.group.members
    h.timers.advance(1.1)
    assert "a" not in h.group.members
    del h.owned["a"]
    h.settle(["b"])
    assert h.owned["b"] == {("t", p) for p in range(6)}


def test_the_previous_epoch_is_accepted_when_the_answer_was_lost() -> None:
    h = Harness()
    h.join("a")
    h.join("b")
    h.beat("a", ack=False)
    h.beat("a")  # moves a to epoch 2; pretend the answer was lost
    lost_epoch = 1
    again = h.core.heartbeat(HeartbeatRequest("g", "a", lost_epoch, owned=h.owned["a"]))
    assert (again.error, again.member_epoch) == (ErrorCode.NONE, 2)
    # Without owned partitions to prove it, an old epoch is fenced.
    fenced = h.core.heartbeat(HeartbeatRequest("g", "a", lost_epoch))
    assert fenced.error is ErrorCode.FENCED_MEMBER_EPOCH


def test_rejoining_with_epoch_zero_after_being_fenced_starts_afresh() -> None:
    h = Harness()
    h.join("a")
    h.join("b")
    h.settle(["a", "b"])
    assert h.beat("a", epoch=99).error is ErrorCode.FENCED_MEMBER_EPOCH
    del h.owned["a"]  # the client gives up its partitions
    h.join("a")
    h.settle(["a", "b"])
    assert sorted(len(p) for p in h.owned.values()) == [3, 3]


def test_more_partitions_or_a_new_subscription_bump_the_group_epoch() -> None:
    h = Harness()
    h.join("a")
    epoch = h.group.epoch
    h.counts["t"] = 8
    h.settle(["a"])
    assert h.group.epoch == epoch + 1
    assert h.owned["a"] == {("t", p) for p in range(8)}
    changed = h.core.heartbeat(
        HeartbeatRequest("g", "a", h.epochs["a"], subscribed_topic_names=("t", "u"))
    )
    h._apply("a", changed)
    h.settle(["a"])
    assert h.owned["a"] == {("t", p) for p in range(8)} | {("u", p) for p in range(3)}


def test_regex_subscriptions_follow_new_topics() -> None:
    h = Harness()
    result = h.core.heartbeat(
        HeartbeatRequest(
            "g", "a", 0, rebalance_timeout_ms=1000, subscribed_topic_regex="u.*", owned=frozenset()
        )
    )
    h._apply("a", result)
    assert h.owned["a"] == {("u", p) for p in range(3)}
    h.counts["u2"] = 1
    h.settle(["a"])
    assert ("u2", 0) in h.owned["a"]
    bad = h.core.heartbeat(
        HeartbeatRequest(
            "g", "b", 0, rebalance_timeout_ms=1000, subscribed_topic_regex="(", owned=frozenset()
        )
    )
    assert bad.error is ErrorCode.INVALID_REGULAR_EXPRESSION


def test_static_member_returns_to_its_partitions_without_a_rebalance() -> None:
    h = Harness()
    h.join("a", instance_id="ia")
    h.join("b", instance_id="ib")
    h.settle(["a", "b"])
    epoch, before = h.group.epoch, h.owned["a"]
    away = h.core.heartbeat(HeartbeatRequest("g", "a", -2, instance_id="ia"))
    assert away.member_epoch == -2
    del h.owned["a"]
    h.timers.advance(SESSION_MS / 1000 / 2)
    h.settle(["b"])
    back = h.join("a2", instance_id="ia")
    assert back.assignment == before and h.group.epoch == epoch
    # Past the session timeout the static member is gone and its partitions move.
    away = h.core.heartbeat(HeartbeatRequest("g", "a2", -2, instance_id="ia"))
    del h.owned["a2"]
    for _ in range(4):
        h.timers.advance(SESSION_MS / 1000 / 3)
        h.settle(["b"], rounds=1)
    assert h.owned["b"] == {("t", p) for p in range(6)}


def test_offset_commit_and_fetch_checks() -> None:
    h = Harness()
    h.join("a")
    epoch = h.epochs["a"]
    mine = [("t", 0)]
    assert h.core.commit_errors("g", "a", epoch, mine) == {}
    assert h.core.commit_errors("g", "a", epoch + 1, mine) == {
        ("t", 0): ErrorCode.STALE_MEMBER_EPOCH
    }
    assert h.core.commit_errors("g", "zz", epoch, mine) == {("t", 0): ErrorCode.UNKNOWN_MEMBER_ID}
    assert h.core.commit_errors("g", "", -1, mine) == {("t", 0): ErrorCode.UNKNOWN_MEMBER_ID}
    assert h.core.fetch_error("g", None, -1) is None
    assert h.core.fetch_error("g", "a", epoch + 1) is ErrorCode.STALE_MEMBER_EPOCH
    h.core.heartbeat(HeartbeatRequest("g", "a", -1))
    assert h.core.commit_errors("g", "", -1, mine) == {}


def test_a_commit_with_the_previous_epoch_is_accepted_for_partitions_held_since() -> None:
    h = Harness()
    h.join("a")
    old_epoch = h.epochs["a"]
    h.join("b")
    h.beat("a", ack=False)
    h.beat("a")  # a moves to the new epoch, keeping three partitions, given at the old one
    h.settle(["a", "b"])
    kept, moved = sorted(h.owned["a"]), sorted(h.owned["b"])
    assert h.epochs["a"] > old_epoch
    # a's commit was sent before it heard of its new epoch: fine for what it still holds...
    assert h.core.commit_errors("g", "a", old_epoch, kept) == {}
    # ...not for what b holds now, nor for b committing with an epoch before b got them.
    assert h.core.commit_errors("g", "a", old_epoch, moved[:1]) == {
        moved[0]: ErrorCode.STALE_MEMBER_EPOCH
    }
    assert h.core.commit_errors("g", "b", h.epochs["b"] - 1, moved[:1]) == {
        moved[0]: ErrorCode.STALE_MEMBER_EPOCH
    }


def test_group_size_is_bounded() -> None:
    h = Harness()
    h.core.config = GroupConfig(max_group_size=3)
    for member in "abc":
        h.join(member)
    full = h.core.heartbeat(
        HeartbeatRequest(
            "g", "d", 0, rebalance_timeout_ms=1, subscribed_topic_names=("t",), owned=frozenset()
        )
    )
    assert full.error is ErrorCode.GROUP_MAX_SIZE_REACHED


# ---------------------------------------------------------------- assignors


def test_range_gives_contiguous_ranges_per_topic() -> None:
    subs = {m: frozenset({"t", "u"}) for m in ("m1", "m2", "m3")}
    target = range_(subs, {"t": 7, "u": 3}, {})
    assert target["m1"] == {("t", 0), ("t", 1), ("t", 2), ("u", 0)}
    assert target["m2"] == {("t", 3), ("t", 4), ("u", 1)}
    assert target["m3"] == {("t", 5), ("t", 6), ("u", 2)}


def test_range_puts_static_members_first_by_instance_id() -> None:
    subs = {m: frozenset({"t"}) for m in ("m1", "m2", "m3")}
    target = range_(subs, {"t": 3}, {}, {"m1": None, "m2": "z", "m3": "a"})
    assert (target["m3"], target["m2"], target["m1"]) == ({("t", 0)}, {("t", 1)}, {("t", 2)})


def test_uniform_is_sticky() -> None:
    subs = {m: frozenset({"t"}) for m in ("a", "b", "c")}
    before = uniform(subs, {"t": 6}, {})
    del subs["a"]
    after = uniform(subs, {"t": 6}, before)
    assert before["b"] <= after["b"] and before["c"] <= after["c"]
    subs["d"] = frozenset({"t"})
    again = uniform(subs, {"t": 6}, after)
    assert again["b"] <= after["b"] and again["c"] <= after["c"]
    assert sorted(len(p) for p in again.values()) == [2, 2, 2]


def test_choose_assignor_follows_the_majority() -> None:
    assert choose_assignor([None, None]) == "uniform"
    assert choose_assignor(["range", None]) == "range"
    assert choose_assignor(["range", "uniform", "uniform"]) == "uniform"
    assert choose_assignor(["range", "uniform"]) == "uniform"


subscriptions = st.dictionaries(
    st.sampled_from([f"m{i}" for i in range(8)]),
    st.frozensets(st.sampled_from(["t", "u", "v"]), min_size=1),
    min_size=1,
)


@pytest.mark.parametrize("assignor", [uniform, range_])
@settings(max_examples=150, deadline=None)
@given(subs=subscriptions, counts=st.tuples(*[st.integers(0, 9)] * 3))
def test_assignors_assign_each_subscribed_partition_once(assignor, subs, counts) -> None:  # type: ignore[no-untyped-def]
    partition_counts = dict(zip(["t", "u", "v"], counts, strict=True))
    target = assignor(subs, partition_counts, {})
    assigned = list(itertools.chain.from_iterable(target.values()))
    wanted = {
        (t, p) for topics in subs.values() for t in topics for p in range(partition_counts[t])
    }
    assert sorted(assigned) == sorted(wanted)
    for member, parts in target.items():
        assert all(t in subs[member] for t, _ in parts)
    if assignor is uniform and len({frozenset(s) for s in subs.values()}) == 1:
        sizes = [len(p) for p in target.values()]
        assert max(sizes) - min(sizes) <= 1


def test_an_empty_group_is_forgotten_after_the_retention_and_a_closed_core_refuses() -> None:
    h = Harness()
    h.join("a")
    h.core.heartbeat(HeartbeatRequest("g", "a", -1))
    del h.owned["a"]
    assert h.core.describe("g").state == "Empty"
    h.timers.advance(h.core.config.empty_group_retention_ms / 1000 + 1)
    assert not h.core.owns("g")
    assert h.core.describe("g").error is ErrorCode.GROUP_ID_NOT_FOUND
    h.join("b")
    h.core.close()
    refused = h.core.heartbeat(HeartbeatRequest("g", "b", 1))
    assert refused.error is ErrorCode.COORDINATOR_NOT_AVAILABLE


@pytest.mark.parametrize(
    "pattern",
    ["orders\\..*", "^(audit|metrics)-[a-z]+$", "t|u", "[a-z0-9._-]{1,40}", "(?:a.)?b*"],
)
def test_ordinary_subscription_regexes_are_served(pattern: str) -> None:
    assert regex_error(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("(a+)+b", "nested repetition"),
        ("(a|aa)*c", "alternation inside a repetition"),
        ("a*a*a*a*b", "more than 3 repetitions"),
        ("(a)\\1", "backreferences"),
        ("(?=a)a", "lookarounds"),
        ("(", "missing )"),
        ("a{4294967296}", "too large"),
    ],
)
def test_regexes_that_could_stall_the_loop_are_refused(pattern: str, why: str) -> None:
    error = regex_error(pattern)
    assert error is not None and why in error


def test_deeply_nested_regexes_are_judged_without_crashing() -> None:
    assert regex_error("(" * 499 + ")" * 499) is not None  # refused (too deep), not raised
    assert regex_error("(?:" * 100 + "a" + ")" * 100) is None


def test_a_refused_regex_is_invalid_regular_expression_and_matching_is_whole_name() -> None:
    h = Harness()
    refused = h.core.heartbeat(
        HeartbeatRequest(
            "g", "a", 0, rebalance_timeout_ms=1, subscribed_topic_regex="(t+)+", owned=frozenset()
        )
    )
    assert refused.error is ErrorCode.INVALID_REGULAR_EXPRESSION
    assert refused.message is not None and "nested repetition" in refused.message
    h.counts["tt"] = 1
    matcher = TopicMatcher("t")
    assert matcher.matches("t") and not matcher.matches("tt")


def test_a_static_member_rejoining_mid_revocation_frees_what_it_was_revoking() -> None:
    h = Harness()
    h.join("a", instance_id="ia")
    h.join("b")
    shrink = h.beat("a", ack=False)  # a must revoke three partitions...
    assert shrink.assignment is not None and len(shrink.assignment) == 3
    assert h.beat("a", epoch=99).error is ErrorCode.FENCED_MEMBER_EPOCH  # ...but is fenced
    del h.owned["a"]  # and gives up everything, then rejoins with epoch 0 and its instance id
    back = h.join("a", instance_id="ia")
    assert back.assignment == shrink.assignment
    h.settle(["a", "b"])
    assert sorted(len(p) for p in h.owned.values()) == [3, 3]


def test_a_member_id_keeps_its_instance_id() -> None:
    h = Harness()
    h.join("a", instance_id="ia")
    h.join("d")
    for member, instance in (("a", "other"), ("a", None), ("d", "id")):
        changed = h.core.heartbeat(
            HeartbeatRequest(
                "g",
                member,
                0,
                instance_id=instance,
                rebalance_timeout_ms=1000,
                subscribed_topic_names=("t",),
                owned=frozenset(),
            )
        )
        assert changed.error is ErrorCode.INVALID_REQUEST
