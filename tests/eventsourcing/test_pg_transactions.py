"""The PostgreSQL transaction's own round trips (BEGIN sent with the first statement, the
checkpoint upsert with the next statement or the COMMIT, savepoints for nested ones) and the
prepared append, under what users meet: a connection killed at each step, a failing commit,
other threads meanwhile, names and stream ids that need quoting. Each failure must surface as
the store's error, commit nothing partial and leave the store working on the next call."""

from __future__ import annotations

import _thread
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from firth.eventsourcing import EventStore, EventStoreError, NewEvent, RecordedEvent, Transaction
from firth.eventsourcing import postgres as postgres_module
from firth.eventsourcing.errors import StoreUnavailable
from firth.eventsourcing.projections import Projection, ProjectionRunner

from . import es_pg

pytestmark = pytest.mark.postgres

WAIT = 10.0  # seconds: the bound of every wait on a condition


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[EventStore]:
    with EventStore.open(pg_url) as store:
        with store.transaction() as tx:
            tx.execute("CREATE TABLE marks (label TEXT PRIMARY KEY)")
        yield store


@pytest.fixture
def admin(pg_server: es_pg.PgServer, pg_url: str) -> Iterator[psycopg.Connection]:
    """A connection of the test's own, on the store's schema, to kill and to look."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


def _marks(admin: psycopg.Connection) -> list[str]:
    return sorted(row[0] for row in admin.execute("SELECT label FROM marks").fetchall())


def _checkpoint(admin: psycopg.Connection, name: str) -> int | None:
    row = admin.execute("SELECT position FROM checkpoints WHERE name = %s", (name,)).fetchone()
    return None if row is None else int(row[0])


def _state(admin: psycopg.Connection, pid: int) -> str | None:
    row = admin.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return None if row is None else str(row[0])


def _kill(admin: psycopg.Connection, pid: int) -> None:
    """Terminate the backend `pid` and wait until it is gone."""
    assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
    deadline = time.monotonic() + WAIT
    while _state(admin, pid) is not None:
        assert time.monotonic() < deadline, "the backend did not exit"
        time.sleep(0.01)


def _works(store: EventStore, admin: psycopg.Connection, label: str) -> None:
    """The store works again: a transaction commits, an append outside one is stored."""
    with store.transaction() as tx:
        tx.lock_checkpoint("works")
        tx.execute("INSERT INTO marks VALUES (?)", (label,))
        tx.set_checkpoint("works", len(label))
    assert label in _marks(admin)
    assert _checkpoint(admin, "works") == len(label)
    version = store.stream_version("works-1")
    assert store.append("works-1", [NewEvent("W", {})], version) == version + 1


# -- a connection lost at each step ------------------------------------------------------------


def test_a_connection_lost_before_the_transaction_sent_anything(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    pid = pg_store.backend_pid()
    with pytest.raises(StoreUnavailable), pg_store.transaction() as tx:
        _kill(admin, pid)
        tx.lock_checkpoint("lost")  # BEGIN goes with this statement, on a dead connection
        tx.set_checkpoint("lost", 3)
    assert _checkpoint(admin, "lost") is None
    _works(pg_store, admin, "after-lost-before-begin")


def test_a_connection_lost_before_store_work_joins_the_transaction(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    pid = pg_store.backend_pid()
    with pytest.raises(StoreUnavailable), pg_store.transaction():
        _kill(admin, pid)
        pg_store.append("lost-1", [NewEvent("E", {})])
    assert pg_store.stream_version("lost-1") == 0
    _works(pg_store, admin, "after-lost-join")


def test_a_connection_lost_after_begin_commits_nothing(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    pid = pg_store.backend_pid()
    with pytest.raises(StoreUnavailable), pg_store.transaction() as tx:
        assert tx.lock_checkpoint("mid") == 0
        tx.execute("INSERT INTO marks VALUES (?)", ("partial",))
        _kill(admin, pid)
        tx.execute("INSERT INTO marks VALUES (?)", ("second",))
    assert _marks(admin) == []
    _works(pg_store, admin, "after-lost-mid")


def test_a_connection_lost_with_the_checkpoint_pending_at_commit(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    """The upsert is sent with the COMMIT; the connection is gone by then: the store's error,
    neither the read model's row nor the checkpoint is stored."""
    pid = pg_store.backend_pid()
    with pytest.raises(StoreUnavailable), pg_store.transaction() as tx:
        assert tx.lock_checkpoint("pending") == 0
        tx.execute("INSERT INTO marks VALUES (?)", ("partial",))
        tx.set_checkpoint("pending", 7)
        _kill(admin, pid)
    assert _marks(admin) == []
    assert _checkpoint(admin, "pending") is None
    _works(pg_store, admin, "after-lost-commit")


