"""GroupCoordinator flows, driven with a manual clock: joins, syncs, fencing, timeouts, storms."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from firth.broker.groups import (
    ErrorCode,
    GroupConfig,
    GroupCoordinator,
    GroupState,
    JoinRequest,
    JoinResult,
    ManualTimers,
    SyncResult,
)

SESSION_MS = 10_000
REBALANCE_MS = 30_000
DELAY_MS = 100  # initial rebalance delay: joins started together share one generation


class Harness:
    def __init__(self, tmp: Path, **config: Any) -> None:
        config.setdefault("initial_rebalance_delay_ms", DELAY_MS)
        config.setdefault("fsync", False)
        self.timers = ManualTimers()
        self.known_partitions: set[tuple[str, int]] | None = None
        self.coordinator = GroupCoordinator.open(
            tmp, GroupConfig(**config), timers=self.timers, partition_exists=self._exists
        )

    def _exists(self, topic: str, partition: int) -> bool:
        return self.known_partitions is None or (topic, partition) in self.known_partitions

    def join(
        self,
        group: str = "g",
        member_id: str = "",
        *,
        instance: str | None = None,
        protocols: list[tuple[str, bytes]] | None = None,
        protocol_type: str = "consumer",
        session_ms: int = SESSION_MS,
        rebalance_ms: int = REBALANCE_MS,
        require_known: bool = False,
        client_id: str = "client",
    ) -> asyncio.Task[JoinResult]:
        return asyncio.ensure_future(
            self.coordinator.join(
                JoinRequest(
                    group_id=group,
                    member_id=member_id,
                    group_instance_id=instance,
                    client_id=client_id,
                    client_host="/127.0.0.1",
                    session_timeout_ms=session_ms,
                    rebalance_timeout_ms=rebalance_ms,
                    protocol_type=protocol_type,
                    protocols=protocols
                    if protocols is not None
                    else [("range", b"meta-" + client_id.encode())],
                    require_known_member_id=require_known,
                )
            )
        )

    def sync(
        self,
        member_id: str,
        generation: int,
        assignments: dict[str, bytes] | None = None,
        group: str = "g",
        instance: str | None = None,
    ) -> asyncio.Task[SyncResult]:
        return asyncio.ensure_future(
            self.coordinator.sync(group, generation, member_id, instance, assignments or {})
        )

    def advance(self, seconds: float) -> None:
        self.timers.advance(seconds)

    async def complete(self, *tasks: asyncio.Future[Any]) -> list[Any]:
        """Let the tasks run past a new group's initial delay; their results."""
        await settle()
        for _ in range(10):  # each delay with new arrivals extends the wait by one more
            if all(t.done() for t in tasks):
                break
            self.advance(DELAY_MS / 1000)
            await settle()
        return [t.result() for t in tasks]

    def state(self, group: str = "g") -> GroupState | None:
        found = self.coordinator.group(group)
        return found.state if found else None


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def run(tmp_path: Path, scenario: Callable[[Harness], Awaitable[None]], **config: Any) -> None:
    async def main() -> None:
        harness = Harness(tmp_path, **config)
        try:
            await scenario(harness)
        finally:
            await harness.coordinator.close()

    asyncio.run(main())


async def form_group(h: Harness, count: int, group: str = "g") -> list[JoinResult]:
    """`count` members join and sync; returns their join results (leader first)."""
    results = await h.complete(*[h.join(group, client_id=f"c{i}") for i in range(count)])
    leader = next(r for r in results if r.member_id == r.leader)
    assignments = {r.member_id: f"assign-{r.member_id}".encode() for r in results}
    syncs = [
        h.sync(r.member_id, r.generation, assignments if r is leader else None, group=group)
        for r in results
    ]
    await settle()
    for r, s in zip(results, syncs, strict=True):
        assert s.result().assignment == f"assign-{r.member_id}".encode()
    return sorted(results, key=lambda r: r.member_id != r.leader)


def scenario(**config: Any) -> Callable[..., Callable[[Path], None]]:
    """Turn `async def test_x(h)` into a pytest test running it on a fresh harness."""

    def wrap(fn: Callable[[Harness], Coroutine[Any, Any, None]]) -> Callable[[Path], None]:
        def test(tmp_path: Path) -> None:
            run(tmp_path, fn, **config)

        test.__name__ = fn.__name__
        test.__doc__ = fn.__doc__
        return test

    return wrap


# ---------------------------------------------------------------- join and sync


