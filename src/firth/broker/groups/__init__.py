"""Consumer groups, protocol-neutral: membership, rebalances and durable committed offsets.

- `states`: the group state machine as a (state, event) -> state table.
- `coordinator.GroupCoordinator`: every group of the broker; JoinGroup, SyncGroup, Heartbeat,
  LeaveGroup, List/Describe/DeleteGroups, OffsetCommit/Fetch/Delete as wire-neutral operations.
- `requests`, `results`: the value types operations take and answer (`requests.JoinRequest`).
- `group`, `member`: one group's and one member's state.
- `store.OffsetStore` and `records`: committed offsets on disk (CRC-framed record log, snapshots,
  group commit).
- `errors.ErrorCode`: the codes operations answer with, numbered as Kafka numbers them.
- `timers`: the injectable clock (the loop's, or a manual one for tests).
- `consumer_groups`, `assignors`, `topic_regex`: KIP-848 consumer groups (ConsumerGroupHeartbeat),
  server-side assignors and subscription regexes; `protocols.DualProtocolCoordinator` serves both
  protocols over one offsets store.

See docs/groups.md.
"""

from firth.broker.groups.config import GroupConfig
from firth.broker.groups.coordinator import GroupCoordinator
from firth.broker.groups.errors import ErrorCode, GroupStoreError
from firth.broker.groups.requests import JoinRequest
from firth.broker.groups.results import (
    CommittedOffset,
    GroupDescription,
    GroupListing,
    JoinMember,
    JoinResult,
    LeaveResult,
    MemberDescription,
    MemberLeaveResult,
    OffsetDeleteResult,
    OffsetFetchResult,
    SyncResult,
    TopicPartition,
)
from firth.broker.groups.states import TRANSITIONS, GroupEvent, GroupState
from firth.broker.groups.store import OffsetStore
from firth.broker.groups.timers import LoopTimers, ManualTimers, Timers

__all__ = [
    "TRANSITIONS",
    "CommittedOffset",
    "ErrorCode",
    "GroupConfig",
    "GroupCoordinator",
    "GroupDescription",
    "GroupEvent",
    "GroupListing",
    "GroupState",
    "GroupStoreError",
    "JoinMember",
    "JoinRequest",
    "JoinResult",
    "LeaveResult",
    "LoopTimers",
    "ManualTimers",
    "MemberDescription",
    "MemberLeaveResult",
    "OffsetDeleteResult",
    "OffsetFetchResult",
    "OffsetStore",
    "SyncResult",
    "Timers",
    "TopicPartition",
]
