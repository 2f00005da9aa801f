"""Process entry points for the concurrency tests (importable by spawned children)."""

from __future__ import annotations

import random
from typing import Any

from firth.eventsourcing import ConcurrencyError, EventStore, NewEvent


def contend(url: str, writer: int, versions: int, go: Any, results: Any) -> None:
    """Try to append one event at every expected version 0..versions-1 of one stream."""
    outcomes: list[tuple[str, int, int]] = []
    with EventStore.open(url) as store:
        go.wait(30)
        for version in range(versions):
            try:
                store.append(
                    "race-1", [NewEvent("Tick", {"writer": writer, "v": version})], version
                )
                outcomes.append(("won", version, version + 1))
            except ConcurrencyError as refused:
                outcomes.append(("lost", version, refused.actual_version))
    results.put((writer, outcomes))


def write_streams(url: str, writer: int, count: int, go: Any, results: Any) -> None:
    """Append `count` events in small random batches to three streams of this writer."""
    rng = random.Random(writer)
    written = 0
    with EventStore.open(url) as store:
        go.wait(30)
        while written < count:
            size = min(count - written, rng.randint(1, 5))
            batch = [NewEvent("Wrote", {"writer": writer, "n": written + i}) for i in range(size)]
            store.append(f"w{writer}-{rng.randint(0, 2)}", batch)
            written += size
    results.put((writer, written))
