"""`DomainEvent.from_data`: the direct fill gives what `__init__` gives, and every class or
data it does not cover still goes through `__init__` (defaults, checks, `__post_init__`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from firth.eventsourcing.aggregate import Aggregate, DomainEvent, applies
from firth.eventsourcing.errors import UnknownEventType


@dataclasses.dataclass(frozen=True)
class Moved(DomainEvent):
    x: int
    y: int


@dataclasses.dataclass(frozen=True)
class Noted(DomainEvent):
    text: str
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Doubled(DomainEvent):
    amount: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", self.amount * 2)


@dataclasses.dataclass(frozen=True)
class Renamed(DomainEvent):
    name: str

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "name", name.upper())


@dataclasses.dataclass(frozen=True, slots=True)
class Slotted(DomainEvent):
    value: int


@dataclasses.dataclass(frozen=True)
class Counted(DomainEvent):
    value: int
    seen: int = dataclasses.field(default=0, init=False)


def test_filled_event_equals_the_constructed_one() -> None:
    event = Moved.from_data({"x": 1, "y": 2})
    assert type(event) is Moved
    assert event == Moved(1, 2)
    assert hash(event) == hash(Moved(1, 2))
    assert repr(event) == "Moved(x=1, y=2)"
    assert event.to_data() == {"x": 1, "y": 2}


def test_filled_event_is_frozen_and_does_not_share_the_data_dict() -> None:
    data = {"x": 1, "y": 2}
    event = Moved.from_data(data)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.x = 5  # type: ignore[misc]
    data["x"] = 9
    assert event.x == 1


def test_missing_field_with_default_goes_through_init() -> None:
    assert Noted.from_data({"text": "t"}) == Noted("t", [])
    assert Noted.from_data({"text": "t", "tags": ["a"]}) == Noted("t", ["a"])


@pytest.mark.parametrize("data", [{"x": 1}, {"x": 1, "y": 2, "z": 3}, {"y": 2, "z": 3}])
def test_wrong_field_names_are_refused_by_init(data: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        Moved.from_data(data)


def test_post_init_runs() -> None:
    assert Doubled.from_data({"amount": 2}).amount == 4


def test_own_init_runs() -> None:
    assert Renamed.from_data({"name": "ab"}).name == "AB"


def test_slotted_and_non_init_fields_go_through_init() -> None:
    assert Slotted.from_data({"value": 3}) == Slotted(3)
    assert Counted.from_data({"value": 3}).seen == 0
    with pytest.raises(TypeError):
        Counted.from_data({"value": 3, "seen": 1})


def test_data_that_is_not_a_dict_goes_through_init() -> None:
    class Keys(dict[str, Any]):
        pass

    assert Moved.from_data(Keys(x=1, y=2)) == Moved(1, 2)


@dataclasses.dataclass(frozen=True)
class Scaled(DomainEvent):
    value: int

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> DomainEvent:
        return cls(data["value"] * 10)


class Board(Aggregate):
    @applies(Moved)
    def _moved(self, event: Moved) -> None:
        pass

    @applies(Doubled)
    def _doubled(self, event: Doubled) -> None:
        pass

    @applies(Scaled)
    def _scaled(self, event: Scaled) -> None:
        pass


def test_aggregate_decodes_each_type_as_from_data_does() -> None:
    for _ in range(2):  # the first call builds the type's decoder, the second uses it
        assert Board.decode_event("Moved", {"x": 1, "y": 2}, "board-1", 1) == Moved(1, 2)
        assert Board.decode_event("Doubled", {"amount": 3}, "board-1", 2) == Doubled(3)
        assert Board.decode_event("Scaled", {"value": 2}, "board-1", 3) == Scaled(20)
        with pytest.raises(TypeError):
            Board.decode_event("Moved", {"x": 1}, "board-1", 4)


def test_aggregate_refuses_an_unknown_type() -> None:
    with pytest.raises(UnknownEventType) as raised:
        Board.decode_event("Jumped", {}, "board-1", 5)
    assert "Jumped" in str(raised.value)
