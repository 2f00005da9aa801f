"""Server-side partition assignors of KIP-848 consumer groups: `uniform` and `range`.

With the consumer group protocol the coordinator, not a client leader, computes each member's
target assignment. A client names the assignor it wants with `group.remote.assignor`; the group
uses the one most of its members name, else the first of `ASSIGNORS` (as Kafka does: `uniform`).

Both are pure functions of the members' subscriptions, the partition counts of the subscribed
topics and the previous target assignment; they return every member's new target.

- `uniform`: spreads all subscribed partitions as evenly as the subscriptions allow and is
  sticky: a member keeps what it had, up to its fair share, so a membership change moves only
  the partitions it has to. Then it evens out (moves from the most to the least loaded member
  that may take the partition) until no move can reduce the spread.
- `range`: per topic, the members subscribed to it (static members by instance id first, then
  the others by member id) get contiguous ranges of partitions, the first `count % members` of
  them one more. Members subscribed to the same co-partitioned topics get the same partition
  numbers of each. As Kafka's server-side range, it is not sticky.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping

Partition = tuple[str, int]
"""(topic, partition)."""

Assignment = dict[str, frozenset[Partition]]
"""member id -> its partitions."""

Assignor = Callable[
    [
        Mapping[str, frozenset[str]],
        Mapping[str, int],
        Mapping[str, frozenset[Partition]],
        Mapping[str, str | None],
    ],
    Assignment,
]
"""(member id -> subscribed topics, topic -> partition count, previous target,
member id -> group.instance.id) -> target."""


def _all_partitions(
    subscriptions: Mapping[str, frozenset[str]], partition_counts: Mapping[str, int]
) -> list[Partition]:
    topics = sorted(
        {t for topics in subscriptions.values() for t in topics} & set(partition_counts)
    )
    return [(topic, p) for topic in topics for p in range(partition_counts[topic])]


def uniform(
    subscriptions: Mapping[str, frozenset[str]],
    partition_counts: Mapping[str, int],
    previous: Mapping[str, frozenset[Partition]],
    instance_ids: Mapping[str, str | None] | None = None,
) -> Assignment:
    members = sorted(subscriptions)
    if not members:
        return {}
    partitions = _all_partitions(subscriptions, partition_counts)
    ceiling = -(-len(partitions) // len(members))
    owned: dict[str, set[Partition]] = {m: set() for m in members}
    taken: set[Partition] = set()
    valid = set(partitions)
    # Sticky pass: each member keeps what it had and may still have, up to the ceiling.
    for member in members:
        for partition in sorted(previous.get(member, ())):
            if (
                partition in valid
                and partition not in taken
                and partition[0] in subscriptions[member]
                and len(owned[member]) < ceiling
            ):
                owned[member].add(partition)
                taken.add(partition)
    # The rest, each to the least loaded member that subscribes to its topic: one heap per topic
    # of (count, member), refreshed lazily (a member's count only grows, so an entry is at most
    # too small; it is corrected when it reaches the top).
    heaps: dict[str, list[tuple[int, str]]] = {}
    for partition in partitions:
        if partition in taken:
            continue
        topic = partition[0]
        heap = heaps.get(topic)
        if heap is None:
            heap = [(len(owned[m]), m) for m in members if topic in subscriptions[m]]
            heapq.heapify(heap)
            heaps[topic] = heap
        if not heap:
            continue
        count, chosen = heap[0]
        while count != len(owned[chosen]):
            heapq.heapreplace(heap, (len(owned[chosen]), chosen))
            count, chosen = heap[0]
        owned[chosen].add(partition)
        taken.add(partition)
        heapq.heapreplace(heap, (count + 1, chosen))
    # Even out (only unequal subscriptions can leave work here): move a partition from a member
    # to one holding two or more fewer, while possible.
    while max(len(p) for p in owned.values()) - min(len(p) for p in owned.values()) > 1:
        if not _move_one(members, subscriptions, owned):
            break
    return {m: frozenset(owned[m]) for m in members}


def _move_one(
    members: list[str],
    subscriptions: Mapping[str, frozenset[str]],
    owned: dict[str, set[Partition]],
) -> bool:
    """Move one partition from the most loaded member able to give one; False if none can."""
    for giver in sorted(members, key=lambda m: (-len(owned[m]), m)):
        for partition in sorted(owned[giver]):
            takers = [
                m
                for m in members
                if partition[0] in subscriptions[m] and len(owned[m]) < len(owned[giver]) - 1
            ]
            if takers:
                taker = min(takers, key=lambda m: (len(owned[m]), m))
                owned[giver].discard(partition)
                owned[taker].add(partition)
                return True
    return False


def range_(
    subscriptions: Mapping[str, frozenset[str]],
    partition_counts: Mapping[str, int],
    previous: Mapping[str, frozenset[Partition]],
    instance_ids: Mapping[str, str | None] | None = None,
) -> Assignment:
    del previous  # range is a function of the membership alone
    instances = instance_ids or {}

    def rank(member: str) -> tuple[int, str]:
        # Static members first, by instance id, so a rolling restart (new member ids, same
        # instance ids) keeps every range where it was; then the others by member id.
        instance = instances.get(member)
        return (0, instance) if instance is not None else (1, member)

    owned: dict[str, set[Partition]] = {m: set() for m in subscriptions}
    topics = sorted(
        {t for topics in subscriptions.values() for t in topics} & set(partition_counts)
    )
    for topic in topics:
        members = sorted((m for m, topics in subscriptions.items() if topic in topics), key=rank)
        count = partition_counts[topic]
        share, extra = divmod(count, len(members))
        start = 0
        for index, member in enumerate(members):
            size = share + (1 if index < extra else 0)
            owned[member].update((topic, p) for p in range(start, start + size))
            start += size
    return {m: frozenset(parts) for m, parts in owned.items()}


ASSIGNORS: dict[str, Assignor] = {"uniform": uniform, "range": range_}
"""Name (as clients give it in group.remote.assignor) -> assignor; the first is the default."""

DEFAULT_ASSIGNOR = next(iter(ASSIGNORS))


def choose_assignor(preferences: list[str | None]) -> str:
    """The assignor most members ask for (ties: the first in `ASSIGNORS`), else the default."""
    named = [p for p in preferences if p is not None]
    if not named:
        return DEFAULT_ASSIGNOR
    return max(ASSIGNORS, key=lambda name: (named.count(name), -list(ASSIGNORS).index(name)))
