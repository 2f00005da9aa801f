"""The store against a trivial model: random appends (all expected-version kinds, retries of
stored batches) must behave exactly like a dict of lists plus one global list."""

from __future__ import annotations

import itertools
import tempfile
import uuid

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firth.eventsourcing import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    ConcurrencyError,
    EventStore,
    NewEvent,
)

STREAMS = ["account-1", "account-2", "order-1"]
EXPECTATIONS = ["any", "no-stream", "exists", "exact", "exact-1", "exact+1"]

operation = st.one_of(
    st.tuples(
        st.just("append"),
        st.sampled_from(STREAMS),
        st.integers(min_value=1, max_value=4),
        st.sampled_from(EXPECTATIONS),
    ),
    st.tuples(st.just("retry"), st.just(""), st.just(0), st.sampled_from(EXPECTATIONS)),
)


class Model:
    def __init__(self) -> None:
        self.streams: dict[str, list[uuid.UUID]] = {}
        self.log: list[tuple[str, uuid.UUID]] = []

    def allows(self, stream: str, kind: str, expected: object) -> bool:
        current = len(self.streams.get(stream, []))
        return {
            "any": True,
            "no-stream": current == 0,
            "exists": current > 0,
        }.get(kind, expected == current)

    def append(self, stream: str, events: list[NewEvent]) -> int:
        ids = self.streams.setdefault(stream, [])
        for event in events:
            ids.append(event.event_id)
            self.log.append((stream, event.event_id))
        return len(ids)


def expected_value(kind: str, current: int) -> object:
    return {
        "any": ANY,
        "no-stream": NO_STREAM,
        "exists": STREAM_EXISTS,
        "exact": current,
        "exact-1": max(0, current - 1),
        "exact+1": current + 1,
    }[kind]


def check(store: EventStore, operations: list[tuple[str, str, int, str]]) -> None:
    model = Model()
    last: tuple[str, list[NewEvent], int] | None = None
    for action, stream, count, kind in operations:
        if action == "retry":
            if last is None:
                continue
            stream, events, version = last
            current = store.stream_version(stream)
            # A stored batch appended again is an idempotent success whatever was expected.
            assert store.append(stream, events, expected_value(kind, current)) == version
            continue
        events = [NewEvent("E", {"n": index}) for index in range(count)]
        current = len(model.streams.get(stream, []))
        expected = expected_value(kind, current)
        if model.allows(stream, kind, expected):
            version = store.append(stream, events, expected)
            assert version == model.append(stream, events)
            last = (stream, events, version)
        else:
            with pytest.raises(ConcurrencyError) as refused:
                store.append(stream, events, expected)
            assert refused.value.actual_version == current
    stored = list(store.read_all())
    assert [(e.stream_id, e.event_id) for e in stored] == model.log
    assert [e.position for e in stored] == list(range(1, len(model.log) + 1))
    for stream, ids in model.streams.items():
        assert [e.event_id for e in store.read_stream(stream)] == ids
        assert [e.event_id for e in store.read_stream(stream, backwards=True)] == ids[::-1]
    for start in (1, len(model.log) // 2 + 1, len(model.log) + 1):
        assert [e.event_id for e in store.read_all(start)] == [i for _, i in model.log[start - 1 :]]
    assert [e.event_id for e in store.read_all(categories=["order"])] == model.streams.get(
        "order-1", []
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, max_size=25))
def test_sqlite_matches_the_model(operations: list[tuple[str, str, int, str]]) -> None:
    with (
        tempfile.TemporaryDirectory() as folder,
        EventStore.open(f"sqlite:///{folder}/m.db") as store,
    ):
        check(store, operations)


_schemas = itertools.count(1)


@pytest.mark.postgres
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(operations=st.lists(operation, max_size=25))
def test_postgresql_matches_the_model(
    pg_server, operations: list[tuple[str, str, int, str]]
) -> None:  # type: ignore[no-untyped-def]
    name = f"model_{next(_schemas)}"
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    with EventStore.open(f"{pg_server.url()}?options=-csearch_path%3D{name}") as store:
        check(store, operations)
