"""Value types of the event store: what goes in, what comes out, and where it sits.

- `NewEvent` is what a caller appends. Its `event_id` is fixed when the object is built, so
  appending the same `NewEvent` twice (a retry after a lost reply) stores it once. Generated
  ids are version 7 UUIDs (RFC 9562: milliseconds since the epoch, then 74 random bits): being
  time-ordered, each lands at the end of the event-id unique index rather than on a random page
  of it, which keeps an append's index writes (and the WAL it syncs) small as the store grows.
- `RecordedEvent` is what reads return: the event plus its place in its stream (`version`,
  from 1) and in the global order (`position`, from 1, strictly increasing in commit order).
- `StreamState` holds the symbolic expected versions `ANY`, `NO_STREAM` and `STREAM_EXISTS`;
  an `int` expected version means "the stream's last version is exactly this" (0 = empty).
- The *category* of a stream is the part of its id before the first '-' ("account-42" is in
  category "account"; an id without '-' is its own category), as in EventStoreDB and Message DB.
"""

from __future__ import annotations

import enum
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from firth.eventsourcing.codec import decode, decode_many, uuid_from_bytes


class StreamState(enum.Enum):
    """Symbolic expected states for `append`."""

    ANY = "any"
    NO_STREAM = "no-stream"
    STREAM_EXISTS = "stream-exists"

    def __str__(self) -> str:
        return self.value


ANY = StreamState.ANY
NO_STREAM = StreamState.NO_STREAM
STREAM_EXISTS = StreamState.STREAM_EXISTS

ExpectedVersion = int | StreamState


def category_of(stream_id: str) -> str:
    """The category of a stream id: the text before its first '-'."""
    return stream_id.split("-", 1)[0]


_V7_CLEAR = ~((0xF << 76) | (0x3 << 62))  # the version and variant bits
_V7_SET = (0x7 << 76) | (0x2 << 62)  # version 7, RFC 9562 variant
_UNKNOWN = uuid.SafeUUID.unknown


def _new_event_id() -> uuid.UUID:
    """A version 7 UUID, built without `uuid.UUID.__init__`'s argument checks (most of the cost
    of creating a `NewEvent`); the value is valid by construction."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    event_id = object.__new__(uuid.UUID)
    object.__setattr__(event_id, "int", value & _V7_CLEAR | _V7_SET)
    object.__setattr__(event_id, "is_safe", _UNKNOWN)
    return event_id


def new_event_ids(count: int) -> list[uuid.UUID]:
    """`count` version 7 UUIDs as `NewEvent` generates them, from one clock read and one
    `os.urandom` call for all (a system call per id was a fifth of saving a 1,000-event batch
    through `Repository.save`)."""
    millis = (time.time_ns() // 1_000_000) << 80
    random = os.urandom(10 * count)
    new, set_, from_bytes, cls = object.__new__, object.__setattr__, int.from_bytes, uuid.UUID
    ids = []
    for start in range(0, 10 * count, 10):
        event_id = new(cls)
        set_(
            event_id,
            "int",
            (millis | from_bytes(random[start : start + 10], "big")) & _V7_CLEAR | _V7_SET,
        )
        set_(event_id, "is_safe", _UNKNOWN)
        ids.append(event_id)
    return ids


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append. `data` and `metadata` must be JSON-serialisable."""

    type: str
    data: Any
    metadata: dict[str, Any] | None = None
    event_id: uuid.UUID = field(default_factory=_new_event_id)

    def __post_init__(self) -> None:
        if self.event_id is None:
            object.__setattr__(self, "event_id", _new_event_id())
        elif not isinstance(self.event_id, uuid.UUID):
            object.__setattr__(self, "event_id", uuid.UUID(str(self.event_id)))
        if not isinstance(self.type, str) or not self.type:
            raise ValueError("an event type must be a non-empty string")


