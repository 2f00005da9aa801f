"""Projections: read models kept up to date from the global order, exactly once in effect.

A `Projection` turns events into changes of tables in the store's own database. The
`ProjectionRunner` feeds it batches of events in position order and commits, in one database
transaction, the read-model changes of a batch together with the projection's checkpoint (the
last position it handled). A crash therefore loses or keeps both: after a restart the runner
resumes from the checkpoint and no event is applied twice or skipped.

Two runners of the same projection may run at once (by mistake or during a hand-over): each
batch transaction locks the projection's name and re-reads the checkpoint, and events at or
below it are not handled again.

`rebuild()` clears the read model (`Projection.reset`) and the checkpoint in one transaction,
then replays from position 1.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence

from firth.eventsourcing.records import RecordedEvent
from firth.eventsourcing.store import EventStore, Transaction

CHECKPOINT_PREFIX = "projection:"


class Projection:
    """Override `handle`; optionally `setup` (create tables, idempotently) and `reset`."""

    name: str = ""
    types: Sequence[str] | None = None
    categories: Sequence[str] | None = None

    def setup(self, tx: Transaction) -> None:
        """Create the read model's tables if they do not exist."""

    def reset(self, tx: Transaction) -> None:
        """Empty the read model (before a rebuild)."""
        raise NotImplementedError(f"projection {self.name!r} cannot be rebuilt: it has no reset()")

    def handle(self, event: RecordedEvent, tx: Transaction) -> None:
        raise NotImplementedError


class ProjectionRunner:
    """Runs one projection against one store (see the module docstring for the guarantees)."""

    def __init__(self, store: EventStore, projection: Projection, *, batch_size: int = 500) -> None:
        if not projection.name:
            raise ValueError("a projection needs a name (its checkpoint key)")
        self.store = store
        self.projection = projection
        self.batch_size = batch_size
        self.checkpoint_name = CHECKPOINT_PREFIX + projection.name
        self.stop_check_interval = 0.2
        with store.transaction() as tx:
            tx.lock(self.checkpoint_name)
            projection.setup(tx)

    @property
    def position(self) -> int:
        """The last position this projection has handled (0 = none)."""
        return self.store.get_checkpoint(self.checkpoint_name)

    def apply_batch(self, events: Sequence[RecordedEvent]) -> int:
        """Handle `events` (in position order) and move the checkpoint, in one transaction.
        Returns how many were handled (events at or below the checkpoint are skipped)."""
        if not events:
            return 0
        last = events[-1].position
        with self.store.transaction() as tx:
            checkpoint = tx.lock_checkpoint(self.checkpoint_name)
            if last <= checkpoint:
                return 0
            if events[0].position <= checkpoint:  # in position order: skip a handled prefix
                events = [event for event in events if event.position > checkpoint]
            handle = self.projection.handle
            for event in events:
                handle(event, tx)
            tx.set_checkpoint(self.checkpoint_name, last)
        return len(events)

    def run_until_caught_up(self) -> int:
        """Handle every event stored now after the checkpoint; returns how many were handled."""
        total = 0
        projection = self.projection
        pages = self.store.read_all_pages(
            self.position + 1, projection.types, projection.categories, self.batch_size
        )
        with contextlib.closing(pages):  # a failed batch ends the read-ahead here and now
            for batch in pages:  # a backend may read the next page while this one is handled
                total += self.apply_batch(batch)
        return total

    def run(self, stop: threading.Event, poll_interval: float | None = None) -> None:
        """Catch up, then follow live appends until `stop` is set."""
        projection = self.projection
        subscription = self.store.subscribe(
            self.position + 1, projection.types, projection.categories, poll_interval
        )
        try:
            while not stop.is_set():
                first = subscription.next(timeout=self.stop_check_interval)
                if first is None:
                    continue
                batch = [first]
                while len(batch) < self.batch_size:
                    more = subscription.next(timeout=0)
                    if more is None:
                        break
                    batch.append(more)
                self.apply_batch(batch)
        finally:
            subscription.close()

    def rebuild(self) -> int:
        """Empty the read model and the checkpoint together, then replay everything."""
        with self.store.transaction() as tx:
            tx.lock(self.checkpoint_name)
            self.projection.reset(tx)
            tx.set_checkpoint(self.checkpoint_name, 0)
        return self.run_until_caught_up()
