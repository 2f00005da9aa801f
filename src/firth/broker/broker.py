"""The broker core: everything the protocol front ends share, owned by one object.

`Broker` composes the topic catalog, the group commit, producer-id allocation and (when
present) the consumer-group coordinator, and runs the housekeeping loop: retention, background
flush of data written without a durability wait, and producer-state snapshots. It knows no wire
format; front ends call it from the event loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from firth.broker.catalog import Catalog, Topic
from firth.broker.group_commit import GroupCommit
from firth.broker.groups.config import GroupConfig
from firth.broker.groups.coordinator import GroupCoordinator
from firth.broker.groups.protocols import DualProtocolCoordinator
from firth.broker.producers import ProducerIdAllocator
from firth.broker.queues import PropertiesCodec, VirtualHost
from firth.broker.topic_config import BrokerDefaults

logger = logging.getLogger(__name__)

PRODUCER_ID_EXPIRATION_MS = 24 * 3600 * 1000
"""Kafka's producer.id.expiration.ms: forget an idle producer's sequence state after a day."""


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    data_dir: Path
    defaults: BrokerDefaults
    node_id: int = 0
    fsync: bool = True
    auto_create_topics: bool = True
    num_partitions: int = 1
    retention_check_interval_ms: int = 300_000
    background_flush_interval_ms: int = 1_000
    producer_snapshot_interval_ms: int = 30_000
    group_initial_rebalance_delay_ms: int = 3_000
    group_consumer_session_timeout_ms: int = 45_000
    group_consumer_heartbeat_interval_ms: int = 5_000


class _PartitionCounts(Mapping[str, int]):
    """Topic name -> partition count, read from the catalog on lookup (no copy per call)."""

    def __init__(self, topics: Mapping[str, Topic]) -> None:
        self._topics = topics

    def __getitem__(self, name: str) -> int:
        return len(self._topics[name].partitions)

    def __iter__(self) -> Iterator[str]:
        return iter(self._topics)

    def __len__(self) -> int:
        return len(self._topics)


class Broker:
    def __init__(self, settings: BrokerSettings) -> None:
        self.settings = settings
        self.catalog = Catalog(settings.data_dir, settings.defaults, fsync=settings.fsync)
        self.group_commit = GroupCommit(enabled=settings.fsync)
        self.producer_ids = ProducerIdAllocator(
            settings.data_dir / "__meta" / "producer-ids", fsync=settings.fsync
        )
        self.groups: GroupCoordinator | None = None
        """The consumer-group coordinator; opened by start()."""
        self.vhosts: dict[str, VirtualHost] = {}
        """AMQP virtual hosts (queues and exchanges), opened by ``open_vhost``."""
        self._housekeeping: list[asyncio.Task[None]] = []
        self.stopping = False
        """Set when the server begins a graceful stop: long polls return at once."""
        self.started_at = time.time()

    @property
    def node_id(self) -> int:
        return self.settings.node_id

    @property
    def cluster_id(self) -> str:
        return self.catalog.cluster_id

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        await loop.run_in_executor(None, self.catalog.load)
        group_config = GroupConfig(
            fsync=self.settings.fsync,
            initial_rebalance_delay_ms=self.settings.group_initial_rebalance_delay_ms,
            consumer_session_timeout_ms=self.settings.group_consumer_session_timeout_ms,
            consumer_heartbeat_interval_ms=self.settings.group_consumer_heartbeat_interval_ms,
        )
        # Opened on the loop thread: its timers bind to the running loop. Loading the offsets
        # store is a short read at start-up.
        self.groups = DualProtocolCoordinator.open_dual(
            self.settings.data_dir,
            group_config,
            partition_exists=self._partition_exists,
            partition_counts=self._partition_counts,
        )
        logger.info(
            "opened %d topics from %s in %.2fs",
            len(self.catalog.topics),
            self.settings.data_dir,
            time.perf_counter() - started,
        )
        self._housekeeping = [
            loop.create_task(
                self._every(self.settings.retention_check_interval_ms, self.enforce_retention)
            ),
            loop.create_task(
                self._every(self.settings.background_flush_interval_ms, self._background_flush)
            ),
            loop.create_task(
                self._every(self.settings.producer_snapshot_interval_ms, self._snapshot_producers)
            ),
        ]

    def open_vhost(self, name: str, codec: PropertiesCodec) -> VirtualHost:
        """Open (loading definitions and durable queues) the virtual host ``name``."""
        directory = self.settings.data_dir / "__amqp" / ("default" if name == "/" else name)
        vhost = VirtualHost(directory, codec, name=name, fsync=self.settings.fsync)
        vhost.load()
        self.vhosts[name] = vhost
        return vhost

    async def stop(self) -> None:
        for vhost in self.vhosts.values():
            vhost.close()
        for task in self._housekeeping:
            task.cancel()
        for task in self._housekeeping:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.groups is not None:
            await self.groups.close()
        await self.group_commit.close()
        for partition in self.catalog.all_partitions():
            partition.wake_all()
        await asyncio.get_running_loop().run_in_executor(None, self.catalog.close)

    async def _every(self, interval_ms: int, action) -> None:  # type: ignore[no-untyped-def]
        while True:
            await asyncio.sleep(interval_ms / 1000)
            try:
                await action()
            except Exception:
                logger.exception("housekeeping task %s failed", action.__name__)

    async def enforce_retention(self) -> int:
        now_ms = int(time.time() * 1000)
        deleted = 0
        for partition in list(self.catalog.all_partitions()):
            deleted += partition.log.enforce_retention(now_ms)
        if deleted:
            logger.info("retention deleted %d segments", deleted)
        return deleted

    async def _background_flush(self) -> None:
        await self.group_commit.flush_dirty()

    async def _snapshot_producers(self) -> None:
        now_ms = int(time.time() * 1000)
        for partition in list(self.catalog.all_partitions()):
            partition.producers.expire(now_ms, PRODUCER_ID_EXPIRATION_MS)
            self.catalog.save_producer_state(partition)

    def _partition_counts(self) -> Mapping[str, int]:
        return _PartitionCounts(self.catalog.topics)

    def _partition_exists(self, topic: str, partition: int) -> bool:
        found = self.catalog.topics.get(topic)
        return found is not None and 0 <= partition < len(found.partitions)

    def auto_create(self, name: str) -> bool:
        """Create `name` with the default partition count if auto-creation is on."""
        if not self.settings.auto_create_topics:
            return False
        self.catalog.create_topic(name, self.settings.num_partitions)
        return True
