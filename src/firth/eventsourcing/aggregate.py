"""Domain events and the `Aggregate` base class.

An aggregate's state changes only by applying events. A command method checks invariants
against the current state, then calls `self.trigger(SomeEvent(...))`, which applies the event
(through the handler registered for its class with `@applies`) and queues it for saving. Loading
replays stored events through the very same handlers, so live state and replayed state cannot
drift apart.

Event classes subclass `DomainEvent` and are frozen dataclasses; their fields are the event's
JSON data. Their stored type name is the class name, unless the class sets `type_name`. An
aggregate class knows the event classes its handlers accept; a stored event of any other type
cannot be loaded (`UnknownEventType` names it).

State for snapshots: by default every public attribute other than `id` and `version`
(override `snapshot_state`/`restore_state` when the state is not plain JSON).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from firth.eventsourcing.errors import UnknownEventType

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
"""Each DomainEvent class's dataclass field names, in order (filled on first `to_data`)."""

_DIRECT_FIELDS: dict[type, frozenset[str] | None] = {}
"""Per DomainEvent class (filled on first `from_data`): its field names when an instance may be
built by filling its `__dict__` from the data, None when it must go through `__init__`."""

_OWN_INIT: set[type] = set()
"""DomainEvent classes whose body defines `__init__` (seen before @dataclass adds its own)."""

_new = object.__new__


def _direct_fields(cls: type) -> frozenset[str] | None:
    """The field names of `cls` if the `__init__` that @dataclass generated for it would do
    nothing but store its arguments: every field is an `__init__` argument, no `__post_init__`,
    no `__init__` of the class's own, no slots. None otherwise."""
    if (
        "__dataclass_fields__" not in cls.__dict__
        or cls in _OWN_INIT
        or not cls.__dataclass_params__.init  # type: ignore[attr-defined]
        or hasattr(cls, "__post_init__")
        or "__slots__" in cls.__dict__
    ):
        return None
    fields = dataclasses.fields(cls)
    if any(not f.init for f in fields):
        return None
    return frozenset(f.name for f in fields)


@dataclasses.dataclass(frozen=True)
class DomainEvent:
    """Base of typed events; subclasses are `@dataclass(frozen=True)` with JSON-able fields."""

    type_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            _OWN_INIT.add(cls)
        if "type_name" not in cls.__dict__ or not cls.__dict__["type_name"]:
            cls.type_name = cls.__name__

    def to_data(self) -> dict[str, Any]:
        names = _FIELD_NAMES.get(type(self))
        if names is None:  # dataclasses.fields() is most of the cost: look it up once per class
            names = _FIELD_NAMES[type(self)] = tuple(f.name for f in dataclasses.fields(self))
        return {name: getattr(self, name) for name in names}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> DomainEvent:
        """The event whose fields are `data`. When the data names exactly the class's fields
        and its generated `__init__` would only store them, the instance is filled directly
        (a frozen dataclass's `__init__` sets each field through `object.__setattr__`, most of
        the cost of decoding an event); anything else (missing fields with defaults, unknown
        names, a `__post_init__`) goes through `__init__`, with its checks and errors."""
        try:
            names = _DIRECT_FIELDS[cls]
        except KeyError:
            names = _DIRECT_FIELDS[cls] = _direct_fields(cls)
        if names is not None and data.__class__ is dict and data.keys() == names:
            event = _new(cls)
            event.__dict__.update(data)
            return event
        return cls(**data)


def _decoding(event_class: type[DomainEvent]) -> tuple[type[DomainEvent], frozenset[str] | None]:
    """How `Aggregate.decode_event` decodes `event_class`: (the class, its field names) when
    `DomainEvent.from_data`'s direct fill applies to it (the class keeps that `from_data` and
    its generated `__init__` would only store the fields), (the class, None) when its own
    `from_data` must be called."""
    if getattr(event_class.from_data, "__func__", None) is not _FROM_DATA:
        return event_class, None
    names = _DIRECT_FIELDS.get(event_class) or _direct_fields(event_class)
    _DIRECT_FIELDS[event_class] = names
    return event_class, names


_FROM_DATA = DomainEvent.from_data.__func__  # type: ignore[attr-defined]


E = TypeVar("E", bound=DomainEvent)
Handler = Callable[[Any, Any], None]


def applies(event_class: type[E]) -> Callable[[Callable[[Any, E], None]], Callable[[Any, E], None]]:
    """Mark a method as the handler that applies `event_class` to the aggregate's state."""

    def mark(method: Callable[[Any, E], None]) -> Callable[[Any, E], None]:
        method.__firth_applies__ = event_class  # type: ignore[attr-defined]
        return method

    return mark


class Aggregate:
    """Base of event-sourced aggregates.

    Subclasses set `category` (the stream id prefix; default: the class name in lower case)
    and write `__init__(self, id)` that calls `super().__init__(id)` and sets initial state.
    `version` is the version of the last event applied (stored or pending).
    """

    category: ClassVar[str] = ""
    _handlers: ClassVar[dict[type[DomainEvent], Handler]] = {}
    _event_classes: ClassVar[dict[str, type[DomainEvent]]] = {}
    _decoders: ClassVar[dict[str, tuple[type[DomainEvent], frozenset[str] | None]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("category"):
            cls.category = cls.__name__.lower()
        handlers = dict(cls._handlers)
        for attribute in vars(cls).values():
            event_class = getattr(attribute, "__firth_applies__", None)
            if event_class is not None:
                handlers[event_class] = attribute
        cls._handlers = handlers
        cls._event_classes = {event_class.type_name: event_class for event_class in handlers}
        cls._decoders = {}  # filled on first use: from_data may be set after this class

    def __init__(self, id: str) -> None:
        self.id = id
        self.version = 0
        self._pending: list[DomainEvent] = []

    @classmethod
    def stream_id_for(cls, id: str) -> str:
        return f"{cls.category}-{id}"

    @property
    def stream_id(self) -> str:
        return self.stream_id_for(self.id)

    def trigger(self, event: DomainEvent) -> None:
        """Apply a new event and queue it for the next save."""
        self.apply(event)
        self._pending.append(event)

    def apply(self, event: DomainEvent) -> None:
        handler = self._handlers.get(type(event))
        if handler is None:
            raise TypeError(
                f"{type(self).__name__} has no @applies handler for {type(event).__name__}"
            )
        handler(self, event)
        self.version += 1

    def collect_pending(self) -> list[DomainEvent]:
        """The events triggered since the last save, in order (the list is emptied)."""
        pending, self._pending = self._pending, []
        return pending

    @property
    def pending(self) -> tuple[DomainEvent, ...]:
        return tuple(self._pending)

    @classmethod
    def decode_event(cls, type_name: str, data: Any, stream_id: str, version: int) -> DomainEvent:
        """The domain event of a stored event. `DomainEvent.from_data`'s direct fill is done
        here, inline (one Python call per event where calling a decoder made two; this is what
        a projection or a replay pays per event); a class with its own `from_data` gets it."""
        try:
            event_class, names = cls._decoders[type_name]
        except KeyError:
            known = cls._event_classes.get(type_name)
            if known is None:
                raise UnknownEventType(type_name, stream_id, version) from None
            event_class, names = cls._decoders[type_name] = _decoding(known)
        if names is None:
            return event_class.from_data(data)
        if type(data) is dict and data.keys() == names:
            event = _new(event_class)
            event.__dict__.update(data)
            return event
        return event_class(**data)

    def snapshot_state(self) -> dict[str, Any]:
        return {
            name: value
            for name, value in vars(self).items()
            if not name.startswith("_") and name not in ("id", "version")
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)
