"""The Kafka APIs Firth serves and the version ranges it advertises in ApiVersions.

`API_TABLE` is the one place to look: API key -> name, the version range advertised, and the
group the API belongs to. `ENABLED_GROUPS` switches whole groups on; enabling consumer groups is
the one edit `"consumer_groups": True`. `SUPPORTED_APIS` (what ApiVersions answers) is derived.

Which release the ranges imitate, and why
-----------------------------------------
The ranges are Apache Kafka 4.0's, clipped where kio (whose schemas are Kafka 4.x's) or our
handlers stop. Three clients judge them:

- kafka-python 3.x infers the broker release from the ranges (`infer_broker_version_from_api_
  versions`: the newest release whose probe matches, e.g. 4.0 = ListOffsets v10, 4.1 = Produce
  v13, 4.2 = ListOffsets v11). With ListOffsets up to 10, Produce up to 12 and no DescribeLogDirs
  it infers 4.0, and its table of 4.0 ranges is the one below. It then negotiates each API from
  the advertised ranges (highest common version).
- aiokafka 0.14 only has non-flexible request classes (Produce 0-7, Fetch 1-11, Metadata 0-5,
  OffsetCommit 2-3, OffsetFetch 1-3, JoinGroup {0,1,2,5}, SyncGroup {0,1,3}, FindCoordinator 0-1,
  Heartbeat/LeaveGroup 0-1, ListOffsets 0-3, CreateTopics 0-3, DeleteTopics 0-3, DescribeConfigs
  0-2, InitProducerId 0) and picks the highest one inside the advertised range, so every range
  below reaches down into those.
- librdkafka 2.x takes the highest common version (Produce up to 10-12, Fetch up to 16-17,
  Metadata up to 12-13) and enables features by range overlap. Older librdkafka releases only
  enable gzip/snappy/lz4 when Produce v0..v2 overlap the broker's range, which is why Kafka 4.0
  advertises Produce from v0 although it rejects v0-v2 (KAFKA-18659). We do the same:
  `ADVERTISED_MIN` widens Produce's advertised minimum to 0 while `decodable_range` stays 3-12;
  no client picks v0-v2 because every client picks the highest common version.

One deliberate departure: JoinGroup is advertised from v0 (kafka-python's table gives 2-9 for
4.0 and 0-9 for 4.1) because librdkafka's balanced-consumer feature check wants JoinGroup v0 in
the range, and kio decodes v0-v1 anyway. It does not change what kafka-python infers.

Kafka 4.1 would add Produce v13, which names topics by id instead of by name, and Fetch v18
(kio has both); serving them needs topic ids end to end in produce, so we stay at 4.0.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ApiSpec:
    """One API: its key, its Kafka name, the versions we decode, and its switch group."""

    key: int
    name: str
    min_version: int
    max_version: int
    group: str

    @property
    def decodable_range(self) -> tuple[int, int]:
        return self.min_version, self.max_version

    @property
    def advertised_range(self) -> tuple[int, int]:
        return ADVERTISED_MIN.get(self.key, self.min_version), self.max_version


API_TABLE: dict[int, ApiSpec] = {
    spec.key: spec
    for spec in (
        # core: connect, discover, produce, consume
        ApiSpec(18, "ApiVersions", 0, 4, "core"),
        ApiSpec(3, "Metadata", 0, 13, "core"),
        ApiSpec(0, "Produce", 3, 12, "core"),
        ApiSpec(1, "Fetch", 4, 17, "core"),
        ApiSpec(2, "ListOffsets", 1, 10, "core"),
        ApiSpec(60, "DescribeCluster", 0, 2, "core"),
        # admin: topics and configs
        ApiSpec(19, "CreateTopics", 2, 7, "admin"),
        ApiSpec(20, "DeleteTopics", 1, 6, "admin"),
        ApiSpec(37, "CreatePartitions", 0, 3, "admin"),
        ApiSpec(32, "DescribeConfigs", 1, 4, "admin"),
        ApiSpec(44, "IncrementalAlterConfigs", 0, 1, "admin"),
        # idempotent producers
        ApiSpec(22, "InitProducerId", 0, 5, "producer"),
        # consumer groups (classic protocol)
        ApiSpec(10, "FindCoordinator", 0, 6, "consumer_groups"),
        ApiSpec(11, "JoinGroup", 0, 9, "consumer_groups"),
        ApiSpec(14, "SyncGroup", 0, 5, "consumer_groups"),
        ApiSpec(12, "Heartbeat", 0, 4, "consumer_groups"),
        ApiSpec(13, "LeaveGroup", 0, 5, "consumer_groups"),
        ApiSpec(8, "OffsetCommit", 2, 9, "consumer_groups"),
        ApiSpec(9, "OffsetFetch", 1, 9, "consumer_groups"),
        ApiSpec(16, "ListGroups", 0, 5, "consumer_groups"),
        ApiSpec(15, "DescribeGroups", 0, 6, "consumer_groups"),
        ApiSpec(42, "DeleteGroups", 0, 2, "consumer_groups"),
        ApiSpec(47, "OffsetDelete", 0, 0, "consumer_groups"),
        # consumer groups (KIP-848 consumer protocol)
        ApiSpec(68, "ConsumerGroupHeartbeat", 0, 1, "consumer_group_protocol"),
        ApiSpec(69, "ConsumerGroupDescribe", 0, 1, "consumer_group_protocol"),
    )
}

ENABLED_GROUPS: dict[str, bool] = {
    "core": True,
    "admin": True,
    "producer": True,
    "consumer_groups": True,
    "consumer_group_protocol": True,
}
"""Flip a group to True once its handlers exist; ApiVersions then advertises it."""

ADVERTISED_MIN: dict[int, int] = {0: 0}
"""Advertised minimum below the decodable one: Produce v0-v2, as Kafka 4.0 does (KAFKA-18659)."""

ALL_API_RANGES: dict[int, tuple[int, int]] = {
    key: spec.decodable_range for key, spec in API_TABLE.items()
}
"""Every API the codec can decode, enabled or not: key -> (min, max) decodable version."""


def supported_apis(enabled_groups: dict[str, bool] | None = None) -> dict[int, tuple[int, int]]:
    """Advertised ranges of the enabled APIs: key -> (min, max)."""
    groups = ENABLED_GROUPS if enabled_groups is None else enabled_groups
    return {
        key: spec.advertised_range
        for key, spec in sorted(API_TABLE.items())
        if groups.get(spec.group, False)
    }


SUPPORTED_APIS: dict[int, tuple[int, int]] = supported_apis()
"""What ApiVersions advertises: key -> (min, max), enabled groups only."""


def api_name(key: int) -> str:
    spec = API_TABLE.get(key)
    return spec.name if spec is not None else f"ApiKey{key}"
