"""`RecordedEvent` as a value (read-only, equal by fields, lazily decoded fields that read the
same as eagerly built ones) and `codec.decode_many`, the page decoder reads use."""

from __future__ import annotations

import pickle
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from firth.eventsourcing import EventStore, NewEvent, RecordedEvent
from firth.eventsourcing.codec import decode, decode_many

EVENT_ID = uuid.UUID("0190b8a4-1c2d-7e3f-8a9b-0c1d2e3f4a5b")
WHEN = datetime(2026, 11, 27, 1, 2, 3, 456000, tzinfo=UTC)


def built() -> RecordedEvent:
    return RecordedEvent(7, "account-1", 3, "Deposited", {"amount": 5}, {"by": "x"}, EVENT_ID, WHEN)


def from_row() -> RecordedEvent:
    """The same event as the backends build it: metadata as JSON text, id as bytes, time as
    seconds since the epoch."""
    return RecordedEvent(
        7,
        "account-1",
        3,
        "Deposited",
        {"amount": 5},
        '{"by":"x"}',
        EVENT_ID.bytes,
        WHEN.timestamp(),
    )


def test_raw_fields_decode_on_access_to_the_documented_types() -> None:
    event = from_row()
    assert event.metadata == {"by": "x"}
    assert event.event_id == EVENT_ID and isinstance(event.event_id, uuid.UUID)
    assert event.recorded_at == WHEN and event.recorded_at.tzinfo is UTC
    assert event.category == "account"


def test_decoded_fields_are_kept_so_changes_to_metadata_persist() -> None:
    event = from_row()
    assert event.metadata is event.metadata
    assert event.event_id is event.event_id
    assert event.recorded_at is event.recorded_at


def test_absent_metadata_reads_as_an_empty_dict() -> None:
    event = RecordedEvent(1, "s", 1, "T", None, None, EVENT_ID.bytes, 0.0)
    assert event.metadata == {}


def test_equal_by_fields_whether_built_or_read() -> None:
    assert from_row() == built()
    assert from_row() != RecordedEvent(8, "account-1", 3, "Deposited", {}, None, EVENT_ID, WHEN)
    assert built() != (7, "account-1")


def test_hash_follows_the_fields_when_they_are_hashable() -> None:
    one = RecordedEvent(1, "s", 1, "T", 5, {}, EVENT_ID, WHEN)
    with pytest.raises(TypeError):  # metadata is a dict, as with the frozen dataclass before
        hash(one)


@pytest.mark.parametrize("field", [*RecordedEvent.__match_args__, "category"])
def test_fields_cannot_be_assigned(field: str) -> None:
    event = built()
    with pytest.raises(AttributeError):
        setattr(event, field, 1)


def test_repr_names_every_field() -> None:
    text = repr(from_row())
    for name in RecordedEvent.__match_args__:
        assert f"{name}=" in text
    assert "UUID(" in text and "datetime.datetime(" in text


def test_pickles_and_matches_by_field() -> None:
    event = from_row()
    assert pickle.loads(pickle.dumps(event)) == event
    match event:
        case RecordedEvent(position=7, type="Deposited", data={"amount": amount}):
            assert amount == 5
        case _:
            pytest.fail("the pattern did not match")


def test_decode_many_matches_decode_one_by_one() -> None:
    texts = ['{"a":[1,2,{"b":null}]}', "3", '"x,y"', "[]", "null", '{"s":"]["}']
    assert decode_many(texts) == [decode(text) for text in texts]
    assert decode_many([]) == []


def test_decode_many_falls_back_on_anything_that_is_not_one_json_value_each() -> None:
    assert decode_many([None, "1"]) == [None, 1]  # type: ignore[list-item]
    # "1,2" and "3" join into a valid three-item array; one by one, "1,2" is refused
    with pytest.raises(ValueError):
        decode("1,2")
    with pytest.raises(ValueError):
        decode_many(["1,2", "3"])


def test_a_store_reads_back_what_it_stored(tmp_path: Path) -> None:
    store = EventStore.open(f"sqlite:///{tmp_path}/records.db")
    try:
        first = NewEvent("Opened", {"owner": "x"}, {"trace": "t1"})
        second = NewEvent("Deposited", [1, "two", None])
        store.append("account-9", [first, second])
        read = list(store.read_all())
        assert [(e.position, e.version, e.type, e.data, e.metadata) for e in read] == [
            (1, 1, "Opened", {"owner": "x"}, {"trace": "t1"}),
            (2, 2, "Deposited", [1, "two", None], {}),
        ]
        assert [e.event_id for e in read] == [first.event_id, second.event_id]
        assert read == list(store.read_stream("account-9"))
    finally:
        store.close()


def test_read_times_are_the_stored_times_to_the_microsecond(store: EventStore) -> None:
    """Reads carry the time as seconds since the epoch and decode it on access; it must be
    the very time stored (list_streams reads the column as a timestamp)."""
    for number in range(5):
        store.append(f"clock-{number}", [NewEvent("Ticked", {"n": number})])
    by_stream = {info.stream_id: info.last_recorded_at for info in store.list_streams()}
    for event in store.read_all():
        assert event.recorded_at == by_stream[event.stream_id]
        assert event.recorded_at.tzinfo is not None
