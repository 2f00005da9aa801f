"""One member of a group: what it told the coordinator and what the coordinator owes it.

A member is created by JoinGroup and lives until it leaves, misses its session timeout, fails to
rejoin within a rebalance timeout, or is replaced by a newer incarnation of the same static
instance. The protocol metadata and assignment are opaque bytes, relayed unchanged: the
coordinator never looks inside them (except OffsetDelete reading subscribed topics).

`join_waiter` / `sync_waiter` are the futures of a JoinGroup / SyncGroup the member is blocked
in; a member blocked in either is alive by definition (Kafka keeps such members too) and its
session timer only starts counting again once it is answered.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from firth.broker.groups.timers import TimerHandle

if TYPE_CHECKING:
    from firth.broker.groups.results import JoinResult, SyncResult

Protocols = list[tuple[str, bytes]]


@dataclass(slots=True, eq=False)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: Protocols
    assignment: bytes = b""
    join_waiter: asyncio.Future[JoinResult] | None = None
    sync_waiter: asyncio.Future[SyncResult] | None = None
    # Monotonic seconds after which the member is expired, unless blocked in a join or sync.
    session_deadline: float = 0.0
    session_timer: TimerHandle | None = field(default=None, repr=False)
    # True until the member's first join completes.
    is_new: bool = True

    @property
    def awaiting_join(self) -> bool:
        return self.join_waiter is not None

    @property
    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]

    def metadata_for(self, protocol_name: str | None) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol_name:
                return metadata
        return b""

    def matches(self, protocols: Protocols) -> bool:
        """Same protocols, in the same order, with the same metadata bytes."""
        return self.protocols == protocols

    def vote(self, candidates: set[str]) -> str:
        """The member's most preferred protocol among those every member supports."""
        for name, _ in self.protocols:
            if name in candidates:
                return name
        raise ValueError(f"member {self.member_id} supports none of {sorted(candidates)}")
