"""Random walks over the coordinator: five clients joining, syncing, heartbeating, leaving,
committing, restarting and going silent, with time jumping; invariants checked after every step.

Invariants:
- the group's state agrees with its membership (Empty/Dead: nobody; CompletingRebalance and
  Stable: a leader among the members and a protocol every member supports);
- the static-instance map, outstanding sync set and leader only name current members;
- every answer of one generation names the same leader and protocol, and only the leader's
  answer lists members (with exactly that generation's members);
- every assignment a member receives is the bytes the leader sent for it in that generation;
- no operation raises (an illegal transition would).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
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

S = GroupState
PROTOCOL_SETS = [
    [("range", b"r")],
    [("range", b"r2"), ("roundrobin", b"rr")],
    [("roundrobin", b"rr"), ("range", b"r")],
]


@dataclass
class Client:
    slot: int
    instance: str | None
    member_id: str = ""
    generation: int = -1
    protocols: list[tuple[str, bytes]] = field(default_factory=lambda: list(PROTOCOL_SETS[0]))
    join_task: asyncio.Task[JoinResult] | None = None
    sync_task: asyncio.Task[SyncResult] | None = None
    last_join: JoinResult | None = None


class Walk:
    def __init__(self, tmp: Path, seed: int) -> None:
        self.rng = random.Random(seed)
        self.timers = ManualTimers()
        self.coordinator = GroupCoordinator.open(
            tmp,
            GroupConfig(fsync=False, initial_rebalance_delay_ms=self.rng.choice([0, 100])),
            timers=self.timers,
        )
        self.clients = [Client(i, f"static-{i}" if i >= 3 else None) for i in range(5)]
        # generation -> (leader, protocol, members listed to the leader)
        self.generations: dict[int, tuple[str, str | None, set[str] | None]] = {}
        # generation -> {member: assignment sent by the leader}
        self.plans: dict[int, dict[str, bytes]] = {}
        self.tasks: list[asyncio.Task[Any]] = []

    # ---- operations

    def join(self, c: Client) -> None:
        if c.join_task is not None and not c.join_task.done():
            return
        if self.rng.random() < 0.2:
            c.protocols = list(self.rng.choice(PROTOCOL_SETS))
        c.join_task = asyncio.ensure_future(
            self.coordinator.join(
                JoinRequest(
                    group_id="g",
                    member_id=c.member_id,
                    group_instance_id=c.instance,
                    client_id=f"client-{c.slot}",
                    client_host="/127.0.0.1",
                    session_timeout_ms=self.rng.choice([2000, 5000]),
                    rebalance_timeout_ms=self.rng.choice([3000, 8000]),
                    protocol_type="consumer",
                    protocols=c.protocols,
                    require_known_member_id=self.rng.random() < 0.7,
                )
            )
        )
        self.tasks.append(c.join_task)

    def sync(self, c: Client) -> None:
        result = c.last_join
        if result is None or result.error is not ErrorCode.NONE:
            return
        plan: dict[str, bytes] = {}
        if result.members:
            plan = {
                m.member_id: f"{result.generation}:{m.member_id}".encode() for m in result.members
            }
            self.plans.setdefault(result.generation, plan)
        c.sync_task = asyncio.ensure_future(
            self.coordinator.sync("g", result.generation, c.member_id, c.instance, plan)
        )
        self.tasks.append(c.sync_task)

    def heartbeat(self, c: Client) -> None:
        error = self.coordinator.heartbeat("g", c.generation, c.member_id, c.instance)
        if error is ErrorCode.UNKNOWN_MEMBER_ID and c.instance is None:
            c.member_id, c.generation = "", -1

    def leave(self, c: Client) -> None:
        if c.member_id or c.instance:
            self.coordinator.leave("g", [(c.member_id, c.instance)])
        c.member_id, c.generation, c.last_join = "", -1, None

    def commit(self, c: Client) -> None:
        self.tasks.append(
            asyncio.ensure_future(
                self.coordinator.commit_offsets(
                    "g", c.generation, c.member_id, c.instance, {("t", c.slot): (c.slot, None)}
                )
            )
        )

    def restart(self, c: Client) -> None:
        """The process dies and comes back: no member id (a static one keeps its instance)."""
        c.member_id, c.generation, c.last_join = "", -1, None
        c.join_task = None

    # ---- bookkeeping and checks

    def collect(self) -> None:
        for c in self.clients:
            if c.join_task is not None and c.join_task.done():
                result = c.join_task.result()
                c.join_task = None
                c.last_join = result
                if result.error is ErrorCode.MEMBER_ID_REQUIRED:
                    c.member_id = result.member_id
                elif result.error is ErrorCode.NONE:
                    c.member_id, c.generation = result.member_id, result.generation
                    self.check_join(result)
                    if self.rng.random() < 0.6:  # as a real client does, most of the time
                        self.sync(c)
                elif result.error in (ErrorCode.UNKNOWN_MEMBER_ID, ErrorCode.FENCED_INSTANCE_ID):
                    c.member_id, c.generation = "", -1
            if c.sync_task is not None and c.sync_task.done():
                result = c.sync_task.result()
                c.sync_task = None
                if result.error is ErrorCode.NONE:
                    plan = self.plans.get(c.generation)
                    if plan is not None and c.member_id in plan:
                        assert result.assignment == plan[c.member_id]
        for task in self.tasks:
            if task.done():
                task.result()  # re-raises anything a coordinator operation raised
        self.tasks = [t for t in self.tasks if not t.done()]

    def check_join(self, result: JoinResult) -> None:
        listed = {m.member_id for m in result.members} if result.members else None
        known = self.generations.get(result.generation)
        if known is None:
            self.generations[result.generation] = (result.leader, result.protocol_name, listed)
            return
        leader, protocol, members = known
        assert protocol == result.protocol_name
        if listed is not None:
            if members is not None:
                assert listed == members
            self.generations[result.generation] = (leader, protocol, listed)

    def check_group(self) -> None:
        group = self.coordinator.group("g")
        if group is None:
            return
        members = group.members
        if group.state in (S.EMPTY, S.DEAD):
            assert not members
        if group.state in (S.COMPLETING_REBALANCE, S.STABLE):
            assert members and group.leader_id in members
            assert group.protocol_name is not None
            assert all(group.protocol_name in m.protocol_names for m in members.values())
        if members:
            assert group.leader_id in members
        for instance, member_id in group.static_members.items():
            assert members[member_id].group_instance_id == instance
        assert group.pending_sync <= set(members)
        assert not (set(group.pending_members) & set(members))


async def walk(tmp: Path, seed: int, steps: int) -> Walk:
    w = Walk(tmp, seed)
    ops = [w.join, w.join, w.sync, w.sync, w.heartbeat, w.heartbeat, w.leave, w.commit, w.restart]
    for _ in range(steps):
        roll = w.rng.random()
        if roll < 0.15:
            w.timers.advance(w.rng.choice([0.05, 0.2, 1.0, 3.0, 9.0]))
        else:
            w.rng.choice(ops)(w.rng.choice(w.clients))
        for _ in range(4):
            await asyncio.sleep(0)
        w.collect()
        w.check_group()
    # Let everything in flight finish: the longest timers are rebalance timeouts.
    for _ in range(10):
        w.timers.advance(10)
        for _ in range(4):
            await asyncio.sleep(0)
        w.collect()
        w.check_group()
    await w.coordinator.close()
    for _ in range(4):
        await asyncio.sleep(0)
    w.collect()
    return w


@pytest.mark.parametrize("seed", range(40))
def test_random_walk_keeps_the_invariants(tmp_path: Path, seed: int) -> None:
    w = asyncio.run(walk(tmp_path, seed, 300))
    assert w.generations  # the walk did form groups
