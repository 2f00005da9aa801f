"""The Celery application the Celery interop test runs in a real worker process.

Configured from the environment so the worker process and the test agree without sharing
state: FIRTH_CELERY_BROKER (the target's AMQP URL) and FIRTH_CELERY_QUEUE (a queue unique to
the test run). Late acknowledgement, prefetch 1 and the rpc:// result backend, as a production
setup that cares about not losing tasks would have.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from celery import Celery

app = Celery(
    "firth_interop",
    broker=os.environ.get("FIRTH_CELERY_BROKER", "amqp://guest:guest@127.0.0.1:5672//"),
    backend="rpc://",
)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue=os.environ.get("FIRTH_CELERY_QUEUE", "firth-interop"),
    result_expires=300,
    # The worker process sets a short AMQP heartbeat: its event loop wakes up for each check,
    # which is also when it notices a shutdown signal (default 120 s heartbeat: ~10 s to stop).
    broker_heartbeat=float(os.environ.get("FIRTH_CELERY_HEARTBEAT", "120")),
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
)


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task(bind=True, max_retries=3)
def fails_once(self: Any, marker: str) -> dict[str, int]:
    """Raise (and retry after a short countdown) the first time, succeed the second."""
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once\n")
        raise self.retry(exc=RuntimeError("first attempt fails"), countdown=0.2)
    return {"retries": self.request.retries}


@app.task
def checkpoint(journal: str, release: str) -> int:
    """Append a line per execution to ``journal``, then wait for ``release`` to exist: the test
    kills the worker while it waits, to see the late-acked task delivered again."""
    with open(journal, "a") as file:
        file.write("started\n")
    deadline = time.monotonic() + 60
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.02)  # polling a file the test creates; bounded by the deadline
    return len(Path(journal).read_text().splitlines())
