"""Fixtures of the AMQP interop suite: one target broker per session, names, connections.

The target is chosen by the environment variable ``FIRTH_AMQP_TARGET``:

- unset or ``firth`` (the default): Firth in this process, via
  ``firth.testing.running_broker(amqp_listen="127.0.0.1:0")`` and its ``.amqp_url``;
- ``rabbitmq``: a throwaway RabbitMQ node (``rabbitmq_node.RabbitMQNode``), or, when
  ``FIRTH_AMQP_RABBITMQ_URL`` is set, an already running one (``scripts/rabbitmq.sh start``
  prints that URL) so a developer does not wait for a boot on every run.

The same tests run against both; the few expectations that differ by design ask for the
``target`` fixture and say why. ``name`` gives each test a unique prefix for its queues and
exchanges, since all tests of a session share one broker.
"""

from __future__ import annotations

import itertools
import os
import re
import warnings
from collections.abc import Callable, Iterator

import pika
import pika.adapters.blocking_connection
import pytest

TARGET = os.environ.get("FIRTH_AMQP_TARGET", "firth").strip().lower() or "firth"
if TARGET not in ("firth", "rabbitmq"):
    raise pytest.UsageError(f"FIRTH_AMQP_TARGET must be 'firth' or 'rabbitmq', not {TARGET!r}")

# Firth passes the suite, so it is part of the default run (the FIRTH_AMQP_READY gate is gone).
collect_ignore_glob: list[str] = []
# Durability tests kill and restart the broker process; they are about Firth's storage only.
if TARGET == "rabbitmq":
    collect_ignore_glob.append("test_durability.py")


@pytest.fixture(scope="session")
def target() -> str:
    """``"firth"`` or ``"rabbitmq"``: for the few assertions that differ by design."""
    return TARGET


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """``amqp://guest:guest@127.0.0.1:PORT/`` of the session's broker."""
    if TARGET == "rabbitmq":
        yield from _rabbitmq_url()
    else:
        yield from _firth_url()


def _rabbitmq_url() -> Iterator[str]:
    existing = os.environ.get("FIRTH_AMQP_RABBITMQ_URL")
    if existing:
        yield existing
        return
    from tests.amqp_interop.rabbitmq_node import RabbitMQNode, RabbitMQUnavailable

    # One retry with fresh ports and a fresh folder: a free port picked by probing can be taken
    # by another process before the node binds it. The first failure is reported as a warning.
    first_failure: RabbitMQUnavailable | None = None
    for _attempt in range(2):
        node = RabbitMQNode()
        try:
            node.start()
        except RabbitMQUnavailable as error:
            node.stop()
            if first_failure is not None:
                pytest.fail(f"cannot start the RabbitMQ target: {error}", pytrace=False)
            first_failure = error
            continue
        if first_failure is not None:
            warnings.warn(
                f"RabbitMQ started on the second attempt; first: {first_failure}", stacklevel=1
            )
        try:
            yield node.url
        finally:
            node.stop()
        return


def _firth_url() -> Iterator[str]:
    from firth.testing import running_broker

    try:
        context = running_broker(amqp_listen="127.0.0.1:0")
        broker = context.__enter__()
    except Exception as error:  # any failure here means "no AMQP listener yet"
        pytest.fail(
            "Firth's AMQP listener is not available: running_broker(amqp_listen=...) failed "
            f"with {error!r}. Run against RabbitMQ with FIRTH_AMQP_TARGET=rabbitmq.",
            pytrace=False,
        )
    try:
        url = getattr(broker, "amqp_url", None)
        if not url:
            pytest.fail("firth.testing.RunningBroker has no .amqp_url yet", pytrace=False)
        yield url
    finally:
        context.__exit__(None, None, None)


_counter = itertools.count(1)


@pytest.fixture
def name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """``name("q")`` -> ``"t17.test_purge.q"``: unique per test, readable in broker listings."""
    test = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:60]
    prefix = f"t{os.getpid()}-{next(_counter)}.{test}"
    return lambda suffix: f"{prefix}.{suffix}"


@pytest.fixture
def connect(amqp_url: str) -> Iterator[Callable[[], pika.BlockingConnection]]:
    """Opens pika blocking connections to the target; all are closed after the test."""
    opened: list[pika.BlockingConnection] = []

    def open_connection() -> pika.BlockingConnection:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        opened.append(connection)
        return connection

    yield open_connection
    for connection in opened:
        if connection.is_open:
            connection.close()


@pytest.fixture
def connection(
    connect: Callable[[], pika.BlockingConnection],
) -> pika.BlockingConnection:
    return connect()


@pytest.fixture
def channel(
    connection: pika.BlockingConnection,
) -> pika.adapters.blocking_connection.BlockingChannel:
    return connection.channel()