@scenario()
async def test_two_step_join_then_sync_makes_the_group_stable(h: Harness) -> None:
    first = await h.join(require_known=True)
    assert first.error is ErrorCode.MEMBER_ID_REQUIRED
    assert first.member_id.startswith("client-")
    assert h.state() is GroupState.EMPTY
    (result,) = await h.complete(h.join(member_id=first.member_id, require_known=True))
    assert result.error is ErrorCode.NONE
    assert (result.generation, result.leader, result.member_id) == (
        1,
        first.member_id,
        first.member_id,
    )
    assert result.protocol_name == "range" and result.protocol_type == "consumer"
    assert [(m.member_id, m.metadata) for m in result.members] == [
        (first.member_id, b"meta-client")
    ]
    assert h.state() is GroupState.COMPLETING_REBALANCE
    synced = await h.sync(result.member_id, 1, {result.member_id: b"\x00\x01assignment"})
    assert synced.error is ErrorCode.NONE and synced.assignment == b"\x00\x01assignment"
    assert h.state() is GroupState.STABLE


@scenario()
async def test_three_members_leader_gets_all_metadata_followers_get_their_bytes(h: Harness) -> None:
    results = await form_group(h, 3)
    leader, *followers = results
    assert {r.generation for r in results} == {1}
    assert {r.leader for r in results} == {leader.member_id}
    assert sorted(m.metadata for m in leader.members) == [b"meta-c0", b"meta-c1", b"meta-c2"]
    assert all(f.members == [] for f in followers)
    assert h.state() is GroupState.STABLE


@scenario(initial_rebalance_delay_ms=300)
async def test_initial_delay_gathers_members_into_one_generation(h: Harness) -> None:
    a = h.join(client_id="a")
    await settle()
    h.advance(0.2)
    b = h.join(client_id="b")  # arrives within the delay: extends it
    await settle()
    h.advance(0.2)
    await settle()
    assert not a.done() and not b.done()
    h.advance(0.2)
    await settle()
    assert a.result().generation == b.result().generation == 1
    assert len(a.result().members or b.result().members) == 2


@scenario()
async def test_protocol_is_chosen_by_vote_among_common_ones(h: Harness) -> None:
    results = await h.complete(
        h.join(client_id="a", protocols=[("range", b"a"), ("roundrobin", b"a2")]),
        h.join(client_id="b", protocols=[("roundrobin", b"b"), ("range", b"b2")]),
        h.join(client_id="c", protocols=[("roundrobin", b"c"), ("sticky", b"c2")]),
    )
    assert {r.protocol_name for r in results} == {"roundrobin"}
    leader = next(r for r in results if r.members)
    # The leader receives each member's metadata for the chosen protocol.
    assert sorted(m.metadata for m in leader.members) == [b"a2", b"b", b"c"]


@scenario()
async def test_inconsistent_protocols_are_refused(h: Harness) -> None:
    await form_group(h, 1)
    other = await h.join(client_id="x", protocols=[("sticky", b"")])
    assert other.error is ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    other_type = await h.join(client_id="y", protocol_type="connect")
    assert other_type.error is ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    empty = await h.join("g2", protocols=[])
    assert empty.error is ErrorCode.INCONSISTENT_GROUP_PROTOCOL


@scenario()
async def test_follower_rejoining_unchanged_gets_current_generation_without_rebalance(
    h: Harness,
) -> None:
    _leader, follower = await form_group(h, 2)
    again = await h.join(member_id=follower.member_id, client_id="c1")
    assert again.error is ErrorCode.NONE and again.generation == 1 and again.members == []
    assert h.state() is GroupState.STABLE


@scenario()
async def test_leader_rejoining_starts_a_rebalance(h: Harness) -> None:
    leader, follower = await form_group(h, 2)
    task = h.join(member_id=leader.member_id, client_id="c0")
    await settle()
    assert h.state() is GroupState.PREPARING_REBALANCE
    assert (
        h.coordinator.heartbeat("g", 1, follower.member_id, None) is ErrorCode.REBALANCE_IN_PROGRESS
    )
    rejoin = h.join(member_id=follower.member_id, client_id="c1")
    await settle()
    assert task.result().generation == rejoin.result().generation == 2


@scenario()
async def test_changed_metadata_in_completing_rebalance_restarts_the_join(h: Harness) -> None:
    ra, rb = await h.complete(h.join(client_id="a"), h.join(client_id="b"))
    leader, follower = (ra, rb) if ra.member_id == ra.leader else (rb, ra)
    follower_sync = h.sync(follower.member_id, 1)
    await settle()
    assert not follower_sync.done()
    # A join with the same metadata just repeats the answer.
    repeat = await h.join(member_id=leader.member_id, client_id="a" if leader is ra else "b")
    assert repeat.generation == 1 and len(repeat.members) == 2
    changed = h.join(member_id=follower.member_id, protocols=[("range", b"new")])
    await settle()
    assert follower_sync.result().error is ErrorCode.REBALANCE_IN_PROGRESS
    assert h.state() is GroupState.PREPARING_REBALANCE
    assert not changed.done()


# ---------------------------------------------------------------- fencing


