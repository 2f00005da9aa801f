"""The server lifecycle: build the broker and its listeners from a Config, start, stop.

Start order: open storage (recovering any partition that was not shut down cleanly), then bind
the listeners. Stop order, bounded by `shutdown_timeout_s`: stop accepting connections, wake
long-polling fetches, let in-flight requests finish, close connections, flush and close every
log (which writes the clean-shutdown markers), release the data folder lock.

`run()` is what `firth serve` calls: it installs SIGINT/SIGTERM handlers that trigger the same
graceful stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from firth.broker.broker import Broker, BrokerSettings
from firth.broker.topic_config import BrokerDefaults
from firth.config import Config, parse_host_port, parse_users
from firth.heap import settle_heap
from firth.kafka.server import KafkaServer

if TYPE_CHECKING:
    from firth.amqp.server import AmqpServer

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"


class DataDirLocked(RuntimeError):
    """Another Firth process is using the data folder."""


class FirthApp:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.broker = Broker(
            BrokerSettings(
                data_dir=Path(config.data_dir),
                defaults=BrokerDefaults(
                    retention_ms=config.log_retention_ms,
                    retention_bytes=config.log_retention_bytes,
                    segment_bytes=config.log_segment_bytes,
                    segment_ms=config.log_segment_ms,
                    max_message_bytes=config.message_max_bytes,
                ),
                node_id=config.node_id,
                fsync=config.fsync,
                auto_create_topics=config.auto_create_topics,
                num_partitions=config.num_partitions,
                retention_check_interval_ms=config.retention_check_interval_ms,
                group_initial_rebalance_delay_ms=config.group_initial_rebalance_delay_ms,
                group_consumer_session_timeout_ms=config.group_consumer_session_timeout_ms,
                group_consumer_heartbeat_interval_ms=config.group_consumer_heartbeat_interval_ms,
            )
        )
        host, port = parse_host_port(config.kafka_listen)
        self.kafka = KafkaServer(self.broker, host, port, config.kafka_advertised)
        self.amqp: AmqpServer | None = None
        self._stopped = asyncio.Event()
        self._stopping = False
        self._lock_fd: int | None = None

    @property
    def kafka_address(self) -> tuple[str, int]:
        return self.kafka.address

    @property
    def amqp_address(self) -> tuple[str, int] | None:
        return None if self.amqp is None else self.amqp.address

    def _lock_data_dir(self) -> None:
        data_dir = Path(self.config.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataDirLocked(
                f"the data folder {data_dir} is in use by another Firth process; "
                "stop it or choose another folder with --data-dir"
            ) from None
        self._lock_fd = fd

    async def start(self) -> None:
        self._lock_data_dir()
        try:
            await self.broker.start()
            await self.kafka.start()
            if self.config.amqp_listen is not None:
                from firth.amqp.codec import AmqpPropertiesCodec
                from firth.amqp.server import AmqpServer

                vhost = self.broker.open_vhost("/", AmqpPropertiesCodec())
                amqp_host, amqp_port = parse_host_port(self.config.amqp_listen)
                self.amqp = AmqpServer(
                    amqp_host,
                    amqp_port,
                    vhost=vhost,
                    group_commit=self.broker.group_commit,
                    admin_path=Path(self.config.data_dir) / "__amqp" / "admin.sock",
                    users={"guest": "guest", **parse_users(self.config.amqp_users)},
                )
                await self.amqp.start()
        except BaseException:
            self._unlock()
            raise

    async def stop(self) -> None:
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        timeout = self.config.shutdown_timeout_s
        logger.info("stopping: finishing in-flight requests (at most %.1fs)", timeout)
        self.kafka.stop_accepting()
        if self.amqp is not None:
            self.amqp.stop_accepting()
        self.broker.stopping = True
        for partition in self.broker.catalog.all_partitions():
            partition.wake_all()
        try:
            if self.amqp is not None:
                await asyncio.gather(self.kafka.drain(timeout / 2), self.amqp.drain(timeout / 2))
            else:
                await self.kafka.drain(timeout / 2)
        finally:
            await self.broker.stop()
            self._unlock()
            self._stopped.set()
            logger.info("stopped cleanly")

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


def _install_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def run(config: Config, on_started: Callable[[FirthApp], None] | None = None) -> int:
    """Run until SIGINT or SIGTERM, then stop gracefully. Returns the process exit code.

    `on_started` is called once every listener is bound (`firth serve --ready-file` uses it to
    publish the actual address when the port was 0).
    """
    _install_uvloop()

    async def main() -> int:
        app = FirthApp(config)
        try:
            await app.start()
        except DataDirLocked as exc:
            logger.error("%s", exc)
            return 1
        except OSError as exc:
            logger.error("could not start: %s", exc)
            return 1
        settle_heap()
        if on_started is not None:
            on_started(app)
        loop = asyncio.get_running_loop()
        stop_requested = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_requested.set)
        await stop_requested.wait()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        try:
            await asyncio.wait_for(app.stop(), timeout=config.shutdown_timeout_s)
        except TimeoutError:
            logger.error("graceful stop took longer than %.1fs", config.shutdown_timeout_s)
            return 1
        return 0

    return asyncio.run(main())
