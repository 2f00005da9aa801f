"""Aggregates and repositories through the bank account example, on both backends."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from firth.eventsourcing import ConcurrencyError, EventStore, NewEvent, UnknownEventType
from firth.eventsourcing.repository import AggregateNotFound, Repository

from . import es_bank

bank = es_bank.load()
BankAccount = bank.BankAccount


def test_deposits_and_withdrawals_are_stored_as_events(store: EventStore) -> None:
    accounts = Repository(store, BankAccount)
    account = BankAccount.open("a1", owner="Ann")
    account.deposit(100)
    account.withdraw(40)
    assert accounts.save(account) == 3
    assert (account.balance, account.version, account.pending) == (60, 3, ())
    stored = list(store.read_stream("account-a1"))
    assert [(e.type, e.data) for e in stored] == [
        ("AccountOpened", {"owner": "Ann"}),
        ("MoneyDeposited", {"amount": 100}),
        ("MoneyWithdrawn", {"amount": 40}),
    ]
    loaded = accounts.load("a1")
    assert (loaded.owner, loaded.balance, loaded.version) == ("Ann", 60, 3)


def test_insufficient_funds_refuses_and_stores_nothing(store: EventStore) -> None:
    accounts = Repository(store, BankAccount)
    account = BankAccount.open("a1", owner="Ann")
    account.deposit(50)
    accounts.save(account)
    with pytest.raises(bank.InsufficientFunds) as refused:
        account.withdraw(51)
    assert (refused.value.balance, refused.value.amount) == (50, 51)
    assert account.pending == () and account.balance == 50
    assert accounts.save(account) == 2
    assert store.stream_version("account-a1") == 2
    with pytest.raises(ValueError):
        account.deposit(0)


def test_replay_equals_live_state(store: EventStore) -> None:
    rng = random.Random(5)
    accounts = Repository(store, BankAccount)
    live = BankAccount.open("a1", owner="Ann")
    for step in range(120):
        if rng.random() < 0.6:
            live.deposit(rng.randint(1, 100))
        else:
            try:
                live.withdraw(rng.randint(1, 150))
            except bank.InsufficientFunds:
                pass
        if step % 17 == 0:
            accounts.save(live)
    accounts.save(live)
    replayed = accounts.load("a1")
    assert replayed.snapshot_state() == live.snapshot_state()
    assert replayed.version == live.version == store.stream_version("account-a1")


def test_snapshot_load_equals_full_replay(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_snapshots = Repository(store, BankAccount, snapshot_every=10)
    account = BankAccount.open("a1", owner="Ann")
    accounts_saved = []
    for amount in range(1, 26):
        account.deposit(amount)
        accounts_saved.append(with_snapshots.save(account))
    snapshot = store.load_snapshot("account-a1")
    assert snapshot is not None and snapshot.version == 20
    assert snapshot.state == {"owner": "Ann", "balance": sum(range(1, 20))}

    read_from: list[int | None] = []
    original = store.read_stream

    def spy(stream_id, from_version=None, backwards=False, limit=None):  # type: ignore[no-untyped-def]
        read_from.append(from_version)
        return original(stream_id, from_version, backwards, limit)

    monkeypatch.setattr(store, "read_stream", spy)
    from_snapshot = with_snapshots.load("a1")
    full = Repository(store, BankAccount, use_snapshots=False).load("a1")
    assert read_from == [21, 1]
    assert from_snapshot.snapshot_state() == full.snapshot_state() == account.snapshot_state()
    assert from_snapshot.version == full.version == 26


def test_stale_save_is_a_concurrency_error(store: EventStore) -> None:
    accounts = Repository(store, BankAccount)
    accounts.save(BankAccount.open("a1", owner="Ann"))
    first, second = accounts.load("a1"), accounts.load("a1")
    first.deposit(1)
    second.deposit(2)
    accounts.save(first)
    with pytest.raises(ConcurrencyError) as conflict:
        accounts.save(second)
    assert conflict.value.actual_version == 2
    assert accounts.load("a1").balance == 1
    with pytest.raises(ConcurrencyError):
        accounts.save(BankAccount.open("a1", owner="Impostor"))


def test_missing_aggregate(store: EventStore) -> None:
    accounts = Repository(store, BankAccount)
    assert accounts.get("nobody") is None
    with pytest.raises(AggregateNotFound):
        accounts.load("nobody")


def test_unknown_event_type_on_load_names_the_type(store: EventStore) -> None:
    accounts = Repository(store, BankAccount)
    accounts.save(BankAccount.open("a1", owner="Ann"))
    store.append("account-a1", [NewEvent("InterestAccrued", {"amount": 3})])
    with pytest.raises(UnknownEventType) as unknown:
        accounts.load("a1")
    assert unknown.value.type_name == "InterestAccrued"
    assert "InterestAccrued" in str(unknown.value) and "account-a1" in str(unknown.value)


def test_example_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(es_bank.EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "refused: account alice" in result.stdout
    assert "conflict:" in result.stdout
    assert "projection: alice 179.00" in result.stdout