@scenario()
async def test_stale_generation_and_unknown_members_are_fenced(h: Harness) -> None:
    leader, follower = await form_group(h, 2)
    # A third member forces generation 2.
    newcomer = h.join(client_id="c2")
    await settle()
    rejoins = [
        h.join(member_id=leader.member_id, client_id="c0"),
        h.join(member_id=follower.member_id, client_id="c1"),
    ]
    await settle()
    gen2 = [t.result() for t in [newcomer, *rejoins]]
    assert {r.generation for r in gen2} == {2}
    c = h.coordinator
    # During CompletingRebalance a commit is told to wait, whatever its generation.
    early = await c.commit_offsets("g", 2, follower.member_id, None, {("t", 0): (5, "")})
    assert early == {("t", 0): ErrorCode.REBALANCE_IN_PROGRESS}
    leader2 = next(r for r in gen2 if r.members)
    for r in gen2:
        h.sync(r.member_id, 2, {} if r is leader2 else None)
    await settle()
    assert h.state() is GroupState.STABLE
    assert c.heartbeat("g", 1, follower.member_id, None) is ErrorCode.ILLEGAL_GENERATION
    stale_sync = await h.sync(follower.member_id, 1)
    assert stale_sync.error is ErrorCode.ILLEGAL_GENERATION
    stale_commit = await c.commit_offsets("g", 1, follower.member_id, None, {("t", 0): (5, "")})
    assert stale_commit == {("t", 0): ErrorCode.ILLEGAL_GENERATION}
    assert c.heartbeat("g", 2, "ghost", None) is ErrorCode.UNKNOWN_MEMBER_ID
    assert (await h.sync("ghost", 2)).error is ErrorCode.UNKNOWN_MEMBER_ID
    assert (await h.join(member_id="ghost")).error is ErrorCode.UNKNOWN_MEMBER_ID
    assert c.heartbeat("nope", 1, "ghost", None) is ErrorCode.UNKNOWN_MEMBER_ID
    ok = await c.commit_offsets("g", 2, follower.member_id, None, {("t", 0): (5, "")})
    assert ok == {("t", 0): ErrorCode.NONE}


# ---------------------------------------------------------------- timeouts


@scenario()
async def test_session_expiry_removes_the_member_and_rebalances(h: Harness) -> None:
    leader, follower = await form_group(h, 2)
    for _ in range(4):  # the leader keeps heartbeating, the follower is silent
        h.advance(SESSION_MS / 1000 / 4)
        assert h.coordinator.heartbeat("g", 1, leader.member_id, None) in (
            ErrorCode.NONE,
            ErrorCode.REBALANCE_IN_PROGRESS,
        )
    h.advance(0.001)
    assert h.state() is GroupState.PREPARING_REBALANCE
    assert follower.member_id not in h.coordinator.group("g").members  # type: ignore[union-attr]
    rejoin = await h.join(member_id=leader.member_id, client_id="c0")
    assert rejoin.generation == 2 and [m.member_id for m in rejoin.members] == [leader.member_id]


@scenario()
async def test_heartbeats_keep_members_alive_indefinitely(h: Harness) -> None:
    members = await form_group(h, 2)
    for _ in range(20):
        h.advance(SESSION_MS / 1000 / 2)
        for m in members:
            assert h.coordinator.heartbeat("g", 1, m.member_id, None) is ErrorCode.NONE
    assert h.state() is GroupState.STABLE


@scenario()
async def test_rebalance_timeout_removes_members_that_do_not_rejoin(h: Harness) -> None:
    leader, follower = await form_group(h, 2)
    task = h.join(member_id=leader.member_id, client_id="c0")
    await settle()
    # The follower keeps heartbeating (told to rejoin) but never rejoins.
    for _ in range(int(REBALANCE_MS / 1000 / 5)):
        h.advance(5)
        h.coordinator.heartbeat("g", 1, follower.member_id, None)
        await settle()
        if task.done():
            break
    result = task.result()
    assert result.generation == 2 and [m.member_id for m in result.members] == [leader.member_id]
    assert h.coordinator.heartbeat("g", 2, follower.member_id, None) is ErrorCode.UNKNOWN_MEMBER_ID


