"""Projection runner: one transaction per batch for read model + checkpoint, on both backends."""

from __future__ import annotations

import threading
import time

import pytest

from firth.eventsourcing import EventStore, NewEvent, RecordedEvent, Transaction
from firth.eventsourcing import postgres as postgres_module
from firth.eventsourcing.errors import EventStoreError
from firth.eventsourcing.projections import Projection, ProjectionRunner


class Totals(Projection):
    """Sums `amount` per stream; can be told to fail at one position."""

    name = "totals"
    categories = ("acct",)

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.handled: list[int] = []

    def setup(self, tx: Transaction) -> None:
        tx.execute(
            "CREATE TABLE IF NOT EXISTS totals (stream TEXT PRIMARY KEY, total INTEGER NOT NULL)"
        )

    def reset(self, tx: Transaction) -> None:
        tx.execute("DELETE FROM totals")

    def handle(self, event: RecordedEvent, tx: Transaction) -> None:
        if event.position == self.fail_at:
            raise RuntimeError(f"handler crashed at {event.position}")
        tx.execute(
            "INSERT INTO totals VALUES (?, ?) ON CONFLICT (stream) DO UPDATE SET total = totals.total + excluded.total",
            (event.stream_id, event.data["amount"]),
        )
        self.handled.append(event.position)


def totals(store: EventStore) -> dict[str, int]:
    with store.transaction() as tx:
        return dict(tx.execute("SELECT stream, total FROM totals"))


def fill(store: EventStore, count: int, start: int = 0) -> None:
    for index in range(start, start + count):
        store.append(f"acct-{index % 4}", [NewEvent("Added", {"amount": index})])
        if index % 5 == 0:
            store.append("other-1", [NewEvent("Noise", {"amount": 1000})])


def expected_totals(count: int) -> dict[str, int]:
    result: dict[str, int] = {}
    for index in range(count):
        result[f"acct-{index % 4}"] = result.get(f"acct-{index % 4}", 0) + index
    return result


def test_catch_up_builds_read_model_and_checkpoint(store: EventStore) -> None:
    fill(store, 40)
    runner = ProjectionRunner(store, Totals(), batch_size=7)
    assert runner.run_until_caught_up() == 40
    assert totals(store) == expected_totals(40)
    last_acct = max(e.position for e in store.read_all(categories=["acct"]))
    assert runner.position == last_acct
    assert runner.run_until_caught_up() == 0


def test_restart_resumes_without_double_counting(store: EventStore) -> None:
    fill(store, 20)
    ProjectionRunner(store, Totals()).run_until_caught_up()
    fill(store, 15, start=20)
    second = Totals()
    assert ProjectionRunner(store, second).run_until_caught_up() == 15
    assert totals(store) == expected_totals(35)
    assert len(second.handled) == 15


def test_crash_mid_batch_rolls_back_change_and_checkpoint(store: EventStore) -> None:
    fill(store, 30)
    acct_positions = [e.position for e in store.read_all(categories=["acct"])]
    crashing = Totals(fail_at=acct_positions[12])
    runner = ProjectionRunner(store, crashing, batch_size=10)
    with pytest.raises(RuntimeError):
        runner.run_until_caught_up()
    # The first batch (10 events) committed; the failing batch left nothing behind.
    assert runner.position == acct_positions[9]
    assert sum(totals(store).values()) == sum(range(10))
    assert ProjectionRunner(store, Totals(), batch_size=10).run_until_caught_up() == 20
    assert totals(store) == expected_totals(30)


def test_a_failed_batch_gives_the_read_ahead_back(store: EventStore) -> None:
    fill(store, 30)
    acct_positions = [e.position for e in store.read_all(categories=["acct"])]
    runner = ProjectionRunner(store, Totals(fail_at=acct_positions[12]), batch_size=10)
    with pytest.raises(RuntimeError) as raised:
        runner.run_until_caught_up()
    # The traceback (still referenced here) no longer holds the page reader: a second
    # read-ahead gets it, where the backend has one.
    with store._page_reader() as read_page:
        if type(store).__name__ == "PostgresEventStore":
            assert read_page is not None
    assert raised.value is not None


