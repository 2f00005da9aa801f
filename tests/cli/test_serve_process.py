"""`firth serve` as a process: start-up failures and signals (see also tests/testing)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firth.testing import broker_process

SERVE = [sys.executable, "-m", "firth", "serve"]


def clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("FIRTH_")}


def test_serve_on_a_port_in_use_exits_1_with_a_message(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*SERVE, "--data-dir", str(tmp_path), "--kafka-listen", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
        )
    assert result.returncode == 1
    assert "in use" in result.stderr.lower()
    assert "Traceback" not in result.stderr


def test_serve_with_a_bad_setting_exits_2_before_starting(tmp_path: Path) -> None:
    env = clean_env() | {"FIRTH_LOG_SEGMENT_BYTES": "tiny"}
    result = subprocess.run(
        [*SERVE, "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert "FIRTH_LOG_SEGMENT_BYTES" in result.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_gracefully_on_signal(tmp_path: Path, signal_number: int) -> None:
    with broker_process(tmp_path, shutdown_timeout_s=3) as broker:
        started = time.monotonic()
        os.kill(broker.pid, signal_number)
        deadline = started + 3 + 5
        while broker.running():
            assert time.monotonic() < deadline, "firth serve did not stop in time"
            time.sleep(0.02)
        assert broker.returncode == 0
        assert "Traceback" not in broker.log_text()