@scenario()
async def test_leader_that_never_syncs_is_removed_after_the_rebalance_timeout(h: Harness) -> None:
    ra, rb = await h.complete(h.join(client_id="a"), h.join(client_id="b"))
    leader, follower = (ra, rb) if ra.member_id == ra.leader else (rb, ra)
    waiting = h.sync(follower.member_id, 1)
    await settle()
    # The leader is alive (it heartbeats) but never sends its SyncGroup.
    for _ in range(REBALANCE_MS // 5000 - 1):
        h.advance(5)
        assert h.coordinator.heartbeat("g", 1, leader.member_id, None) is ErrorCode.NONE
    assert not waiting.done()
    h.advance(5.001)
    await settle()
    assert waiting.result().error is ErrorCode.REBALANCE_IN_PROGRESS
    assert list(h.coordinator.group("g").members) == [follower.member_id]  # type: ignore[union-attr]


@scenario()
async def test_unused_member_id_lapses_after_the_session_timeout(h: Harness) -> None:
    first = await h.join(require_known=True)
    assert first.error is ErrorCode.MEMBER_ID_REQUIRED
    assert h.coordinator.group("g").size == 1  # type: ignore[union-attr]
    h.advance(SESSION_MS / 1000 + 0.001)
    late = await h.join(member_id=first.member_id, require_known=True)
    assert late.error is ErrorCode.UNKNOWN_MEMBER_ID


# ---------------------------------------------------------------- leave


@scenario()
async def test_leave_rebalances_and_the_last_leave_empties_the_group(h: Harness) -> None:
    leader, follower = await form_group(h, 2)
    result = h.coordinator.leave("g", [(follower.member_id, None), ("ghost", None)])
    assert [m.error for m in result.members] == [ErrorCode.NONE, ErrorCode.UNKNOWN_MEMBER_ID]
    assert h.state() is GroupState.PREPARING_REBALANCE
    rejoin = await h.join(member_id=leader.member_id, client_id="c0")
    assert rejoin.generation == 2
    await h.sync(leader.member_id, 2, {leader.member_id: b"all"})
    h.coordinator.leave("g", [(leader.member_id, None)])
    assert h.state() is GroupState.EMPTY
    assert h.coordinator.group("g").generation == 3  # type: ignore[union-attr]
    unknown_group = h.coordinator.leave("nope", [("m", None)])
    assert [m.error for m in unknown_group.members] == [ErrorCode.UNKNOWN_MEMBER_ID]


@scenario()
async def test_member_leaving_while_others_wait_in_join_completes_the_join(h: Harness) -> None:
    leader, follower = await form_group(h, 2)
    task = h.join(member_id=leader.member_id, client_id="c0")
    await settle()
    assert not task.done()
    h.coordinator.leave("g", [(follower.member_id, None)])
    await settle()
    assert task.result().generation == 2


# ---------------------------------------------------------------- static membership


@scenario()
async def test_static_member_restart_gets_its_assignment_back_without_rebalance(h: Harness) -> None:
    results = await h.complete(*[h.join(instance=f"i{i}", client_id=f"c{i}") for i in range(3)])
    leader = next(r for r in results if r.members)
    assignments = {r.member_id: f"parts-{i}".encode() for i, r in enumerate(results)}
    syncs = [
        h.sync(r.member_id, 1, assignments if r is leader else None, instance=f"i{i}")
        for i, r in enumerate(results)
    ]
    await settle()
    assert all(s.result().error is ErrorCode.NONE for s in syncs)
    old = results[1]
    # Instance i1 restarts: a fresh process, no member id, same instance id.
    restarted = await h.join(instance="i1", client_id="c1")
    assert restarted.error is ErrorCode.NONE
    assert restarted.member_id != old.member_id
    assert restarted.generation == 1 and restarted.members == []
    assert h.state() is GroupState.STABLE
    back = await h.sync(restarted.member_id, 1, instance="i1")
    assert back.assignment == b"parts-1"
    # Nobody else noticed.
    for i, r in enumerate(results):
        if i != 1:
            assert h.coordinator.heartbeat("g", 1, r.member_id, f"i{i}") is ErrorCode.NONE
    # The old incarnation is fenced everywhere.
    c = h.coordinator
    assert c.heartbeat("g", 1, old.member_id, "i1") is ErrorCode.FENCED_INSTANCE_ID
    assert (await h.sync(old.member_id, 1, instance="i1")).error is ErrorCode.FENCED_INSTANCE_ID
    fenced_join = await h.join(member_id=old.member_id, instance="i1", client_id="c1")
    assert fenced_join.error is ErrorCode.FENCED_INSTANCE_ID
    commit = await c.commit_offsets("g", 1, old.member_id, "i1", {("t", 0): (1, None)})
    assert commit == {("t", 0): ErrorCode.FENCED_INSTANCE_ID}


@scenario()
async def test_restarted_static_leader_is_told_the_previous_leader_id(h: Harness) -> None:
    results = await h.complete(*[h.join(instance=f"i{i}", client_id=f"c{i}") for i in range(2)])
    leader_index = next(i for i, r in enumerate(results) if r.members)
    leader = results[leader_index]
    assignments = {r.member_id: b"x" for r in results}
    for i, r in enumerate(results):
        h.sync(r.member_id, 1, assignments if r is leader else None, instance=f"i{i}")
    await settle()
    restarted = await h.join(instance=f"i{leader_index}", client_id="again")
    assert restarted.leader == leader.member_id != restarted.member_id
    assert h.coordinator.group("g").leader_id == restarted.member_id  # type: ignore[union-attr]


@scenario()
async def test_static_member_whose_protocol_change_alters_the_choice_triggers_rebalance(
    h: Harness,
) -> None:
    (result,) = await h.complete(
        h.join(instance="i0", protocols=[("range", b""), ("roundrobin", b"")])
    )
    await h.sync(result.member_id, 1, {result.member_id: b""}, instance="i0")
    assert result.protocol_name == "range"
    task = h.join(instance="i0", protocols=[("roundrobin", b"")])
    await settle()
    assert task.result().generation == 2 and task.result().protocol_name == "roundrobin"


@scenario()
async def test_static_member_expires_with_its_session(h: Harness) -> None:
    (result,) = await h.complete(h.join(instance="i9", client_id="s"))
    await h.sync(result.member_id, 1, {result.member_id: b"a"}, instance="i9")
    h.advance(SESSION_MS / 1000 - 0.01)
    assert h.state() is GroupState.STABLE
    h.advance(0.02)
    assert "i9" not in h.coordinator.group("g").static_members  # type: ignore[union-attr]
    assert h.state() is GroupState.EMPTY


@scenario()
async def test_leave_by_instance_id(h: Harness) -> None:
    (result,) = await h.complete(h.join(instance="i0"))
    await h.sync(result.member_id, 1, {result.member_id: b""}, instance="i0")
    wrong = h.coordinator.leave("g", [("other-id", "i0")])
    assert wrong.members[0].error is ErrorCode.FENCED_INSTANCE_ID
    right = h.coordinator.leave("g", [("", "i0")])
    assert right.members[0].error is ErrorCode.NONE
    assert h.state() is GroupState.EMPTY


# ---------------------------------------------------------------- cooperative


@scenario()
async def test_cooperative_double_rejoin(h: Harness) -> None:
    """Incremental rebalancing: a member joins, the owners revoke and rejoin at once."""
    a, b = await form_group(h, 2)
    c_task = h.join(client_id="c2", protocols=[("cooperative-sticky", b"c-owned:none")])
    await settle()
    # (the first two members' protocol is range here; use a group of cooperative members)
    assert c_task.result().error is ErrorCode.INCONSISTENT_GROUP_PROTOCOL

    coop = "coop"
    r1 = await h.complete(
        *[
            h.join(coop, client_id=n, protocols=[("cooperative-sticky", f"{n}:owned=".encode())])
            for n in ("a", "b")
        ]
    )
    leader = next(r for r in r1 if r.members)
    ids = [r.member_id for r in r1]
    for r in r1:
        h.sync(r.member_id, 1, {ids[0]: b"p0,p1", ids[1]: b"p2,p3"} if r is leader else None, coop)
    await settle()
    # A third member arrives: rebalance 2; the survivors rejoin reporting what they own.
    third = h.join(coop, client_id="c", protocols=[("cooperative-sticky", b"c:owned=")])
    await settle()
    again = [
        h.join(coop, ids[0], protocols=[("cooperative-sticky", b"a:owned=p0,p1")]),
        h.join(coop, ids[1], protocols=[("cooperative-sticky", b"b:owned=p2,p3")]),
    ]
    await settle()
    r2 = [t.result() for t in [*again, third]]
    assert {r.generation for r in r2} == {2}
    leader2 = next(r for r in r2 if r.members)
    assert sorted(m.metadata for m in leader2.members) == [
        b"a:owned=p0,p1",
        b"b:owned=p2,p3",
        b"c:owned=",
    ]
    # The leader revokes p1 from a (gives nobody p1 yet): first phase.
    plan2 = {ids[0]: b"p0", ids[1]: b"p2,p3", r2[2].member_id: b""}
    syncs = [h.sync(r.member_id, 2, plan2 if r is leader2 else None, coop) for r in r2]
    await settle()
    assert [s.result().assignment for s in syncs] == [b"p0", b"p2,p3", b""]
    # a revoked p1 and rejoins immediately with changed metadata: rebalance 3.
    revoked = h.join(coop, ids[0], protocols=[("cooperative-sticky", b"a:owned=p0")])
    await settle()
    assert h.state(coop) is GroupState.PREPARING_REBALANCE
    others = [
        h.join(coop, ids[1], protocols=[("cooperative-sticky", b"b:owned=p2,p3")]),
        h.join(coop, r2[2].member_id, protocols=[("cooperative-sticky", b"c:owned=")]),
    ]
    await settle()
    r3 = [t.result() for t in [revoked, *others]]
    assert {r.generation for r in r3} == {3}
    leader3 = next(r for r in r3 if r.members)
    plan3 = {ids[0]: b"p0", ids[1]: b"p2,p3", r2[2].member_id: b"p1"}
    syncs3 = [h.sync(r.member_id, 3, plan3 if r is leader3 else None, coop) for r in r3]
    await settle()
    assert [s.result().assignment for s in syncs3] == [b"p0", b"p2,p3", b"p1"]
    assert h.state(coop) is GroupState.STABLE
    assert a.member_id and b.member_id  # the range group is untouched
    assert h.state() is GroupState.STABLE


# ---------------------------------------------------------------- limits and storms


@scenario()
async def test_join_storm_of_200_members_forms_one_generation(h: Harness) -> None:
    firsts = [h.join(client_id=f"m{i}", require_known=True) for i in range(200)]
    await settle()
    ids = [t.result().member_id for t in firsts]
    assert all(t.result().error is ErrorCode.MEMBER_ID_REQUIRED for t in firsts)
    results = await h.complete(
        *[h.join(member_id=m, require_known=True, client_id="m") for m in ids]
    )
    assert {r.error for r in results} == {ErrorCode.NONE}
    assert {r.generation for r in results} == {1}
    leader = next(r for r in results if r.members)
    assert len(leader.members) == 200
    assignments = {m: m.encode() for m in ids}
    syncs = [h.sync(r.member_id, 1, assignments if r is leader else None) for r in results]
    await settle()
    assert all(s.result().assignment == s_id.encode() for s, s_id in zip(syncs, ids, strict=True))


@scenario(max_group_size=50)
async def test_group_max_size_bounds_members_and_outstanding_ids(h: Harness) -> None:
    firsts = [h.join(client_id=f"m{i}", require_known=True) for i in range(60)]
    await settle()
    errors = [t.result().error for t in firsts]
    assert errors.count(ErrorCode.MEMBER_ID_REQUIRED) == 50
    assert errors.count(ErrorCode.GROUP_MAX_SIZE_REACHED) == 10
    assert h.coordinator.group("g").size == 50  # type: ignore[union-attr]


@scenario()
async def test_group_id_limits(h: Harness) -> None:
    long_id = "g" * 10_000
    (result,) = await h.complete(h.join(long_id))
    assert result.error is ErrorCode.NONE
    commit = await h.coordinator.commit_offsets(
        long_id, result.generation, result.member_id, None, {("t", 0): (7, "m")}
    )
    assert commit == {("t", 0): ErrorCode.REBALANCE_IN_PROGRESS}  # not synced yet
    await h.sync(result.member_id, 1, {}, group=long_id)
    commit = await h.coordinator.commit_offsets(
        long_id, 1, result.member_id, None, {("t", 0): (7, "m")}
    )
    assert commit == {("t", 0): ErrorCode.NONE}
    too_long = "g" * 40_000
    assert (await h.join(too_long)).error is ErrorCode.INVALID_GROUP_ID
    assert h.coordinator.fetch_offsets(too_long, None).error is ErrorCode.INVALID_GROUP_ID
    assert too_long not in h.coordinator.group_ids()
    assert (await h.join("")).error is ErrorCode.INVALID_GROUP_ID
    assert h.coordinator.heartbeat("", 1, "m", None) is ErrorCode.INVALID_GROUP_ID
    # The empty id is valid for offset storage, as in Kafka.
    assert await h.coordinator.commit_offsets("", -1, "", None, {("t", 0): (1, None)}) == {
        ("t", 0): ErrorCode.NONE
    }


@scenario()
async def test_session_timeout_bounds(h: Harness) -> None:
    assert (await h.join(session_ms=10)).error is ErrorCode.INVALID_SESSION_TIMEOUT
    assert (await h.join(session_ms=10**8)).error is ErrorCode.INVALID_SESSION_TIMEOUT


# ---------------------------------------------------------------- offsets


@scenario()
async def test_standalone_commits_need_an_empty_group(h: Harness) -> None:
    c = h.coordinator
    assert await c.commit_offsets("solo", -1, "", None, {("t", 0): (10, "meta")}) == {
        ("t", 0): ErrorCode.NONE
    }
    assert await c.commit_offsets("none", 3, "m", None, {("t", 0): (1, None)}) == {
        ("t", 0): ErrorCode.ILLEGAL_GENERATION
    }
    await form_group(h, 1)
    assert await c.commit_offsets("g", -1, "", None, {("t", 0): (1, None)}) == {
        ("t", 0): ErrorCode.UNKNOWN_MEMBER_ID
    }
    fetched = c.fetch_offsets("solo", [("t", 0), ("t", 1)])
    assert fetched.error is ErrorCode.NONE
    assert fetched.offsets[("t", 0)].offset == 10  # type: ignore[union-attr]
    assert fetched.offsets[("t", 0)].metadata == "meta"  # type: ignore[union-attr]
    assert fetched.offsets[("t", 1)] is None


@scenario()
async def test_member_commits_and_per_partition_errors(h: Harness) -> None:
    (member,) = await form_group(h, 1)
    h.known_partitions = {("t", 0), ("t", 1)}
    result = await h.coordinator.commit_offsets(
        "g",
        1,
        member.member_id,
        None,
        {("t", 0): (5, "x"), ("t", 1): (6, "y" * 5000), ("missing", 0): (1, None)},
        leader_epochs={("t", 0): 3},
    )
    assert result == {
        ("t", 0): ErrorCode.NONE,
        ("t", 1): ErrorCode.OFFSET_METADATA_TOO_LARGE,
        ("missing", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    }
    committed = h.coordinator.fetch_offsets("g", None).offsets
    assert list(committed) == [("t", 0)]
    assert committed[("t", 0)].leader_epoch == 3  # type: ignore[union-attr]


@scenario()
async def test_a_failed_store_write_fails_only_the_partitions_it_held(h: Harness) -> None:
    h.known_partitions = {("t", 0), ("t", 1)}
    store = h.coordinator.store
    real_write = store._write_batch

    def failing(data: bytes) -> None:
        store._write_batch = real_write  # type: ignore[method-assign]
        raise OSError(5, "Input/output error")

    store._write_batch = failing  # type: ignore[method-assign]
    offsets = {("t", 0): (5, "x"), ("t", 1): (6, "y" * 5000), ("missing", 0): (1, None)}
    pending = h.coordinator.start_commit("g", -1, "", None, offsets)
    assert pending.durable is not None and not pending.durable.done()
    result = await h.coordinator.commit_offsets("g", -1, "", None, offsets)
    expected = {
        ("t", 0): ErrorCode.COORDINATOR_NOT_AVAILABLE,
        ("t", 1): ErrorCode.OFFSET_METADATA_TOO_LARGE,
        ("missing", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    }
    assert result == expected  # the same batch as `pending`, which failed too
    assert pending.durable.done()
    assert pending.outcome() == expected
    assert h.coordinator.fetch_offsets("g", None).offsets == {}
    # The store goes on: the next commit is durable.
    again = await h.coordinator.commit_offsets("g", -1, "", None, {("t", 0): (7, None)})
    assert again == {("t", 0): ErrorCode.NONE}


@scenario()
async def test_start_commit_answers_at_once_when_nothing_is_written(h: Harness) -> None:
    h.known_partitions = set()
    pending = h.coordinator.start_commit("g", -1, "", None, {("t", 0): (5, None)})
    assert pending.durable is None
    assert pending.outcome() == {("t", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
    stale = h.coordinator.start_commit("other", 3, "m", None, {("t", 0): (5, None)})
    assert stale.durable is None
    assert stale.outcome() == {("t", 0): ErrorCode.ILLEGAL_GENERATION}


@scenario()
async def test_delete_groups(h: Harness) -> None:
    c = h.coordinator
    await form_group(h, 1)
    await c.commit_offsets("empty", -1, "", None, {("t", 0): (1, None)})
    assert await c.delete_groups(["g", "empty", "unknown"]) == {
        "g": ErrorCode.NON_EMPTY_GROUP,
        "empty": ErrorCode.NONE,
        "unknown": ErrorCode.GROUP_ID_NOT_FOUND,
    }
    assert c.fetch_offsets("empty", None).offsets == {}
    assert "empty" not in c.group_ids()


def _subscription(*topics: str) -> bytes:
    out = b"\x00\x01" + len(topics).to_bytes(4, "big")
    for topic in topics:
        out += len(topic).to_bytes(2, "big") + topic.encode()
    return out + b"\xff\xff\xff\xff"


@scenario()
async def test_delete_offsets_refuses_subscribed_topics_of_a_live_group(h: Harness) -> None:
    c = h.coordinator
    (result,) = await h.complete(h.join(protocols=[("range", _subscription("live"))]))
    await h.sync(result.member_id, 1, {})
    await c.commit_offsets(
        "g", 1, result.member_id, None, {("live", 0): (1, None), ("old", 0): (2, None)}
    )
    deleted = await c.delete_offsets("g", [("live", 0), ("old", 0)])
    assert deleted.error is ErrorCode.NONE
    assert deleted.partitions == {
        ("live", 0): ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC,
        ("old", 0): ErrorCode.NONE,
    }
    assert list(c.fetch_offsets("g", None).offsets) == [("live", 0)]
    assert (await c.delete_offsets("nope", [("t", 0)])).error is ErrorCode.GROUP_ID_NOT_FOUND
    c.leave("g", [(result.member_id, None)])
    emptied = await c.delete_offsets("g", [("live", 0)])
    assert emptied.partitions == {("live", 0): ErrorCode.NONE}
    assert c.fetch_offsets("g", None).offsets == {}


@scenario()
async def test_list_and_describe(h: Harness) -> None:
    c = h.coordinator
    leader, follower = await form_group(h, 2)
    await c.commit_offsets("offsets-only", -1, "", None, {("t", 0): (1, None)})
    listing = {g.group_id: g for g in c.list_groups()}
    assert listing["g"].state == "Stable" and listing["g"].protocol_type == "consumer"
    assert listing["offsets-only"].state == "Empty"
    assert [g.group_id for g in c.list_groups(states=["stable"])] == ["g"]
    assert [g.group_id for g in c.list_groups(types=["consumer"])] == ["g"]
    (desc, missing) = c.describe_groups(["g", "missing"])
    assert (desc.state, desc.protocol_name, desc.found) == ("Stable", "range", True)
    by_id = {m.member_id: m for m in desc.members}
    assert by_id[follower.member_id].assignment == f"assign-{follower.member_id}".encode()
    assert by_id[follower.member_id].metadata == b"meta-c1"
    assert by_id[leader.member_id].client_host == "/127.0.0.1"
    assert (missing.state, missing.found, missing.error) == ("Dead", False, ErrorCode.NONE)


@scenario(empty_group_retention_ms=1000)
async def test_empty_groups_without_offsets_are_forgotten(h: Harness) -> None:
    (member,) = await form_group(h, 1)
    h.coordinator.leave("g", [(member.member_id, None)])
    assert h.state() is GroupState.EMPTY
    h.advance(1.001)
    assert h.state() is None


@scenario()
async def test_close_answers_waiting_requests(h: Harness) -> None:
    leader, follower = await form_group(h, 2)
    waiting = h.join(member_id=leader.member_id, client_id="c0")
    await settle()
    await h.coordinator.close()
    await settle()
    assert waiting.result().error is ErrorCode.NOT_COORDINATOR
    assert h.coordinator.heartbeat("g", 1, follower.member_id, None) is (
        ErrorCode.COORDINATOR_NOT_AVAILABLE
    )


def test_offsets_survive_a_restart(tmp_path: Path) -> None:
    async def first() -> None:
        h = Harness(tmp_path, fsync=True)
        (member,) = await form_group(h, 1)
        await h.coordinator.commit_offsets(
            "g", 1, member.member_id, None, {("t", 0): (42, "kept"), ("t", 1): (7, None)}
        )
        await h.coordinator.close()

    async def second() -> None:
        h = Harness(tmp_path, fsync=True)
        assert h.state() is GroupState.EMPTY  # membership is not kept; offsets are
        offsets = h.coordinator.fetch_offsets("g", None).offsets
        assert {k: (v.offset, v.metadata) for k, v in offsets.items() if v} == {
            ("t", 0): (42, "kept"),
            ("t", 1): (7, ""),
        }
        # A member of the old incarnation is told to rejoin.
        assert h.coordinator.heartbeat("g", 1, "old", None) is ErrorCode.UNKNOWN_MEMBER_ID
        await h.coordinator.close()

    asyncio.run(first())
    asyncio.run(second())


@pytest.mark.parametrize("count", [1, 5])
def test_simultaneous_groups_are_independent(tmp_path: Path, count: int) -> None:
    async def body(h: Harness) -> None:
        for i in range(count):
            await form_group(h, 2, group=f"g{i}")
        assert {g.state for g in h.coordinator.list_groups()} == {"Stable"}
        assert len(h.coordinator.list_groups()) == count

    run(tmp_path, body)


DAY = 24 * 3600.0


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (on the real loop: store writes finish in a worker thread) until `condition`."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


@scenario(offsets_retention_ms=int(7 * DAY * 1000), offsets_retention_check_interval_ms=600_000)
async def test_offsets_of_long_empty_groups_expire(h: Harness) -> None:
    c = h.coordinator
    await c.commit_offsets("idle", -1, "", None, {("t", 0): (1, None), ("t", 1): (2, None)})
    (busy,) = await h.complete(h.join("busy", session_ms=1_800_000))
    await h.sync(busy.member_id, 1, {}, group="busy")
    await c.commit_offsets("busy", 1, busy.member_id, None, {("t", 0): (5, None)})

    async def pass_time(days: float) -> None:
        for _ in range(int(days * DAY / 600)):  # retention checks run; "busy" stays alive
            h.advance(600)
            assert c.heartbeat("busy", 1, busy.member_id, None) is ErrorCode.NONE
            await settle()

    await pass_time(6)
    await c.commit_offsets("idle", -1, "", None, {("t", 1): (3, None)})  # refreshed
    await pass_time(1.1)

    def idle_offsets() -> list[tuple[str, int]]:
        return list(c.fetch_offsets("idle", None).offsets)

    await eventually(lambda: idle_offsets() == [("t", 1)])
    assert list(c.fetch_offsets("busy", None).offsets) == [("t", 0)]  # it has a member
    await pass_time(6)  # the refreshed offset ages out too
    await eventually(lambda: idle_offsets() == [])
    h.advance(61)  # and the group, Empty without offsets, is forgotten
    assert "idle" not in c.group_ids()


@scenario()
async def test_generated_member_ids_stay_short_whatever_the_client_id(h: Harness) -> None:
    first = await h.join(client_id="c" * 40_000, require_known=True)
    assert first.error is ErrorCode.MEMBER_ID_REQUIRED
    assert len(first.member_id) <= 200 + 37
    (static,) = await h.complete(h.join("g2", instance="i" * 40_000))
    assert len(static.member_id) <= 200 + 37