def test_rebuild_from_zero_equals_incremental(store: EventStore) -> None:
    fill(store, 25)
    runner = ProjectionRunner(store, Totals(), batch_size=6)
    runner.run_until_caught_up()
    incremental = totals(store)
    assert runner.rebuild() == 25
    assert totals(store) == incremental == expected_totals(25)


def test_events_at_or_below_checkpoint_are_not_applied_twice(store: EventStore) -> None:
    fill(store, 10)
    events = list(store.read_all(categories=["acct"]))
    runner = ProjectionRunner(store, Totals())
    assert runner.apply_batch(events[:6]) == 6
    assert runner.apply_batch(events[3:]) == 4  # a duplicate delivery of 3..5 is skipped
    assert totals(store) == expected_totals(10)


def test_live_run_follows_appends(store: EventStore) -> None:
    fill(store, 10)
    stop = threading.Event()
    runner = ProjectionRunner(store, Totals())
    thread = threading.Thread(target=runner.run, args=(stop,), kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        with EventStore.open(store.url) as writer:
            fill(writer, 30, start=10)
        last_acct = max(e.position for e in store.read_all(categories=["acct"]))
        deadline = time.monotonic() + 15
        while runner.position < last_acct:
            assert time.monotonic() < deadline, "projection did not catch up"
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert totals(store) == expected_totals(40)


def test_two_runners_at_once_apply_each_event_once(store: EventStore) -> None:
    fill(store, 60)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with EventStore.open(store.url) as own:
                ProjectionRunner(own, Totals(), batch_size=4).run_until_caught_up()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert totals(store) == expected_totals(60)


ODD_NAMES = [
    "plain",
    "it's",
    "back\\slash\\",
    "%s and %(x)s",
    "E'x'; DROP TABLE checkpoints; --",
    "ü ✓",
]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_lock_checkpoint_reads_the_checkpoint_of_that_name(store: EventStore, name: str) -> None:
    with store.transaction() as tx:
        assert tx.lock_checkpoint(name) == 0
        tx.set_checkpoint(name, 17)
    with store.transaction() as tx:
        tx.set_checkpoint(name + "-other", 99)
    with store.transaction() as tx:
        assert tx.lock_checkpoint(name) == 17
    assert store.get_checkpoint(name) == 17


@pytest.mark.postgres
@pytest.mark.parametrize("name", ODD_NAMES)
def test_lock_checkpoint_holds_the_lock_of_that_name(pg_url: str, name: str) -> None:
    """The lock taken with the read is `Transaction.lock(name)`'s: another transaction cannot
    take it until this one ends."""
    with EventStore.open(pg_url) as store, EventStore.open(pg_url) as other:
        with store.transaction() as tx:
            tx.lock_checkpoint(name)
            with other.transaction() as probe:
                held = probe.execute(
                    "SELECT pg_try_advisory_xact_lock(?, hashtext(?))",
                    (postgres_module.NAMED_LOCK_NAMESPACE, name),
                )
            assert held == [(False,)]
        with other.transaction() as probe:
            probe.lock(name)  # free again once the transaction ended


@pytest.mark.postgres
def test_lock_checkpoint_reads_after_the_lock_is_granted(pg_url: str) -> None:
    """A checkpoint committed by the lock's holder while this transaction waits for the lock
    is the one read (each statement of the round trip takes its own snapshot)."""
    with EventStore.open(pg_url) as store, EventStore.open(pg_url) as other:
        name = "projection:waits"
        granted = threading.Event()
        read: list[int] = []

        def wait_for_lock() -> None:
            with other.transaction() as tx:
                granted.set()
                read.append(tx.lock_checkpoint(name))

        with store.transaction() as tx:
            tx.lock_checkpoint(name)
            thread = threading.Thread(target=wait_for_lock)
            thread.start()
            assert granted.wait(10)
            deadline = time.monotonic() + 10
            while not _waiting_for_advisory_lock(store) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert _waiting_for_advisory_lock(store)
            tx.set_checkpoint(name, 42)
        thread.join(10)
        assert read == [42]


def _waiting_for_advisory_lock(store: EventStore) -> bool:
    with store.transaction() as tx:
        rows = tx.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        )
    return bool(rows[0][0])


