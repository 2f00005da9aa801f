"""``running_broker()``: a whole Firth broker inside the test process, on a free loopback port.

The broker (``firth.app.FirthApp``) runs in a background thread on its own event loop, so the
test's code stays synchronous (or keeps its own loop) and talks to it over real sockets, like any
client would. Defaults suit a test suite: listener on 127.0.0.1 port 0 (the OS picks a free one),
a fresh temporary data folder removed afterwards, fsync on (tests exercise the real write path),
and no initial rebalance delay for consumer groups. ``FIRTH_*`` environment variables are
deliberately ignored so a developer's shell cannot change what a test runs against.

Concurrency: the broker thread owns the app and its loop; the caller's thread only ever asks it
to stop (``loop.call_soon_threadsafe``) and joins it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firth.config import Config, format_host_port

# Settings a test broker starts with unless the caller overrides them.
TEST_DEFAULTS: dict[str, Any] = {
    "kafka_listen": "127.0.0.1:0",
    "amqp_listen": "",  # no AMQP listener unless asked for (amqp_listen="127.0.0.1:0")
    "fsync": True,
    "group_initial_rebalance_delay_ms": 0,
}
# Upper bound on opening storage and binding the listener.
START_TIMEOUT_S = 30.0


class BrokerStartError(RuntimeError):
    """The broker did not start; the message carries its reason."""


@dataclass(slots=True)
class RunningBroker:
    """A broker started by ``running_broker``: where to reach it and how to stop it early."""

    config: Config
    data_dir: Path
    kafka_host: str
    kafka_port: int
    _stop: Callable[[], None] = field(repr=False)
    amqp_host: str | None = None
    amqp_port: int | None = None

    @property
    def bootstrap(self) -> str:
        """``"127.0.0.1:PORT"``: the value for a client's ``bootstrap.servers``."""
        return format_host_port(self.kafka_host, self.kafka_port)

    @property
    def amqp_url(self) -> str | None:
        """``amqp://guest:guest@127.0.0.1:PORT/`` when an AMQP listener runs (``amqp_listen``)."""
        if self.amqp_host is None or self.amqp_port is None:
            return None
        return f"amqp://guest:guest@{format_host_port(self.amqp_host, self.amqp_port)}/"

    def stop(self) -> None:
        """Stop the broker gracefully now (idempotent); the context exit then only cleans up."""
        self._stop()


class _BrokerThread:
    """Runs one FirthApp on a private event loop in a daemon thread."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.address: tuple[str, int] | None = None
        self.amqp_address: tuple[str, int] | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._lock = threading.Lock()
        self._reported = False  # a failure while running is raised by the first stop() only
        self._thread = threading.Thread(target=self._main, name="firth-test-broker", daemon=True)

    def start(self) -> tuple[str, int]:
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S):
            raise BrokerStartError(f"the broker did not start within {START_TIMEOUT_S:.0f}s")
        if self._error is not None or self.address is None:
            raise BrokerStartError(f"the broker did not start: {self._error!r}") from self._error
        return self.address

    def stop(self) -> None:
        with self._lock:
            loop, event = self._loop, self._stop_requested
            if loop is not None and event is not None and not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(event.set)
        self._thread.join(self.config.shutdown_timeout_s + 5)
        if self._thread.is_alive():
            raise RuntimeError(
                f"the broker did not stop within {self.config.shutdown_timeout_s + 5:.0f}s"
            )
        if self._error is not None and self.address is not None and not self._reported:
            self._reported = True
            raise RuntimeError(f"the broker failed while running: {self._error!r}") from (
                self._error
            )

    def _main(self) -> None:
        try:
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                runner.run(self._serve())
        except BaseException as error:
            self._error = error
        finally:
            with self._lock:
                self._loop = None
            self._started.set()

    async def _serve(self) -> None:
        from firth.app import FirthApp

        app = FirthApp(self.config)
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._stop_requested = asyncio.Event()
            stop_requested = self._stop_requested
        await app.start()
        try:
            self.amqp_address = app.amqp_address
            self.address = app.kafka_address
            self._started.set()
            await stop_requested.wait()
        finally:
            await asyncio.wait_for(app.stop(), self.config.shutdown_timeout_s)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop  # type: ignore[no-any-return]


@contextlib.contextmanager
def running_broker(
    *, data_dir: Path | None = None, **config_overrides: Any
) -> Iterator[RunningBroker]:
    """Run a Firth broker in-process for the duration of the ``with`` block.

    ``data_dir``: keep data there (not removed afterwards); default: a temporary folder that is
    removed. ``config_overrides``: any ``firth.config.Config`` field, e.g. ``num_partitions=3``,
    ``auto_create_topics=False``, ``fsync=False`` (faster, loses nothing a test needs unless it
    tests crashes), ``amqp_listen="127.0.0.1:0"`` (an AMQP listener; ``broker.amqp_url``).
    Yields a RunningBroker; ``broker.bootstrap`` goes in a client's config.
    """
    temporary = data_dir is None
    folder = Path(tempfile.mkdtemp(prefix="firth-test-")) if data_dir is None else Path(data_dir)
    try:
        config = Config.load(env={}, **{**TEST_DEFAULTS, **config_overrides, "data_dir": folder})
        thread = _BrokerThread(config)
        host, port = thread.start()
        try:
            yield RunningBroker(
                config=config,
                data_dir=folder,
                kafka_host=host,
                kafka_port=port,
                _stop=thread.stop,
                amqp_host=thread.amqp_address[0] if thread.amqp_address else None,
                amqp_port=thread.amqp_address[1] if thread.amqp_address else None,
            )
        finally:
            thread.stop()
    finally:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)
