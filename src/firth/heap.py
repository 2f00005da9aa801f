"""Process-wide garbage-collector settings for a long-running broker process.

`settle_heap` is called once by `firth serve` (`firth.app.run`) after every listener is bound.
A broker started on a thread of another program (the tests' in-process broker) never calls it,
so that program keeps its own collector settings.

The objects that exist by then (modules, definitions, recovered logs and queues) are moved out
of the collector's sight with `gc.freeze()`, and a full collection is considered every 100
young collections instead of every 10. Without it a full collection walks the ~47,000 startup
objects plus every queued message: 20 ms on an idle broker, 90 ms with 200,000 AMQP messages
queued, several times a minute under load, every connection stalled meanwhile (measured while
chasing the AMQP latency tail, docs/amqp.md). Cyclic garbage is still collected, later;
reference counting frees everything else at once as before.
"""

from __future__ import annotations

import gc

FULL_COLLECTION_EVERY = 100
"""Young (generation 1) collections between two full ones (CPython's default is 10)."""

_settled = False


def settle_heap() -> bool:
    """Freeze what exists now and make full collections rarer. Only the first call in a
    process acts; returns whether this call did."""
    global _settled
    if _settled:
        return False
    _settled = True
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    return True
