"""The topic catalog: which topics exist, their ids, partition counts and config overrides.

On disk the catalog is one JSON checkpoint, `<data>/__meta/catalog.json`, rewritten with atomic
replace on every change (topic administration is rare, so whole-file rewrites are cheap and
leave no torn states). Each partition's log lives in `<data>/<topic>-<index>/`, Kafka's layout.

Ordering of effects, so a crash at any point leaves a consistent state:
- create: the partition folders are created first, then the catalog records the topic. A crash
  in between leaves folders the catalog does not name; start-up deletes them.
- delete: the catalog drops the topic first, then the folders are removed. A crash in between
  again leaves orphan folders, removed at start-up.

Producer state snapshots live in `<data>/__meta/producer-state/<topic>-<index>.json`.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from firth.broker.errors import (
    InvalidConfig,
    InvalidPartitions,
    InvalidTopic,
    TopicAlreadyExists,
    UnknownTopicOrPartition,
)
from firth.broker.partition import Partition
from firth.broker.producers import PartitionProducers
from firth.broker.topic_config import BrokerDefaults, ConfigError, log_config, validate_overrides
from firth.fsutil import atomic_write
from firth.log import Log

logger = logging.getLogger(__name__)

META_DIR = "__meta"
CATALOG_FILE = "catalog.json"
PRODUCER_STATE_DIR = "producer-state"
MAX_TOPIC_NAME = 249
MAX_PARTITIONS = 10_000
_LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]+$")
_PARTITION_DIR = re.compile(r"^(?P<topic>.+)-(?P<index>\d+)$")


def validate_topic_name(name: str) -> None:
    if not name:
        raise InvalidTopic("topic name is empty")
    if name in (".", ".."):
        raise InvalidTopic(f"topic name {name!r} is not allowed")
    if len(name) > MAX_TOPIC_NAME:
        raise InvalidTopic(f"topic name is longer than {MAX_TOPIC_NAME} characters")
    if not _LEGAL_TOPIC.match(name):
        raise InvalidTopic(f"topic name {name!r} has characters outside [a-zA-Z0-9._-]")
    if name.startswith("__"):
        raise InvalidTopic(f"topic names starting with '__' are reserved: {name!r}")


@dataclass(slots=True)
class Topic:
    name: str
    topic_id: uuid.UUID
    config: dict[str, str]
    partitions: list[Partition] = field(default_factory=list)


class Catalog:
    """Owns every topic and partition. Runs on the event loop thread; not thread-safe."""

    def __init__(
        self,
        data_dir: Path,
        defaults: BrokerDefaults,
        *,
        fsync: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.data_dir = data_dir
        self.defaults = defaults
        self.fsync = fsync
        self.clock = clock
        self.meta_dir = data_dir / META_DIR
        self.topics: dict[str, Topic] = {}
        self.by_id: dict[uuid.UUID, Topic] = {}
        self.cluster_id = ""

    # -- lifecycle ------------------------------------------------------------------------

    def load(self) -> None:
        """Read the catalog, open (and if needed recover) every partition log, drop orphans."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.meta_dir / PRODUCER_STATE_DIR).mkdir(parents=True, exist_ok=True)
        path = self.meta_dir / CATALOG_FILE
        if path.exists():
            doc = json.loads(path.read_bytes())
        else:
            doc = {"version": 1, "cluster_id": _new_cluster_id(), "topics": {}}
            atomic_write(path, json.dumps(doc).encode(), fsync=self.fsync)
        self.cluster_id = doc["cluster_id"]
        for name, raw in doc["topics"].items():
            topic = Topic(name, uuid.UUID(raw["id"]), dict(raw["config"]))
            for index in range(int(raw["partitions"])):
                topic.partitions.append(self._open_partition(topic, index))
            self.topics[name] = topic
            self.by_id[topic.topic_id] = topic
        self._remove_orphans()

    def close(self) -> None:
        for topic in self.topics.values():
            for partition in topic.partitions:
                self.save_producer_state(partition)
                partition.log.close()

    def _open_partition(self, topic: Topic, index: int) -> Partition:
        directory = self.data_dir / f"{topic.name}-{index}"
        log = Log.open(directory, log_config(self.defaults, topic.config))
        producers = self._load_producer_state(topic.name, index, log)
        return Partition(topic.name, index, log, producers)

    def _remove_orphans(self) -> None:
        for child in self.data_dir.iterdir():
            if not child.is_dir() or child.name == META_DIR:
                continue
            match = _PARTITION_DIR.match(child.name)
            if match is None:
                continue
            topic = self.topics.get(match["topic"])
            if topic is None or int(match["index"]) >= len(topic.partitions):
                logger.warning("removing %s: no topic in the catalog owns it", child)
                shutil.rmtree(child, ignore_errors=True)
        state_dir = self.meta_dir / PRODUCER_STATE_DIR
        for snapshot in state_dir.iterdir():
            match = _PARTITION_DIR.match(snapshot.stem)
            if match is None or match["topic"] not in self.topics:
                snapshot.unlink(missing_ok=True)

    # -- producer state ---------------------------------------------------------------------

    def _state_path(self, topic: str, index: int) -> Path:
        return self.meta_dir / PRODUCER_STATE_DIR / f"{topic}-{index}.json"

    def _load_producer_state(self, topic: str, index: int, log: Log) -> PartitionProducers:
        path = self._state_path(topic, index)
        table, offset = PartitionProducers(), log.log_start_offset
        try:
            loaded, snapshot_offset = PartitionProducers.from_json(path.read_bytes())
            if log.log_start_offset <= snapshot_offset <= log.log_end_offset:
                table, offset = loaded, snapshot_offset
            else:
                logger.info("%s-%d: producer snapshot beyond the log; replaying", topic, index)
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError):
            logger.warning("%s-%d: unreadable producer snapshot; replaying the log", topic, index)
        if offset < log.log_end_offset:
            table.replay(header for header, _ in log.batches(offset))
        table.dirty = False
        return table

    def save_producer_state(self, partition: Partition) -> None:
        if not partition.producers.dirty:
            return
        path = self._state_path(partition.topic, partition.index)
        data = partition.producers.to_json(partition.log.log_end_offset)
        atomic_write(path, data, fsync=self.fsync)
        partition.producers.dirty = False

    # -- queries ------------------------------------------------------------------------------

    def get(self, name: str) -> Topic:
        topic = self.topics.get(name)
        if topic is None:
            raise UnknownTopicOrPartition(f"unknown topic {name!r}")
        return topic

    def partition(self, name: str, index: int) -> Partition:
        topic = self.get(name)
        if not 0 <= index < len(topic.partitions):
            raise UnknownTopicOrPartition(f"topic {name!r} has no partition {index}")
        return topic.partitions[index]

    def all_partitions(self) -> Iterator[Partition]:
        for topic in self.topics.values():
            yield from topic.partitions

    # -- administration ------------------------------------------------------------------------

    def create_topic(
        self,
        name: str,
        num_partitions: int,
        config: dict[str, str | None] | None = None,
        *,
        validate_only: bool = False,
    ) -> Topic:
        validate_topic_name(name)
        if name in self.topics:
            raise TopicAlreadyExists(f"topic {name!r} already exists")
        if not 1 <= num_partitions <= MAX_PARTITIONS:
            raise InvalidPartitions(
                f"number of partitions must be between 1 and {MAX_PARTITIONS}, got {num_partitions}"
            )
        try:
            overrides = validate_overrides(config or {})
        except ConfigError as exc:
            raise InvalidConfig(str(exc)) from None
        topic = Topic(name, uuid.uuid4(), overrides)
        if validate_only:
            return topic
        for index in range(num_partitions):
            topic.partitions.append(self._open_partition(topic, index))
        self.topics[name] = topic
        self.by_id[topic.topic_id] = topic
        self._save()
        logger.info("created topic %s with %d partitions", name, num_partitions)
        return topic

    def delete_topic(self, name: str) -> Topic:
        topic = self.get(name)
        del self.topics[name]
        del self.by_id[topic.topic_id]
        self._save()
        for partition in topic.partitions:
            partition.wake_all()
            partition.log.delete()
            self._state_path(name, partition.index).unlink(missing_ok=True)
        logger.info("deleted topic %s", name)
        return topic

    def add_partitions(self, name: str, total: int, *, validate_only: bool = False) -> Topic:
        topic = self.get(name)
        current = len(topic.partitions)
        if total <= current:
            raise InvalidPartitions(
                f"topic {name!r} has {current} partitions; the new count must be larger, "
                f"got {total}"
            )
        if total > MAX_PARTITIONS:
            raise InvalidPartitions(f"at most {MAX_PARTITIONS} partitions per topic")
        if validate_only:
            return topic
        for index in range(current, total):
            topic.partitions.append(self._open_partition(topic, index))
        self._save()
        return topic

    def set_config(
        self, name: str, overrides: dict[str, str], *, validate_only: bool = False
    ) -> None:
        """Replace the topic's overrides (already merged by the caller) and apply them."""
        topic = self.get(name)
        try:
            clean = validate_overrides(overrides)
        except ConfigError as exc:
            raise InvalidConfig(str(exc)) from None
        if validate_only:
            return
        topic.config = clean
        cfg = log_config(self.defaults, clean)
        for partition in topic.partitions:
            partition.log.update_config(cfg)
        self._save()

    def _save(self) -> None:
        doc = {
            "version": 1,
            "cluster_id": self.cluster_id,
            "topics": {
                topic.name: {
                    "id": str(topic.topic_id),
                    "partitions": len(topic.partitions),
                    "config": topic.config,
                }
                for topic in self.topics.values()
            },
        }
        atomic_write(
            self.meta_dir / CATALOG_FILE, json.dumps(doc, indent=1).encode(), fsync=self.fsync
        )


def _new_cluster_id() -> str:
    # Kafka cluster ids are 22-character URL-safe base64 of a UUID.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
