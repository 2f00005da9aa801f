"""A real Celery worker (a separate process, solo pool) executing tasks through the target
broker: late acks, a task that fails once and is retried, results through rpc://, and a task
redelivered to a new worker after the first one was killed in the middle of it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.amqp_interop import celery_app
from tests.amqp_interop.helpers import wait_for

pytestmark = pytest.mark.timeout(180)

RESULT_TIMEOUT = 30.0
REPO = Path(__file__).resolve().parents[2]


class Worker:
    """``celery worker`` as a child process with its own log file."""

    def __init__(self, url: str, queue: str, log: Path) -> None:
        self.url, self.queue, self.log = url, queue, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(
            os.environ,
            FIRTH_CELERY_BROKER=self.url,
            FIRTH_CELERY_QUEUE=self.queue,
            FIRTH_CELERY_HEARTBEAT="2",  # AMQP heartbeats every second or so, both ways
        )
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "tests.amqp_interop.celery_app",
                    "worker",
                    "--pool=solo",
                    "--without-heartbeat",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel=INFO",
                    "-Q",
                    self.queue,
                    "-n",
                    f"interop-{uuid.uuid4().hex[:8]}@localhost",
                ],
                env=env,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(
            lambda: "ready." in self.log.read_text(errors="replace") or self.exited(),
            timeout=60,
            what="the Celery worker to be ready",
        )
        assert not self.exited(), self.tail()

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.exited():
            return
        self.process.send_signal(signal.SIGTERM)  # warm shutdown
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture
def worker_factory(
    amqp_url: str, tmp_path: Path, name: Callable[[str], str]
) -> Iterator[Callable[[], Worker]]:
    queue = name("celery")
    celery_app.app.conf.update(broker_url=amqp_url, task_default_queue=queue)
    workers: list[Worker] = []

    def start_worker() -> Worker:
        worker = Worker(amqp_url, queue, tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        worker.start()
        return worker

    yield start_worker
    for worker in workers:
        worker.stop()
    celery_app.app.close()


def test_tasks_retry_and_rpc_results(worker_factory: Callable[[], Worker], tmp_path: Path) -> None:
    worker = worker_factory()
    results = [celery_app.add.delay(index, index) for index in range(5)]
    assert [result.get(timeout=RESULT_TIMEOUT) for result in results] == [0, 2, 4, 6, 8], (
        worker.tail()
    )
    marker = tmp_path / "failed-once"
    retried = celery_app.fails_once.delay(str(marker))
    assert retried.get(timeout=RESULT_TIMEOUT) == {"retries": 1}, worker.tail()
    assert marker.read_text() == "failed once\n"


def test_late_acked_task_survives_a_killed_worker(
    worker_factory: Callable[[], Worker], tmp_path: Path
) -> None:
    journal, release = tmp_path / "journal", tmp_path / "release"
    first = worker_factory()
    result = celery_app.checkpoint.delay(str(journal), str(release))
    wait_for(
        lambda: journal.exists() and journal.read_text().count("started") == 1,
        timeout=RESULT_TIMEOUT,
        what="the task to start on the first worker",
    )
    first.kill()  # mid-task: the late ack was never sent, so the broker requeues the task
    second = worker_factory()
    wait_for(
        lambda: journal.read_text().count("started") == 2,
        timeout=RESULT_TIMEOUT,
        what="the task to be redelivered to the second worker",
    )
    release.write_text("go")
    assert result.get(timeout=RESULT_TIMEOUT) == 2, second.tail()
