"""``broker_process()``: ``firth serve`` as a child process that a test can kill, stop and restart.

For what an in-process broker cannot show: SIGKILL in the middle of a write (durability), SIGTERM
(graceful shutdown and its exit code), and a restart on the same data folder and the same port
(so a client that keeps its bootstrap address reconnects).

Start-up handshake: the child runs ``python -m firth serve --ready-file PATH`` and writes its
bound "host:port" there once the Kafka listener accepts connections; the parent waits for that
file (or for the child to exit, which is reported with the tail of its log), then checks that a
TCP connection is accepted. The first start listens on port 0; a restart asks for the port the
first one got. Settings are passed as ``FIRTH_<FIELD>`` environment variables (every Config field
has one); ``FIRTH_*`` variables of the parent are removed so they cannot leak in. The child's
stdout and stderr go to a log file kept beside the ready file, outside the data folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from firth.config import ENV_PREFIX, Config, format_host_port, parse_host_port
from firth.testing.inprocess import BrokerStartError

# Upper bound on a start (including recovery after a kill) before the test fails.
START_TIMEOUT_S = 60.0
POLL_S = 0.02


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


class BrokerProcess:
    """One ``firth serve`` child process (restartable); see the module docstring."""

    def __init__(self, data_dir: Path, overrides: dict[str, Any]) -> None:
        self.data_dir = Path(data_dir)
        # Validate the overrides here, in the test's process, for a clear error.
        Config.load(env={}, data_dir=self.data_dir, **overrides)
        self._overrides = dict(overrides)
        self._listen = str(self._overrides.pop("kafka_listen", "127.0.0.1:0"))
        amqp_listen = self._overrides.pop("amqp_listen", None)
        self._amqp_listen = None if amqp_listen is None else str(amqp_listen)
        self._work = Path(tempfile.mkdtemp(prefix="firth-process-"))
        self.log_path = self._work / "serve.log"
        self._ready_path = self._work / "ready"
        self._amqp_ready_path = self._work / "ready.amqp"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.kafka_host = ""
        self.kafka_port = 0
        self.amqp_host = ""
        self.amqp_port = 0

    # --- state ---------------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return format_host_port(self.kafka_host, self.kafka_port)

    @property
    def amqp_url(self) -> str | None:
        """``amqp://guest:guest@HOST:PORT/`` when started with ``amqp_listen``."""
        if not self.amqp_port:
            return None
        return f"amqp://guest:guest@{format_host_port(self.amqp_host, self.amqp_port)}/"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the broker process was never started")
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """None while running; the exit status after (negative: killed by that signal)."""
        return None if self._process is None else self._process.poll()

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_text(self) -> str:
        """Everything the broker wrote to stdout and stderr so far (all starts)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # --- control -------------------------------------------------------------------------------

    def start(self) -> None:
        if self.running():
            raise RuntimeError("the broker process is already running")
        self._ready_path.unlink(missing_ok=True)
        self._amqp_ready_path.unlink(missing_ok=True)
        listen = self._listen
        if self.kafka_port:
            listen = format_host_port(self.kafka_host, self.kafka_port)
        env = {key: value for key, value in os.environ.items() if not key.startswith(ENV_PREFIX)}
        for key, value in self._overrides.items():
            env[ENV_PREFIX + key.upper()] = _env_value(value)
        if self._amqp_listen is None:  # no AMQP listener unless asked for
            env[ENV_PREFIX + "AMQP_LISTEN"] = ""
        command = [
            sys.executable,
            "-m",
            "firth",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--kafka-listen",
            listen,
            "--ready-file",
            str(self._ready_path),
        ]
        if self._amqp_listen is not None:
            amqp_listen = self._amqp_listen
            if self.amqp_port:  # a restart keeps the port
                amqp_listen = format_host_port(self.amqp_host, self.amqp_port)
            command += ["--amqp-listen", amqp_listen]
        self._close_log()
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._ready_path.exists():
            if self.returncode is not None:
                raise BrokerStartError(
                    f"firth serve exited with {self.returncode} before listening:\n"
                    + self._log_tail()
                )
            if time.monotonic() > deadline:
                self.kill()
                raise BrokerStartError(
                    f"firth serve did not listen within {START_TIMEOUT_S:.0f}s:\n"
                    + self._log_tail()
                )
            time.sleep(POLL_S)
        self.kafka_host, self.kafka_port = parse_host_port(self._ready_path.read_text())
        if self._amqp_listen is not None:
            self.amqp_host, self.amqp_port = parse_host_port(self._amqp_ready_path.read_text())
        while True:
            try:
                with socket.create_connection((self.kafka_host, self.kafka_port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline or self.returncode is not None:
                    raise BrokerStartError(
                        f"firth serve announced {self.bootstrap} but does not accept "
                        "connections:\n" + self._log_tail()
                    ) from None
                time.sleep(POLL_S)

    def kill(self) -> None:
        """SIGKILL: no graceful stop, no flush, no clean-shutdown marker. Waits for the exit."""
        if self.running():
            assert self._process is not None
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for the exit (graceful stop); returns the exit code."""
        if self._process is None:
            raise RuntimeError("the broker process was never started")
        if self.running():
            self._process.send_signal(signal.SIGTERM)
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(
                f"firth serve did not stop within {timeout:.0f}s of SIGTERM (killed):\n"
                + self._log_tail()
            ) from None

    def restart(self) -> None:
        """Stop (gracefully) if running, then start again on the same data folder and port."""
        if self.running():
            self.terminate()
        self.start()

    def close(self) -> None:
        """Stop the process if it still runs and remove the log folder."""
        try:
            if self.running():
                try:
                    self.terminate()
                except RuntimeError:
                    pass
        finally:
            self._close_log()
            shutil.rmtree(self._work, ignore_errors=True)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def _log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


@contextlib.contextmanager
def broker_process(data_dir: Path, **overrides: Any) -> Iterator[BrokerProcess]:
    """Start ``firth serve`` on ``data_dir`` as a subprocess; stop it when the block ends.

    ``overrides`` are Config fields (``fsync=False``, ``shutdown_timeout_s=5`` ...). The data
    folder is the caller's and is kept.
    """
    process = BrokerProcess(data_dir, overrides)
    try:
        process.start()
        yield process
    finally:
        process.close()
