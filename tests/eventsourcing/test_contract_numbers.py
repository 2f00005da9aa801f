"""The event store contract for numbers: every test runs on SQLite and on PostgreSQL, and what
is read back is what was appended, with the same types (a float stays a float, bit for bit;
an int stays an int), in event data, metadata and snapshot state, at any depth.

PostgreSQL keeps JSON numbers as `numeric`; a float it would take for an integer (1e16, written
"1e+16" by Python) must still come back a float. The one thing jsonb cannot hold is the sign of
-0.0; that is pinned down here too, backend by backend."""

from __future__ import annotations

import dataclasses
import math
import struct
from typing import Any

from firth.eventsourcing import EventStore, NewEvent
from firth.eventsourcing.aggregate import Aggregate, DomainEvent, applies
from firth.eventsourcing.repository import Repository

from .test_codec import identical, random_finite_floats


@dataclasses.dataclass(frozen=True)
class Measured(DomainEvent):
    value: Any


class Gauge(Aggregate):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.readings: list[Any] = []

    @applies(Measured)
    def _measured(self, event: Measured) -> None:
        self.readings.append(event.value)


FLOATS: list[float] = [
    1e16,
    -1e16,
    1e300,
    -2.5e20,
    1.5e300,
    1.2345678901234567e16,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    9007199254740992.0,
    1e15,
    0.0,
    0.1,
    -2.5,
    1e-05,
    -1.5e-07,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
]
INTS: list[int] = [0, -1, 10**16, -(10**16), 10**20, -(10**30), 2**63, 10**300]
STRINGS: list[str] = ["1e+16", "e+", '"1e+16" \\e+ ✓']


def sample() -> dict[str, Any]:
    """Every number at the top of a list, nested in lists and dicts, and beside strings that
    look like the numbers in question."""
    return {
        "floats": FLOATS,
        "ints": INTS,
        "strings": STRINGS,
        "nested": {"deep": [[1e16, {"x": -2.5e20, "1e+16": [1.5e300, 10**20]}]], "n": 1e-05},
        "mixed": [1e16, 10**16, "1e+16", 1.0, 1],
    }


def test_data_and_metadata_read_back_identical(store: EventStore) -> None:
    data, metadata = sample(), {"m": sample(), "big": 1e16}
    store.append("s-1", [NewEvent("E", data, metadata=metadata), NewEvent("F", FLOATS, INTS)])
    by_stream = list(store.read_stream("s-1"))
    by_position = list(store.read_all())
    backwards = list(store.read_stream("s-1", backwards=True))[::-1]
    for recorded in (by_stream, by_position, backwards):
        assert identical(recorded[0].data, data)
        assert identical(recorded[0].metadata, metadata)
        assert identical(recorded[1].data, FLOATS)
        assert identical(recorded[1].metadata, INTS)


def test_a_float_is_never_read_back_as_an_int(store: EventStore) -> None:
    store.append("s-1", [NewEvent("E", {"value": 1e16}, metadata={"value": 1e16})])
    (recorded,) = store.read_stream("s-1")
    assert type(recorded.data["value"]) is float and recorded.data["value"] == 1e16
    assert type(recorded.metadata["value"]) is float


def test_top_level_numbers_read_back_identical(store: EventStore) -> None:
    values: list[Any] = [1e16, -2.5e20, 1.5e300, 1e-05, 5e-324, 10**20, 7]
    store.append("s-1", [NewEvent("E", value, metadata=value) for value in values])
    for recorded, value in zip(store.read_all(), values, strict=True):
        assert identical(recorded.data, value)
        assert identical(recorded.metadata, value)


def test_a_batch_of_random_floats_reads_back_identical(store: EventStore) -> None:
    """1,000 events of floats from random bit patterns, every exponent equally likely."""
    floats = random_finite_floats(5_000, seed=1127)
    batch = [
        NewEvent("E", floats[i : i + 5], metadata={"f": floats[i]}) for i in range(0, 5_000, 5)
    ]
    store.append("s-1", batch)
    recorded = list(store.read_all())
    assert len(recorded) == 1_000
    assert identical([event.data for event in recorded], [event.data for event in batch])
    assert identical([event.metadata for event in recorded], [event.metadata for event in batch])


def test_snapshot_state_reads_back_identical(store: EventStore) -> None:
    state = {"balance": 1e16, "sample": sample(), "random": random_finite_floats(500, seed=7)}
    store.save_snapshot("s-1", 3, "Account", state)
    snapshot = store.load_snapshot("s-1")
    assert snapshot is not None
    assert identical(snapshot.state, state)


def test_repository_save_and_load_keep_floats(store: EventStore) -> None:
    """`Repository.save` encodes events itself, and snapshots the aggregate's state."""
    values: list[Any] = [1e16, 10**16, -2.5e20, 1e-05, {"nested": [1.5e300]}]
    gauge = Gauge("1")
    for value in values:
        gauge.trigger(Measured(value))
    Repository(store, Gauge, snapshot_every=2).save(gauge)
    snapshot = store.load_snapshot(gauge.stream_id)
    assert snapshot is not None
    assert identical(snapshot.state["readings"], values)
    loaded = Repository(store, Gauge, use_snapshots=False).load("1")
    assert identical(loaded.readings, values)


def _sign(value: float) -> float:
    return math.copysign(1.0, value)


def test_negative_zero_reads_back_as_a_float_zero(store: EventStore) -> None:
    """A float zero on both backends; its sign only on SQLite (jsonb's numeric has no -0)."""
    store.append("s-1", [NewEvent("E", {"z": -0.0}, metadata={"z": -0.0})])
    store.save_snapshot("s-1", 1, "A", {"z": -0.0})
    (recorded,) = store.read_stream("s-1")
    snapshot = store.load_snapshot("s-1")
    assert snapshot is not None
    expected_sign = -1.0 if store.dialect == "sqlite" else 1.0
    for value in (recorded.data["z"], recorded.metadata["z"], snapshot.state["z"]):
        assert type(value) is float and value == 0.0
        assert _sign(value) == expected_sign
        assert struct.pack("<d", value) == struct.pack("<d", math.copysign(0.0, expected_sign))
