"""One coordinator for both group protocols: classic (JoinGroup) and KIP-848 (heartbeat).

`DualProtocolCoordinator` is the classic `GroupCoordinator` plus a `ConsumerGroupCoordinator`
(`consumer_groups`) for the groups that speak the consumer protocol, sharing one offsets store.
It overrides only the operations where the protocols meet:

- a group id belongs to one protocol at a time: JoinGroup to a consumer group that has members
  gets INCONSISTENT_GROUP_PROTOCOL (and a heartbeat to a classic group with members gets
  GROUP_ID_NOT_FOUND, in `consumer_groups`); an empty group of either kind is taken over;
- OffsetCommit to a consumer group is fenced by member epoch (UNKNOWN_MEMBER_ID,
  STALE_MEMBER_EPOCH), then stored like any other commit;
- DeleteGroups refuses a consumer group with members (NON_EMPTY_GROUP);
- DescribeGroups (the classic API) answers Dead for a consumer group, as Kafka does;
- ListGroups shows consumer groups with their own state names and protocol type "consumer".

The classic coordinator keeps an Empty group object for every group id with committed offsets
(it loads them so at start-up); for a consumer group that object only holds the offsets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from firth.broker.groups.config import GroupConfig
from firth.broker.groups.consumer_groups import ConsumerGroupCoordinator, TopicPartitionCounts
from firth.broker.groups.coordinator import GroupCoordinator, OffsetCommits, PartitionExists
from firth.broker.groups.errors import ErrorCode
from firth.broker.groups.requests import JoinRequest
from firth.broker.groups.results import (
    GroupDescription,
    GroupListing,
    JoinResult,
    PendingCommit,
    TopicPartition,
)
from firth.broker.groups.states import GroupState
from firth.broker.groups.store import OffsetStore
from firth.broker.groups.timers import Timers

CONSUMER_PROTOCOL_TYPE = "consumer"


class DualProtocolCoordinator(GroupCoordinator):
    def __init__(
        self,
        store: OffsetStore,
        config: GroupConfig | None = None,
        *,
        timers: Timers | None = None,
        partition_exists: PartitionExists | None = None,
        partition_counts: TopicPartitionCounts | None = None,
    ) -> None:
        super().__init__(store, config, timers=timers, partition_exists=partition_exists)
        self.consumer_groups = ConsumerGroupCoordinator(
            self.config,
            self.timers,
            partition_counts or dict,
            classic_in_use=self._classic_in_use,
        )

    @classmethod
    def open_dual(
        cls,
        data_dir: Path,
        config: GroupConfig | None = None,
        *,
        partition_exists: PartitionExists | None = None,
        partition_counts: TopicPartitionCounts | None = None,
    ) -> DualProtocolCoordinator:
        coordinator = cls.open(data_dir, config, partition_exists=partition_exists)
        assert isinstance(coordinator, DualProtocolCoordinator)
        if partition_counts is not None:
            coordinator.consumer_groups.partition_counts = partition_counts
        return coordinator

    def _classic_in_use(self, group_id: str) -> bool:
        group = self.group(group_id)
        return group is not None and (
            not group.is_(GroupState.EMPTY) or bool(group.pending_members)
        )

    async def close(self) -> None:
        self.consumer_groups.close()
        await super().close()

    async def join(self, request: JoinRequest) -> JoinResult:
        if not self.consumer_groups.forget_empty(request.group_id):
            return JoinResult.failed(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, request.member_id)
        return await super().join(request)

    def start_commit(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        group_instance_id: str | None,
        offsets: OffsetCommits,
        leader_epochs: Mapping[tuple[str, int], int] | None = None,
    ) -> PendingCommit:
        """OffsetCommit (and `commit_offsets`, which goes through here). To a consumer group:
        fenced by member epoch, then stored as a commit outside classic membership."""
        if not self.consumer_groups.owns(group_id):
            return super().start_commit(
                group_id, generation, member_id, group_instance_id, offsets, leader_epochs
            )
        refused = self.consumer_groups.commit_errors(group_id, member_id, generation, offsets)
        allowed = {key: value for key, value in offsets.items() if key not in refused}
        if allowed:
            pending = super().start_commit(group_id, -1, "", None, allowed, leader_epochs)
        else:
            pending = PendingCommit({})
        for key, error in refused.items():
            pending.results[TopicPartition(*key)] = error
        return pending

    def describe_groups(self, group_ids: Iterable[str]) -> list[GroupDescription]:
        """DescribeGroups (classic) does not describe consumer groups: Dead, as in Kafka (and
        GROUP_ID_NOT_FOUND from v6); ConsumerGroupDescribe does."""
        names = list(group_ids)
        owned = self.consumer_groups.groups
        classic = iter(super().describe_groups([g for g in names if g not in owned]))
        return [
            GroupDescription(ErrorCode.NONE, g, GroupState.DEAD.value, "", "", found=False)
            if g in owned
            else next(classic)
            for g in names
        ]

    async def delete_groups(self, group_ids: Iterable[str]) -> dict[str, ErrorCode]:
        names = list(group_ids)
        refused = {
            g: ErrorCode.NON_EMPTY_GROUP for g in names if self.consumer_groups.has_members(g)
        }
        for name in names:
            if name not in refused:
                self.consumer_groups.forget_empty(name)
        results = await super().delete_groups([g for g in names if g not in refused])
        return {name: refused.get(name) or results[name] for name in names}

    def list_groups(
        self, states: Iterable[str] | None = None, types: Iterable[str] | None = None
    ) -> list[GroupListing]:
        wanted = list(states) if states else None
        owned = self.consumer_groups.groups
        listings = [g for g in super().list_groups(wanted, types) if g.group_id not in owned]
        state_filter = {s.lower() for s in wanted} if wanted else None
        if types is None or CONSUMER_PROTOCOL_TYPE in types:
            for group in owned.values():
                state = group.state.value
                if state_filter is None or state.lower() in state_filter:
                    listings.append(
                        GroupListing(group.group_id, CONSUMER_PROTOCOL_TYPE, state, "consumer")
                    )
        return listings
