"""`EventStore.read_all_pages`: the pages are those of `read_all` cut at `page_size`, with or
without the read-ahead of the next page (PostgreSQL reads it on a second connection)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest

from firth.eventsourcing import EventStore, NewEvent, RecordedEvent


def fill(store: EventStore) -> None:
    for index in range(23):
        category = "acct" if index % 3 else "order"
        kind = "Added" if index % 2 else "Removed"
        store.append(f"{category}-{index % 5}", [NewEvent(kind, {"n": index})])


def positions(pages: list[list[RecordedEvent]]) -> list[list[int]]:
    return [[event.position for event in page] for page in pages]


def sequential(store: EventStore) -> contextlib.AbstractContextManager[None]:
    """The store with its read-ahead turned off (pages read one after the other)."""
    return _patched(store, lambda: contextlib.nullcontext(None))


@contextlib.contextmanager
def _patched(store: EventStore, page_reader: object) -> Iterator[None]:
    store._page_reader = page_reader  # type: ignore[method-assign]
    try:
        yield
    finally:
        del store._page_reader


@pytest.mark.parametrize("page_size", [1, 4, 23, 100])
@pytest.mark.parametrize("start", [1, 6, 23, 24])
def test_pages_cut_read_all_in_order(store: EventStore, page_size: int, start: int) -> None:
    fill(store)
    expected = [event.position for event in store.read_all(start)]
    pages = list(store.read_all_pages(start, page_size=page_size))
    assert all(pages) and all(len(page) <= page_size for page in pages)
    assert all(len(page) == page_size for page in pages[:-1])
    assert [p for page in positions(pages) for p in page] == expected
    with sequential(store):
        assert positions(list(store.read_all_pages(start, page_size=page_size))) == positions(pages)


def test_filters_apply_to_every_page(store: EventStore) -> None:
    fill(store)
    expected = list(store.read_all(1, types=["Added"], categories=["acct"]))
    pages = list(store.read_all_pages(1, ["Added"], ["acct"], page_size=2))
    assert [event for page in pages for event in page] == expected
    assert all(e.type == "Added" and e.category == "acct" for e in expected)


def test_empty_store_gives_no_pages(store: EventStore) -> None:
    assert list(store.read_all_pages(1, page_size=5)) == []


def test_page_size_must_be_positive(store: EventStore) -> None:
    with pytest.raises(ValueError):
        list(store.read_all_pages(1, page_size=0))


def test_an_event_committed_during_the_read_ahead_is_read_later_or_now(
    store: EventStore,
) -> None:
    fill(store)
    pages = store.read_all_pages(1, page_size=23)
    assert len(next(pages)) == 23
    # The read-ahead of the next page may already have run: the store is read again after a
    # full page, so an event committed now is in a later page, never skipped.
    store.append("acct-9", [NewEvent("Added", {"n": 99})])
    rest = [event.position for page in pages for event in page]
    assert rest in ([], [24])
    assert [e.position for page in store.read_all_pages(24, page_size=23) for e in page] == [24]


def test_abandoned_iteration_frees_the_reader(store: EventStore) -> None:
    fill(store)
    pages = store.read_all_pages(1, page_size=2)
    assert len(next(pages)) == 2
    pages.close()  # its read-ahead is waited for and the reader given back
    assert [len(page) for page in store.read_all_pages(1, page_size=10)] == [10, 10, 3]


@pytest.mark.postgres
def test_postgresql_reads_ahead_on_its_own_connection(pg_url: str) -> None:
    with EventStore.open(pg_url) as store:
        fill(store)
        threads: set[str] = set()
        reader = store._page_reader

        @contextlib.contextmanager
        def watched() -> Iterator[object]:
            with reader() as read_page:
                assert read_page is not None

                def read(*args: object) -> list[RecordedEvent]:
                    threads.add(threading.current_thread().name)
                    return read_page(*args)  # type: ignore[arg-type, no-any-return]

                yield read

        with _patched(store, watched):
            pages = list(store.read_all_pages(1, page_size=5))
        assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
        assert threads and all(name.startswith("firth-read-ahead") for name in threads)


@pytest.mark.postgres
def test_postgresql_second_concurrent_read_falls_back_to_the_store_connection(
    pg_url: str,
) -> None:
    with EventStore.open(pg_url) as store:
        fill(store)
        outer = store.read_all_pages(1, page_size=4)
        first = next(outer)  # holds the read-ahead connection
        with store._page_reader() as read_page:
            assert read_page is None
        inner = [e.position for page in store.read_all_pages(1, page_size=4) for e in page]
        assert inner == list(range(1, 24))
        assert [e.position for e in first] + [e.position for p in outer for e in p] == inner
