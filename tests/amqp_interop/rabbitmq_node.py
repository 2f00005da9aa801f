"""A throwaway RabbitMQ node for the parity run: started in a temp folder, stopped afterwards.

Debian's ``rabbitmq-server`` package (3.10) is used as installed, but not its system service:
``/usr/sbin/rabbitmq-server`` switches to the ``rabbitmq`` user and the shared data folder, so
the node is started from ``/usr/lib/rabbitmq/bin/rabbitmq-server`` with everything it writes
redirected into one temporary folder:

- ``HOME`` is that folder, so the Erlang cookie (``$HOME/.erlang.cookie``) is private to the
  node and created on first start (this works as root too; nothing else needs root);
- ``RABBITMQ_NODENAME`` is ``firth-test-<pid>@localhost``, unique per test process;
- ``RABBITMQ_NODE_PORT``, ``RABBITMQ_DIST_PORT`` and ``ERL_EPMD_PORT`` are free loopback ports
  (a private epmd, bound to 127.0.0.1 via ``ERL_EPMD_ADDRESS``, so a system epmd or another
  test run cannot interfere), and ``RABBITMQ_NODE_IP_ADDRESS=127.0.0.1``;
- the mnesia, log, config, plugins, env-file and pid paths all point inside the folder, so
  ``/etc/rabbitmq`` is not read.

The node takes about 15 seconds to boot on the 2-core test machine, so a test session starts
one and shares it. ``start()`` returns once a pika ``BlockingConnection`` completes the AMQP
handshake. ``stop()`` sends SIGTERM to the node's process group (beam stops gracefully on it),
falls back to SIGKILL, then stops the private epmd (it daemonizes out of the group).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pika
import pika.exceptions

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
EPMD = "epmd"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


class RabbitMQUnavailable(RuntimeError):
    """RabbitMQ is not installed or the node did not come up; the message says why."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RabbitMQNode:
    """One RabbitMQ node in its own folder; ``url`` is its AMQP URL once started."""

    def __init__(self, work_dir: Path | None = None, port: int | None = None) -> None:
        self.owns_dir = work_dir is None
        self.work_dir = (
            Path(tempfile.mkdtemp(prefix="firth-rabbitmq-")) if work_dir is None else work_dir
        )
        self.port = port or free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.nodename = f"firth-test-{os.getpid()}@localhost"
        self.log_path = self.work_dir / "server.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def environment(self) -> dict[str, str]:
        folder = self.work_dir
        env = {key: value for key, value in os.environ.items() if not key.startswith("RABBITMQ_")}
        env.update(
            HOME=str(folder),
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS="127.0.0.1",
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(folder / "mnesia"),
            RABBITMQ_LOG_BASE=str(folder / "log"),
            RABBITMQ_CONFIG_FILE=str(folder / "rabbitmq"),  # .conf is appended
            RABBITMQ_ADVANCED_CONFIG_FILE=str(folder / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(folder / "enabled_plugins"),
            RABBITMQ_CONF_ENV_FILE=str(folder / "rabbitmq-env.conf"),
            RABBITMQ_PID_FILE=str(folder / "rabbitmq.pid"),
        )
        return env

    def start(self) -> None:
        if not SERVER.exists():
            raise RabbitMQUnavailable(
                f"{SERVER} not found: install Debian's rabbitmq-server (apt-get install -y "
                "rabbitmq-server)"
            )
        folder = self.work_dir
        (folder / "rabbitmq-env.conf").write_text("")
        (folder / "enabled_plugins").write_text("[].\n")
        (folder / "rabbitmq.conf").write_text("")
        log = self.log_path.open("ab")
        try:
            self._process = subprocess.Popen(
                [str(SERVER)],
                env=self.environment(),
                cwd=folder,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        parameters = pika.URLParameters(self.url + "?connection_attempts=1&socket_timeout=2")
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RabbitMQUnavailable(
                    f"rabbitmq-server exited with {self._process.returncode}:\n{self.log_tail()}"
                )
            try:
                pika.BlockingConnection(parameters).close()
                return
            except pika.exceptions.AMQPError as error:
                last_error = error
            time.sleep(0.2)
        raise RabbitMQUnavailable(
            f"RabbitMQ did not answer an AMQP handshake within {START_TIMEOUT_S:.0f}s "
            f"({last_error!r}):\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the whole node (no graceful stop); its folder and ports stay for ``restart``."""
        process, self._process = self._process, None
        if process is not None:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT_S)

    def restart(self) -> None:
        """Stop gracefully if running, then boot again on the same folder and ports."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            process.wait(STOP_TIMEOUT_S)
        self.start()

    def stop(self) -> None:
        process, self._process = self._process, None
        try:
            if process is not None and process.poll() is None:
                _signal_group(process.pid, signal.SIGTERM)
                try:
                    process.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    _signal_group(process.pid, signal.SIGKILL)
                    process.wait(STOP_TIMEOUT_S)
                # beam may outlive the wrapper script by a moment: reap the group's stragglers
                _signal_group(process.pid, signal.SIGKILL)
            subprocess.run(
                [EPMD, "-kill"],
                env=self.environment(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=10,
                check=False,
            )
        finally:
            if self.owns_dir:
                shutil.rmtree(self.work_dir, ignore_errors=True)


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass
