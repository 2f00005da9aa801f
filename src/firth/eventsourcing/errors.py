"""The event store's error tree.

Every failure the event-sourcing layer reports is an `EventStoreError`. Driver exceptions
(`sqlite3.Error`, `psycopg.Error`) never escape a backend: each backend translates them at one
choke point into the classes below, so callers handle one tree whatever the backend. Each class
carries a short stable `code` (like a wire error code) that the CLI prints and logs can grep.
"""

from __future__ import annotations


class EventStoreError(Exception):
    """Base of every event store error."""

    code = "event-store-error"


class ConcurrencyError(EventStoreError):
    """The stream was not in the expected state; nothing was appended.

    `actual_version` is the stream's version when the append was refused (0 = no events).
    """

    code = "wrong-expected-version"

    def __init__(self, stream_id: str, expected: object, actual_version: int) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual_version = actual_version
        super().__init__(
            f"stream {stream_id!r}: expected version {expected}, actual version {actual_version}"
        )


class DuplicateEventError(EventStoreError):
    """An event id of the batch is already stored, but not as this exact append (so it is not
    an idempotent retry): another stream holds it, or only part of the batch was stored."""

    code = "duplicate-event-id"

    def __init__(self, stream_id: str, event_id: object) -> None:
        self.stream_id = stream_id
        self.event_id = event_id
        super().__init__(f"event id {event_id} is already stored and not as part of this append")


class SerializationError(EventStoreError):
    """Event data or metadata cannot be stored as JSON; nothing was appended."""

    code = "unserialisable"


class UnknownEventType(EventStoreError):
    """A stored event's type has no registered class (raised while loading an aggregate)."""

    code = "unknown-event-type"

    def __init__(self, type_name: str, stream_id: str, version: int) -> None:
        self.type_name = type_name
        self.stream_id = stream_id
        self.version = version
        super().__init__(
            f"unknown event type {type_name!r} at {stream_id!r} version {version}; "
            f"register a class for it"
        )


class NotAnEventStore(EventStoreError):
    """The URL names something that is not (and cannot become) a Firth event store."""

    code = "not-an-event-store"


class StoreUnavailable(EventStoreError):
    """The database connection failed or was lost; the operation did not complete.

    An append that raises this was rolled back by the database (a transaction that loses its
    connection never commits), unless the connection was lost exactly while committing; a retry
    of the same `NewEvent` objects is safe because appends are idempotent by event id.
    """

    code = "store-unavailable"


class LeaseHeld(EventStoreError):
    """Another process holds the lease (for example another outbox relay)."""

    code = "lease-held"


class LeaseLost(EventStoreError):
    """A lease's holder lost it (its database session ended); stop the work it guarded."""

    code = "lease-lost"


class InvalidURL(EventStoreError):
    """`EventStore.open` got a URL it does not understand."""

    code = "invalid-url"