class RecordedEvent:
    """A stored event. `position` is global (from 1), `version` is within its stream (from 1).

    A read-only value, equal to another with the same fields. Reads build thousands of these
    per second, so it is a `__slots__` class with a plain constructor rather than a frozen
    dataclass (whose per-field `object.__setattr__` was half the cost of reading an event), and
    the fields a reader often ignores are decoded on first access and kept: `metadata` (the
    backends pass its JSON text, or None for {}), `event_id` (16 bytes) and `recorded_at`
    (seconds since the epoch). Built by hand, the constructor takes the decoded values.
    """

    __slots__ = (
        "_data",
        "_event_id",
        "_metadata",
        "_position",
        "_recorded_at",
        "_stream_id",
        "_type",
        "_version",
    )
    __match_args__ = (
        "position",
        "stream_id",
        "version",
        "type",
        "data",
        "metadata",
        "event_id",
        "recorded_at",
    )

    def __init__(
        self,
        position: int,
        stream_id: str,
        version: int,
        type: str,
        data: Any,
        metadata: dict[str, Any] | str | None,
        event_id: uuid.UUID | bytes,
        recorded_at: datetime | float,
    ) -> None:
        self._position = position
        self._stream_id = stream_id
        self._version = version
        self._type = type
        self._data = data
        self._metadata = metadata
        self._event_id = event_id
        self._recorded_at = recorded_at

    # The eager fields are read through C accessors (half the cost of a Python getter); a
    # property without a setter also makes assignment fail, as on a frozen dataclass.
    if TYPE_CHECKING:

        @property
        def position(self) -> int: ...
        @property
        def stream_id(self) -> str: ...
        @property
        def version(self) -> int: ...
        @property
        def type(self) -> str: ...
        @property
        def data(self) -> Any: ...

    else:
        position = property(attrgetter("_position"), doc="Place in the global order, from 1.")
        stream_id = property(attrgetter("_stream_id"))
        version = property(attrgetter("_version"), doc="Place in its stream, from 1.")
        type = property(attrgetter("_type"))
        data = property(attrgetter("_data"))

    @property
    def metadata(self) -> dict[str, Any]:
        value = self._metadata
        if value is None or value.__class__ is str:
            value = self._metadata = decode(value) or {}  # type: ignore[arg-type]
        return value  # type: ignore[return-value]

    @property
    def event_id(self) -> uuid.UUID:
        value = self._event_id
        if value.__class__ is bytes:
            value = self._event_id = uuid_from_bytes(value)  # type: ignore[arg-type]
        return value  # type: ignore[return-value]

    @property
    def recorded_at(self) -> datetime:
        value = self._recorded_at
        if not isinstance(value, datetime):
            value = self._recorded_at = datetime.fromtimestamp(value, UTC)  # type: ignore[arg-type]
        return value  # type: ignore[return-value]

    @property
    def category(self) -> str:
        return category_of(self._stream_id)

    def _fields(self) -> tuple[Any, ...]:
        return (
            self._position,
            self._stream_id,
            self._version,
            self._type,
            self._data,
            self.metadata,
            self.event_id,
            self.recorded_at,
        )

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={value!r}"
            for name, value in zip(self.__match_args__, self._fields(), strict=True)
        )
        return f"RecordedEvent({fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (RecordedEvent, self._fields())


_new = object.__new__


def recorded_events(rows: list[tuple[Any, ...]]) -> list[RecordedEvent]:
    """Records from rows of (position, stream_id, version, type, data JSON text, metadata
    JSON text or None, event id bytes, recorded_at), the data of a page decoded in one call.

    Each record is allocated and its slots stored right here, as `__init__` would store them:
    calling the class runs `__init__` in a frame of its own per event, which was a third of
    building a record (callgrind, 500-row page: 2,940 -> 2,110 instructions per record)."""
    datas = decode_many([row[4] for row in rows])
    records: list[RecordedEvent] = []
    append = records.append
    cls = RecordedEvent
    for (position, stream_id, version, type_, _, metadata, event_id, recorded_at), data in zip(
        rows, datas, strict=True
    ):
        record = _new(cls)
        record._position = position
        record._stream_id = stream_id
        record._version = version
        record._type = type_
        record._data = data
        record._metadata = metadata
        record._event_id = event_id
        record._recorded_at = recorded_at
        append(record)
    return records


@dataclass(frozen=True, slots=True)
class StreamMetadata:
    """Per-stream read limits, as in EventStoreDB.

    - `max_age`: seconds; older events are hidden from `read_stream`.
    - `max_count`: only the last N events are visible in `read_stream`.
    - `truncate_before`: versions below it are hidden from `read_stream`.
    - `deleted`: set by a soft delete; the stream reads as empty until appended to again.

    Hidden events stay in the global order (`read_all`, subscriptions, the outbox) until
    `EventStore.scavenge()` removes them for good.
    """

    max_age: float | None = None
    max_count: int | None = None
    truncate_before: int | None = None
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """One line of `EventStore.list_streams()`."""

    stream_id: str
    version: int
    event_count: int
    last_position: int
    last_recorded_at: datetime


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A saved aggregate state: `state` as of stream `version`."""

    stream_id: str
    version: int
    type: str
    state: Any
    recorded_at: datetime