# -- the transaction a batch runs in (PostgreSQL sends BEGIN with the first statement and the
# checkpoint with the COMMIT; these hold on both backends) -------------------------------------


def _make_table(store: EventStore) -> None:
    with store.transaction() as tx:
        tx.execute("CREATE TABLE IF NOT EXISTS marks (label TEXT PRIMARY KEY)")


def _marks(store: EventStore) -> list[str]:
    with store.transaction() as tx:
        return sorted(row[0] for row in tx.execute("SELECT label FROM marks"))


def test_a_checkpoint_set_is_read_back_in_its_transaction(store: EventStore) -> None:
    with store.transaction() as tx:
        tx.set_checkpoint("cp", 5)
        assert tx.get_checkpoint("cp") == 5
        tx.set_checkpoint("cp", 6)
        tx.set_checkpoint("cp", 7)
        assert tx.lock_checkpoint("cp") == 7
        assert tx.execute("SELECT position FROM checkpoints WHERE name = ?", ("cp",)) == [(7,)]
    assert store.get_checkpoint("cp") == 7


def test_a_checkpoint_alone_commits(store: EventStore) -> None:
    with store.transaction() as tx:
        tx.set_checkpoint("alone", 3)
    assert store.get_checkpoint("alone") == 3


def test_a_failure_after_the_checkpoint_rolls_back_both(store: EventStore) -> None:
    _make_table(store)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.lock_checkpoint("both")
        tx.execute("INSERT INTO marks VALUES (?)", ("kept?",))
        tx.set_checkpoint("both", 9)
        raise RuntimeError("after the checkpoint")
    assert _marks(store) == []
    assert store.get_checkpoint("both") == 0


def test_a_failing_statement_after_the_checkpoint_rolls_back_both(store: EventStore) -> None:
    _make_table(store)
    with store.transaction() as tx:
        tx.execute("INSERT INTO marks VALUES (?)", ("first",))
    # The backend's unique-violation error (each passes it through as it comes).
    with pytest.raises(Exception, match=r"(?i)unique"), store.transaction() as tx:
        tx.set_checkpoint("dup", 4)
        tx.execute("INSERT INTO marks VALUES (?)", ("second",))
        tx.execute("INSERT INTO marks VALUES (?)", ("first",))  # unique violation
    assert _marks(store) == ["first"]
    assert store.get_checkpoint("dup") == 0
    _make_table(store)  # the connection works on


def test_an_empty_transaction_commits_nothing_and_the_next_one_works(store: EventStore) -> None:
    with store.transaction():
        pass
    with store.transaction() as tx:
        assert tx.lock_checkpoint("next") == 0
        tx.set_checkpoint("next", 1)
    assert store.get_checkpoint("next") == 1


@pytest.mark.postgres
def test_a_checkpoint_failing_at_commit_rolls_back_the_read_model(pg_url: str) -> None:
    """The upsert is sent with the COMMIT: when it fails there (a position beyond bigint), the
    batch's changes go with it and the error is the store's."""
    with EventStore.open(pg_url) as store:
        _make_table(store)
        with pytest.raises(EventStoreError), store.transaction() as tx:
            tx.lock_checkpoint("huge")
            tx.execute("INSERT INTO marks VALUES (?)", ("lost",))
            tx.set_checkpoint("huge", 2**70)
        assert _marks(store) == []
        assert store.get_checkpoint("huge") == 0


@pytest.mark.postgres
def test_store_work_inside_a_transaction_that_ran_nothing_yet_joins_it(pg_url: str) -> None:
    """The transaction begins with its first statement; store calls made inside it before
    that (same thread) still belong to it and roll back with it, as does a nested one."""
    with EventStore.open(pg_url) as store:
        _make_table(store)
        with pytest.raises(RuntimeError), store.transaction():
            store.set_checkpoint("inside", 8)
            with store.transaction() as nested:
                nested.execute("INSERT INTO marks VALUES (?)", ("nested",))
            raise RuntimeError("roll back")
        assert store.get_checkpoint("inside") == 0
        assert _marks(store) == []
        with store.transaction() as tx:  # the connection is idle again, not left in a block
            assert tx.execute("SELECT 1") == [(1,)]