def test_an_append_after_a_lost_connection_prepares_its_statement_again(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    assert pg_store.append("re-1", [NewEvent("E", {"i": 1})]) == 1
    _kill(admin, pg_store.backend_pid())
    with pytest.raises(StoreUnavailable):
        pg_store.append("re-1", [NewEvent("E", {"i": 2})], 1)
    assert pg_store.append("re-1", [NewEvent("E", {"i": 2})], 1) == 2
    assert pg_store.append("re-1", [NewEvent("E", {"i": 3})], 2) == 3
    assert [event.data["i"] for event in pg_store.read_stream("re-1")] == [1, 2, 3]


# -- commit failures, empty and nested transactions --------------------------------------------


def test_a_checkpoint_failing_at_commit_leaves_the_connection_out_of_any_transaction(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    with pytest.raises(EventStoreError), pg_store.transaction() as tx:
        tx.lock_checkpoint("huge")
        tx.execute("INSERT INTO marks VALUES (?)", ("lost",))
        tx.set_checkpoint("huge", 2**70)  # beyond bigint: fails with the COMMIT
    assert _state(admin, pg_store.backend_pid()) == "idle"
    # Nothing of the failed one is sent again with the next transaction.
    with pg_store.transaction() as tx:
        tx.set_checkpoint("next", 1)
    assert _checkpoint(admin, "next") == 1
    assert _checkpoint(admin, "huge") is None
    # Work outside a transaction is committed at once (seen by another session).
    pg_store.set_checkpoint("outside", 2)
    assert _checkpoint(admin, "outside") == 2
    assert _marks(admin) == []


def test_an_empty_transaction_leaves_no_transaction_open(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    pid = pg_store.backend_pid()
    with pg_store.transaction():
        assert _state(admin, pid) == "idle"  # nothing sent yet
    assert _state(admin, pid) == "idle"
    with pytest.raises(RuntimeError), pg_store.transaction():
        raise RuntimeError("nothing to roll back")
    assert _state(admin, pid) == "idle"
    pg_store.set_checkpoint("outside", 4)
    assert _checkpoint(admin, "outside") == 4


def test_a_transaction_is_open_on_the_server_only_from_its_first_statement(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    pid = pg_store.backend_pid()
    with pg_store.transaction() as tx:
        tx.set_checkpoint("kept", 5)  # kept for the COMMIT
        assert _state(admin, pid) == "idle"
        tx.lock("a-name")
        assert _state(admin, pid) == "idle in transaction"
        assert _checkpoint(admin, "kept") is None  # not committed before the transaction is
    assert _state(admin, pid) == "idle"
    assert _checkpoint(admin, "kept") == 5


def test_a_checkpoint_set_in_a_nested_transaction_is_committed(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    with pg_store.transaction() as outer:
        outer.lock_checkpoint("outer")
        with pg_store.transaction() as inner:
            inner.set_checkpoint("inner", 11)
        outer.set_checkpoint("outer", 12)
    assert _checkpoint(admin, "inner") == 11
    assert _checkpoint(admin, "outer") == 12


def test_a_checkpoint_set_last_in_a_nested_transaction_is_committed(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    with pg_store.transaction(), pg_store.transaction() as inner:
        inner.set_checkpoint("inner-only", 13)
    assert _checkpoint(admin, "inner-only") == 13


def test_a_failing_nested_transaction_rolls_back_its_checkpoint_only(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    with pg_store.transaction() as outer:
        outer.execute("INSERT INTO marks VALUES (?)", ("outer",))
        with pytest.raises(RuntimeError), pg_store.transaction() as inner:
            inner.execute("INSERT INTO marks VALUES (?)", ("inner",))
            inner.set_checkpoint("inner", 21)
            raise RuntimeError("roll back the savepoint")
        outer.set_checkpoint("outer", 22)
    assert _marks(admin) == ["outer"]
    assert _checkpoint(admin, "inner") is None
    assert _checkpoint(admin, "outer") == 22


def test_a_checkpoint_set_in_a_nested_transaction_is_read_back_before_it_ends(
    pg_store: EventStore,
) -> None:
    with pg_store.transaction() as outer, pg_store.transaction() as inner:
        inner.set_checkpoint("seen", 3)
        assert outer.get_checkpoint("seen") == 3
        assert pg_store.get_checkpoint("seen") == 3
        assert inner.lock_checkpoint("seen") == 3


def test_a_checkpoint_set_by_the_outer_transaction_inside_a_savepoint_rolls_back_with_it(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    with pg_store.transaction() as outer:
        outer.set_checkpoint("outer", 1)
        with pytest.raises(RuntimeError), pg_store.transaction():
            outer.set_checkpoint("outer", 2)
            raise RuntimeError("roll back the savepoint")
        assert outer.get_checkpoint("outer") == 1
        outer.set_checkpoint("later", 5)  # kept for the COMMIT again
    assert _checkpoint(admin, "outer") == 1
    assert _checkpoint(admin, "later") == 5


# -- other threads meanwhile -------------------------------------------------------------------


@pytest.mark.parametrize("begun", [False, True])
def test_another_threads_append_does_not_join_an_open_transaction(
    pg_store: EventStore, admin: psycopg.Connection, begun: bool
) -> None:
    """Thread B appends while thread A is inside `transaction()` (before and after its first
    statement): B waits for A's transaction, commits on its own and survives A's rollback."""
    results: list[int | BaseException] = []

    def append() -> None:
        try:
            results.append(pg_store.append("other-1", [NewEvent("B", {})]))
        except BaseException as exc:
            results.append(exc)

    thread = threading.Thread(target=append)
    with pytest.raises(RuntimeError), pg_store.transaction() as tx:
        if begun:
            tx.execute("INSERT INTO marks VALUES (?)", ("a",))
        thread.start()
        thread.join(0.3)  # B must be waiting (it would join A and finish here otherwise)
        assert results == []
        raise RuntimeError("A rolls back")
    thread.join(WAIT)
    assert results == [1]
    assert pg_store.stream_version("other-1") == 1
    assert _marks(admin) == []


def test_another_threads_read_sees_only_committed_events(pg_store: EventStore) -> None:
    pg_store.append("seen-1", [NewEvent("Committed", {})])
    read: list[list[str]] = []
    thread = threading.Thread(target=lambda: read.append([e.type for e in pg_store.read_all()]))
    with pytest.raises(RuntimeError), pg_store.transaction():
        pg_store.append("seen-1", [NewEvent("RolledBack", {})], 1)
        thread.start()
        thread.join(0.3)
        raise RuntimeError("roll back the append")
    thread.join(WAIT)
    assert read == [["Committed"]]


def test_a_live_subscriber_wakes_on_an_append_committed_with_a_transaction(
    pg_store: EventStore, pg_url: str
) -> None:
    """The append's NOTIFY is delivered at the transaction's COMMIT; a subscriber of another
    store object (poll far away) sees the event well before its poll."""
    with EventStore.open(pg_url, poll_interval=60.0) as other:
        subscription = other.subscribe()
        assert subscription.next(timeout=0.2) is None  # caught up, live
        with pg_store.transaction() as tx:
            tx.lock_checkpoint("notify")
            pg_store.append("live-1", [NewEvent("Live", {})])
            tx.set_checkpoint("notify", 1)
        event = subscription.next(timeout=WAIT)
        assert event is not None and event.type == "Live"


# -- the prepared append and text that needs quoting -------------------------------------------


def test_an_append_after_psycopg_deallocated_its_statements_in_a_failed_transaction(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    """psycopg prepares a query run often enough and, rolling a failed transaction back,
    deallocates everything prepared on the connection, the append's statement too."""
    assert pg_store.append("dealloc-1", [NewEvent("E", {})]) == 1
    with pytest.raises(EventStoreError), pg_store.transaction() as tx:
        for index in range(8):  # past psycopg's prepare threshold (5)
            tx.execute("INSERT INTO marks VALUES (?)", (f"m{index}",))
        tx.execute("SELECT 1 / 0")
    assert _marks(admin) == []
    with pg_store.transaction() as tx:  # the append's statement went too
        assert tx.execute("SELECT count(*) FROM pg_prepared_statements") == [(0,)]
    assert pg_store.append("dealloc-1", [NewEvent("E", {})], 1) == 2
    assert pg_store.append("dealloc-1", [NewEvent("E", {})], 2) == 3


def test_many_store_objects_append_concurrently_through_their_prepared_statements(
    pg_url: str,
) -> None:
    stores = [EventStore.open(pg_url) for _ in range(4)]
    errors: list[BaseException] = []

    def append(store: EventStore, index: int) -> None:
        try:
            for number in range(25):
                store.append(f"many-{index}", [NewEvent("E", {"n": number})], number)
                store.append("shared-1", [NewEvent("S", {"i": index, "n": number})])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(s, i)) for i, s in enumerate(stores)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        reader = stores[0]
        for index in range(4):
            assert [e.data["n"] for e in reader.read_stream(f"many-{index}")] == list(range(25))
        assert reader.stream_version("shared-1") == 100
        positions = [event.position for event in reader.read_all()]
        assert positions == sorted(positions) and len(positions) == 200
    finally:
        for store in stores:
            store.close()


ODD = [
    "quote-'-1",
    'dq-"-1',
    "back\\slash-1",
    "\\'-1",
    "{brace,comma}-1",
    "NULL",
    "ünïcødé-✓-😀",
    "long-" + "x\\'{,}ü" * 1280,  # over 10 KB
]


@pytest.mark.parametrize("inside", [False, True])
def test_odd_stream_ids_and_types_are_stored_exactly(pg_store: EventStore, inside: bool) -> None:
    """Outside a transaction the prepared statement, inside one psycopg's execute."""
    for stream in ODD:
        if inside:
            with pg_store.transaction() as tx:
                tx.lock_checkpoint("odd")
                assert pg_store.append(stream, [NewEvent(stream, {"s": stream})]) == 1
        else:
            assert pg_store.append(stream, [NewEvent(stream, {"s": stream})]) == 1
    for stream in ODD:
        (event,) = pg_store.read_stream(stream)
        assert (event.stream_id, event.type, event.data) == (stream, stream, {"s": stream})
        assert pg_store.stream_version(stream) == 1
    assert [event.stream_id for event in pg_store.read_all(types=[ODD[-1]])] == [ODD[-1]]


def test_odd_checkpoint_and_lock_names_are_kept_apart(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    """The names go inlined as literals in the transaction's simple queries: each is its own
    checkpoint, none breaks the statement or lands on another."""
    names = [*ODD, "a\\b", "a\\\\b", "a'b", "a''b", "a\\'b"]
    assert len(set(names)) == len(names)
    with pg_store.transaction() as tx:
        for number, name in enumerate(names, 1):
            tx.lock(name)
            assert tx.lock_checkpoint(name) == 0
            tx.set_checkpoint(name, number)
        for number, name in enumerate(names, 1):
            assert tx.get_checkpoint(name) == number
    for number, name in enumerate(names, 1):
        assert _checkpoint(admin, name) == number
        assert pg_store.get_checkpoint(name) == number


def test_a_name_the_connection_cannot_encode_fails_alone_inside_a_transaction(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    """A lone surrogate fails before anything is sent; a caller that catches the error is
    still in its transaction: the checkpoint kept before it commits, and the statements
    after it commit with it (or, here, roll back with it), not each on its own."""
    with pg_store.transaction() as tx:
        tx.set_checkpoint("kept", 5)
        with pytest.raises(UnicodeEncodeError):
            tx.get_checkpoint("bad-\ud800")
        tx.set_checkpoint("after", 6)
    assert (_checkpoint(admin, "kept"), _checkpoint(admin, "after")) == (5, 6)
    with pytest.raises(RuntimeError), pg_store.transaction() as tx:
        tx.set_checkpoint("kept-2", 7)
        with pytest.raises(UnicodeEncodeError):
            tx.lock("bad-\ud800")
        tx.execute("INSERT INTO marks VALUES (?)", ("rolled back",))
        raise RuntimeError("roll back")
    assert (_checkpoint(admin, "kept-2"), _marks(admin)) == (None, [])


# -- Ctrl-C while the server waits on a lock ---------------------------------------------------


def _interrupt_when_waiting(admin: psycopg.Connection, pid: int) -> threading.Thread:
    """A thread that raises KeyboardInterrupt in the main thread once `pid` waits on a lock."""

    def watch() -> None:
        deadline = time.monotonic() + WAIT
        while not admin.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'", (pid,)
        ).fetchone():
            if time.monotonic() > deadline:
                return  # the test fails: no KeyboardInterrupt
            time.sleep(0.01)
        _thread.interrupt_main()

    thread = threading.Thread(target=watch)
    thread.start()
    return thread


def test_ctrl_c_during_a_prepared_append_cancels_it(
    pg_store: EventStore, pg_url: str, admin: psycopg.Connection
) -> None:
    assert pg_store.append("ctrl-c-1", [NewEvent("E", {})]) == 1
    with psycopg.connect(pg_url, autocommit=True) as holder:
        holder.execute(
            "SELECT pg_advisory_lock(%s, %s)",
            (postgres_module.LOCK_NAMESPACE, postgres_module.APPEND_LOCK),
        )
        pid = pg_store.backend_pid()
        watcher = _interrupt_when_waiting(admin, pid)
        with pytest.raises(KeyboardInterrupt):
            pg_store.append("ctrl-c-1", [NewEvent("E", {})], 1)
        watcher.join(WAIT)
        assert _state(admin, pid) == "idle"  # cancelled on the server, not left running
    assert pg_store.stream_version("ctrl-c-1") == 1
    assert pg_store.append("ctrl-c-1", [NewEvent("E", {})], 1) == 2


def test_ctrl_c_during_a_transaction_lock_rolls_it_back(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    admin.execute("BEGIN")
    admin.execute(
        "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
        (postgres_module.NAMED_LOCK_NAMESPACE, "busy"),
    )
    pid = pg_store.backend_pid()
    watcher = _interrupt_when_waiting(admin, pid)
    try:
        with pytest.raises(KeyboardInterrupt), pg_store.transaction() as tx:
            tx.set_checkpoint("interrupted", 1)
            tx.lock("busy")  # BEGIN, the kept checkpoint and the lock: waits
            tx.set_checkpoint("interrupted", 2)
    finally:
        watcher.join(WAIT)
        admin.execute("COMMIT")
    assert _state(admin, pid) == "idle"
    assert _checkpoint(admin, "interrupted") is None
    _works(pg_store, admin, "after-ctrl-c")


# -- a projection whose connection is lost mid-batch -------------------------------------------


class Sums(Projection):
    """Sums `n` per stream into `sums`; kills its own session once, at one position."""

    name = "sums"

    def __init__(self, admin: psycopg.Connection, store: EventStore, kill_at: int) -> None:
        self.admin, self.store, self.kill_at = admin, store, kill_at

    def setup(self, tx: Transaction) -> None:
        tx.execute("CREATE TABLE IF NOT EXISTS sums (stream TEXT PRIMARY KEY, total INTEGER)")

    def handle(self, event: RecordedEvent, tx: Transaction) -> None:
        tx.execute(
            "INSERT INTO sums VALUES (?, ?) ON CONFLICT (stream)"
            " DO UPDATE SET total = sums.total + excluded.total",
            (event.stream_id, event.data["n"]),
        )
        if event.position == self.kill_at:
            self.kill_at = -1
            _kill(self.admin, self.store.backend_pid())  # type: ignore[attr-defined]


def test_a_projection_resumes_from_its_checkpoint_after_its_connection_was_lost(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    for n in range(1, 31):
        pg_store.append(f"s-{n % 3}", [NewEvent("N", {"n": n})])
    projection = Sums(admin, pg_store, kill_at=17)
    runner = ProjectionRunner(pg_store, projection, batch_size=10)
    with pytest.raises(StoreUnavailable):
        runner.run_until_caught_up()
    assert runner.position == 10  # the first batch committed, the second not at all
    assert runner.run_until_caught_up() == 20
    expected = {f"s-{k}": sum(n for n in range(1, 31) if n % 3 == k) for k in range(3)}
    assert dict(admin.execute("SELECT stream, total FROM sums").fetchall()) == expected
    assert runner.position == 30


@pytest.mark.parametrize(
    "setting", ["client_encoding%3DLATIN1", "standard_conforming_strings%3Doff"]
)
def test_names_and_stream_ids_round_trip_under_other_session_settings(
    pg_url: str, setting: str
) -> None:
    """The inlined literals are escape strings (read alike whatever standard_conforming_strings
    is) and the simple queries go in the connection's encoding."""
    names = ["é-'\\\\-1", "plain-1", "x\\\\'{,}é" * 200]
    option, value = setting.split("%3D")
    with EventStore.open(f"{pg_url}%20-c{setting}") as store:
        with store.transaction() as tx:
            assert tx.execute(f"SHOW {option}") == [(value,)]
            for number, name in enumerate(names, 1):
                tx.lock(name)
                assert tx.lock_checkpoint(name) == 0
                tx.set_checkpoint(name, number)
        for number, name in enumerate(names, 1):
            assert store.get_checkpoint(name) == number
            assert store.append(name, [NewEvent("É'\\\\", {"s": name})]) == 1
            (event,) = store.read_stream(name)
            assert (event.stream_id, event.type, event.data) == (name, "É'\\\\", {"s": name})


# -- a failed statement whose error the caller caught ------------------------------------------


def test_a_transaction_whose_failed_statement_was_caught_raises_at_commit(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    """PostgreSQL aborts the whole transaction on a failed statement and answers COMMIT with
    ROLLBACK; the store says so instead of returning as if the block had been stored."""
    failed = pytest.raises(EventStoreError, match="rolled back, not committed")
    with failed, pg_store.transaction() as tx:
        tx.execute("INSERT INTO marks VALUES (?)", ("kept?",))
        tx.set_checkpoint("swallowed", 7)
        with pytest.raises(psycopg.errors.UniqueViolation):
            tx.execute("INSERT INTO marks VALUES (?)", ("kept?",))
    assert _marks(admin) == []
    assert _checkpoint(admin, "swallowed") is None
    _works(pg_store, admin, "after")


def test_a_projection_handler_that_swallows_its_error_stops_the_runner(
    pg_store: EventStore, admin: psycopg.Connection
) -> None:
    """Its batch is not stored, so the runner must not go on past it: it raises (the batch's
    checkpoint upsert, sent with the COMMIT, meets the aborted transaction), and a new runner
    resumes from the checkpoint before that batch."""

    class Swallowing(Projection):
        name = "swallowing"

        def __init__(self) -> None:
            self.fail = True

        def handle(self, event: RecordedEvent, tx: Transaction) -> None:
            tx.execute("INSERT INTO marks VALUES (?)", (f"e{event.position}",))
            if self.fail and event.data["n"] == 1:
                try:
                    tx.execute("INSERT INTO marks VALUES (?)", (f"e{event.position}",))
                except psycopg.Error:
                    pass

    pg_store.append("swallow-1", [NewEvent("N", {"n": n}) for n in range(3)])
    projection = Swallowing()
    with pytest.raises(EventStoreError):
        ProjectionRunner(pg_store, projection, batch_size=2).run_until_caught_up()
    assert _marks(admin) == []
    assert _checkpoint(admin, "swallowing") in (None, 0)
    projection.fail = False
    ProjectionRunner(pg_store, projection, batch_size=2).run_until_caught_up()
    assert len(_marks(admin)) == 3
