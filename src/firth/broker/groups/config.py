"""Limits and timings of the group coordinator, with the reasons for their defaults.

Names follow Kafka's broker settings (group.min.session.timeout.ms and so on) so that a reader
who knows Kafka finds them; where a default differs from Kafka's, the comment says why.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GroupConfig:
    # group.min.session.timeout.ms. Kafka: 6000. Firth runs embedded and in tests, where fast
    # failure detection matters more than protection from a flapping fleet; 1 s still rejects
    # nonsense such as 0.
    min_session_timeout_ms: int = 1_000
    # group.max.session.timeout.ms, Kafka's default.
    max_session_timeout_ms: int = 1_800_000
    # group.initial.rebalance.delay.ms: how long a new (Empty) group waits for more members
    # before its first rebalance completes; extended by the same amount each time a member joins,
    # up to the rebalance timeout. Kafka: 3000. 200 ms gathers members that start together
    # without making every test wait three seconds.
    initial_rebalance_delay_ms: int = 200
    # group.max.size. Kafka: unbounded. Bounded here so that a JoinGroup storm costs bounded
    # memory; a thousand consumers in one group is beyond what one process serves anyway.
    max_group_size: int = 1_000
    # Kafka has no limit on a group id's length. 32767 UTF-8 bytes is the longest id a
    # non-flexible request can carry, so every client version can still name every group, and
    # memory per group stays bounded. Longer ids get INVALID_GROUP_ID.
    max_group_id_bytes: int = 32_767
    # offset.metadata.max.bytes: longer commit metadata gets OFFSET_METADATA_TOO_LARGE.
    max_offset_metadata_bytes: int = 4_096
    # How long an Empty group with no committed offsets is kept (for DescribeGroups and
    # ListGroups) before it is forgotten. Kafka forgets such groups at its next offsets cleanup.
    empty_group_retention_ms: int = 60_000
    # offsets.retention.minutes: the committed offsets of a group that has been Empty this long
    # are deleted once they are this old themselves. Kafka's default, 7 days. The Empty clock
    # restarts when the broker does (membership is not persisted), which only keeps offsets longer.
    offsets_retention_ms: int = 7 * 24 * 3600 * 1000
    # offsets.retention.check.interval.ms, Kafka's default.
    offsets_retention_check_interval_ms: int = 600_000
    # KIP-848 consumer groups (group.protocol=consumer): the coordinator, not the client, sets
    # the session timeout (group.consumer.session.timeout.ms) and the heartbeat interval it
    # tells members to use (group.consumer.heartbeat.interval.ms). Kafka's defaults.
    consumer_session_timeout_ms: int = 45_000
    consumer_heartbeat_interval_ms: int = 5_000
    # Offsets store: fsync each batch of records before answering (False only in tests).
    fsync: bool = True
    # Offsets store: write a snapshot and start a new log once the log grows past this.
    compact_after_bytes: int = 16 * 1024 * 1024
