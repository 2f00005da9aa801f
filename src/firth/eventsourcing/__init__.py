"""Event sourcing on Firth: an event store (SQLite embedded, PostgreSQL), aggregates,
repositories with snapshots, projections and an exactly-once outbox to Kafka topics.

Start at `EventStore.open(url)` (synchronous) or `await AsyncEventStore.open(url)`;
docs/eventsourcing.md has the tutorial, the schema and the guarantees.
"""

from firth.eventsourcing.aio import AsyncEventStore
from firth.eventsourcing.errors import (
    ConcurrencyError,
    DuplicateEventError,
    EventStoreError,
    InvalidURL,
    LeaseHeld,
    LeaseLost,
    NotAnEventStore,
    SerializationError,
    StoreUnavailable,
    UnknownEventType,
)
from firth.eventsourcing.records import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamInfo,
    StreamMetadata,
    StreamState,
    category_of,
)
from firth.eventsourcing.store import EventStore, Lease, Subscription, Transaction

__all__ = [
    "ANY",
    "NO_STREAM",
    "STREAM_EXISTS",
    "AsyncEventStore",
    "ConcurrencyError",
    "DuplicateEventError",
    "EventStore",
    "EventStoreError",
    "ExpectedVersion",
    "InvalidURL",
    "Lease",
    "LeaseHeld",
    "LeaseLost",
    "NewEvent",
    "NotAnEventStore",
    "RecordedEvent",
    "SerializationError",
    "Snapshot",
    "StoreUnavailable",
    "StreamInfo",
    "StreamMetadata",
    "StreamState",
    "Subscription",
    "Transaction",
    "UnknownEventType",
    "category_of",
]
