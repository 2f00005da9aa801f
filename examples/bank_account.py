"""The bank account: an event-sourced aggregate on Firth's event store, start to finish.

Run it: `python examples/bank_account.py [STORE_URL]` (default: a SQLite file in a temporary
folder). It opens accounts, moves money, shows a refused withdrawal, a concurrent-edit
conflict, snapshots, and a projection of balances kept in the same database.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass

from firth.eventsourcing import ConcurrencyError, EventStore, RecordedEvent, Transaction
from firth.eventsourcing.aggregate import Aggregate, DomainEvent, applies
from firth.eventsourcing.projections import Projection, ProjectionRunner
from firth.eventsourcing.repository import Repository

# -- events: facts, named in the past tense; amounts in cents --------------------------------


@dataclass(frozen=True)
class AccountOpened(DomainEvent):
    owner: str


@dataclass(frozen=True)
class MoneyDeposited(DomainEvent):
    amount: int


@dataclass(frozen=True)
class MoneyWithdrawn(DomainEvent):
    amount: int


class InsufficientFunds(Exception):
    def __init__(self, account_id: str, balance: int, amount: int) -> None:
        super().__init__(f"account {account_id}: balance {balance} is short of {amount}")
        self.balance = balance
        self.amount = amount


# -- the aggregate: commands check invariants, then trigger events ----------------------------


class BankAccount(Aggregate):
    category = "account"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.owner: str | None = None
        self.balance = 0

    @classmethod
    def open(cls, id: str, owner: str) -> BankAccount:
        account = cls(id)
        account.trigger(AccountOpened(owner))
        return account

    def deposit(self, amount: int) -> None:
        if amount <= 0:
            raise ValueError("a deposit must be positive")
        self.trigger(MoneyDeposited(amount))

    def withdraw(self, amount: int) -> None:
        if amount <= 0:
            raise ValueError("a withdrawal must be positive")
        if amount > self.balance:
            raise InsufficientFunds(self.id, self.balance, amount)
        self.trigger(MoneyWithdrawn(amount))

    @applies(AccountOpened)
    def _opened(self, event: AccountOpened) -> None:
        self.owner = event.owner

    @applies(MoneyDeposited)
    def _deposited(self, event: MoneyDeposited) -> None:
        self.balance += event.amount

    @applies(MoneyWithdrawn)
    def _withdrawn(self, event: MoneyWithdrawn) -> None:
        self.balance -= event.amount


# -- a read model: balances of every account, kept by a projection ----------------------------


class Balances(Projection):
    name = "balances"
    categories = ("account",)

    def setup(self, tx: Transaction) -> None:
        tx.execute(
            "CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, balance INTEGER NOT NULL)"
        )

    def reset(self, tx: Transaction) -> None:
        tx.execute("DELETE FROM balances")

    def handle(self, event: RecordedEvent, tx: Transaction) -> None:
        account = event.stream_id.split("-", 1)[1]
        change = {"AccountOpened": 0, "MoneyDeposited": 1, "MoneyWithdrawn": -1}[event.type]
        amount = event.data.get("amount", 0) * change
        tx.execute(
            "INSERT INTO balances VALUES (?, ?) ON CONFLICT (account) DO UPDATE"
            " SET balance = balances.balance + excluded.balance",
            (account, amount),
        )


def main(url: str) -> None:
    with EventStore.open(url) as store:
        accounts = Repository(store, BankAccount, snapshot_every=5)

        alice = BankAccount.open("alice", owner="Alice")
        alice.deposit(100_00)
        alice.withdraw(30_00)
        accounts.save(alice)
        print(f"alice: balance {alice.balance / 100:.2f} at version {alice.version}")

        try:
            alice.withdraw(500_00)
        except InsufficientFunds as refused:
            print(f"refused: {refused}")

        # Two editors load the same version; the second save is refused.
        first, second = accounts.load("alice"), accounts.load("alice")
        first.deposit(10_00)
        accounts.save(first)
        second.deposit(99_00)
        try:
            accounts.save(second)
        except ConcurrencyError as conflict:
            print(f"conflict: {conflict}; reload and retry")
            retry = accounts.load("alice")
            retry.deposit(99_00)
            accounts.save(retry)

        bob = BankAccount.open("bob", owner="Bob")
        for _ in range(7):
            bob.deposit(5_00)
        accounts.save(bob)

        loaded = accounts.load("alice")
        snapshot = store.load_snapshot(loaded.stream_id)
        print(
            f"alice reloaded: balance {loaded.balance / 100:.2f}, version {loaded.version},"
            f" snapshot at version {snapshot.version if snapshot else None}"
        )

        runner = ProjectionRunner(store, Balances())
        runner.run_until_caught_up()
        with store.transaction() as tx:
            for account, balance in tx.execute(
                "SELECT account, balance FROM balances ORDER BY account"
            ):
                print(f"projection: {account} {balance / 100:.2f}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as folder:
            main(f"sqlite:///{folder}/bank.db")
