"""The firth console script, run as a subprocess, against a real broker (firth.testing)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from firth.testing import RunningBroker, running_broker

SCRIPT = Path(sys.executable).with_name("firth")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "firth"]


@pytest.fixture(scope="module")
def broker() -> Iterator[RunningBroker]:
    with running_broker() as running:
        yield running


def firth(
    broker: RunningBroker, *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FIRTH_")}
    env["FIRTH_BOOTSTRAP"] = broker.bootstrap
    return subprocess.run(
        [*COMMAND, *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result


def test_topics_create_list_describe_alter_delete(broker: RunningBroker) -> None:
    created = ok(
        firth(
            broker,
            "topics",
            "create",
            "admin-t",
            "--partitions",
            "2",
            "--config",
            "retention.ms=3600000",
        )
    )
    assert "created topic admin-t with 2 partitions" in created.stderr

    listed = json.loads(ok(firth(broker, "topics", "list", "--json")).stdout)
    assert {"name": "admin-t", "partitions": 2} in listed
    table = ok(firth(broker, "topics", "list")).stdout
    assert any(line.split() == ["admin-t", "2"] for line in table.splitlines())

    described = json.loads(ok(firth(broker, "topics", "describe", "admin-t", "--json")).stdout)
    assert [p["partition"] for p in described["partitions"]] == [0, 1]
    assert all(
        p["log_start_offset"] == 0 and p["high_watermark"] == 0 for p in described["partitions"]
    )
    assert described["configs"]["retention.ms"] == {"value": "3600000", "source": "topic"}
    assert described["configs"]["segment.bytes"]["source"] == "default"
    human = ok(firth(broker, "topics", "describe", "admin-t")).stdout
    assert "High watermark" in human and "retention.ms" in human

    altered = ok(
        firth(
            broker,
            "topics",
            "alter",
            "admin-t",
            "--config",
            "retention.ms=60000",
            "--delete-config",
            "segment.ms",
            "--partitions",
            "3",
        )
    )
    assert "partitions 2 -> 3" in altered.stderr
    described = json.loads(ok(firth(broker, "topics", "describe", "admin-t", "--json")).stdout)
    assert len(described["partitions"]) == 3
    assert described["configs"]["retention.ms"]["value"] == "60000"

    refused = firth(broker, "topics", "delete", "admin-t")  # stdin is not a terminal
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    ok(firth(broker, "topics", "delete", "admin-t", "--yes"))
    listed = json.loads(ok(firth(broker, "topics", "list", "--json")).stdout)
    assert "admin-t" not in [topic["name"] for topic in listed]


def test_topic_errors_are_one_line_with_exit_1(broker: RunningBroker) -> None:
    ok(firth(broker, "topics", "create", "dup-t"))
    again = firth(broker, "topics", "create", "dup-t")
    assert again.returncode == 1
    assert "topic 'dup-t' already exists" in again.stderr
    missing = firth(broker, "topics", "describe", "no-such-topic")
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr
    shrink = firth(broker, "topics", "alter", "dup-t", "--partitions", "1")
    assert shrink.returncode == 0  # already 1 partition: nothing to do
    bad_config = firth(broker, "topics", "alter", "dup-t", "--config", "retention.ms=soon")
    assert bad_config.returncode == 1
    assert "refused" in bad_config.stderr
    for result in (again, missing, bad_config):
        assert "Traceback" not in result.stderr


def test_produce_then_consume_round_trip_with_keys_and_headers(broker: RunningBroker) -> None:
    ok(firth(broker, "topics", "create", "trip-t", "--partitions", "3"))
    lines = [f"key-{i}|value {i} with | bar" for i in range(30)]
    produced = ok(
        firth(
            broker,
            "produce",
            "trip-t",
            "--key-separator",
            "|",
            "--header",
            "source=cli",
            "--header",
            "n=1",
            stdin="\n".join(lines) + "\n",
        )
    )
    assert "30 messages acknowledged" in produced.stderr
    consumed = ok(
        firth(
            broker,
            "consume",
            "trip-t",
            "--from-beginning",
            "--show-key",
            "--show-headers",
            "--show-offset",
        )
    )
    rows = [line.split("\t") for line in consumed.stdout.splitlines()]
    assert len(rows) == 30
    got = {key: (headers, value) for _, key, headers, value in rows}
    assert got == {f"key-{i}": ("source=cli,n=1", f"value {i} with | bar") for i in range(30)}
    # Per partition, offsets count up from 0 in the order the lines were sent.
    by_partition: dict[str, list[tuple[int, int]]] = {}
    for position, key, _, _ in rows:
        partition, offset = position.split(":")
        by_partition.setdefault(partition, []).append((int(offset), int(key.split("-")[1])))
    for entries in by_partition.values():
        assert [offset for offset, _ in entries] == list(range(len(entries)))
        assert [line for _, line in entries] == sorted(line for _, line in entries)
    # The same key always lands in the same partition.
    assert len(by_partition) > 1


def test_produce_reports_and_consume_formats(broker: RunningBroker) -> None:
    ok(firth(broker, "produce", "fmt-t", stdin="a\nb\r\n\nc"))
    out = ok(
        firth(broker, "consume", "fmt-t", "--format", r"{partition}/{offset}\t{key}:{value}")
    ).stdout
    assert out.splitlines() == ["0/0\tnull:a", "0/1\tnull:b", "0/2\tnull:", "0/3\tnull:c"]
    two = ok(firth(broker, "consume", "fmt-t", "--max-messages", "2")).stdout
    assert two.splitlines() == ["a", "b"]


def test_consume_from_offset_and_partition(broker: RunningBroker) -> None:
    ok(firth(broker, "topics", "create", "off-t", "--partitions", "2"))
    ok(
        firth(
            broker,
            "produce",
            "off-t",
            "--partition",
            "1",
            stdin="".join(f"m{i}\n" for i in range(10)),
        )
    )
    out = ok(firth(broker, "consume", "off-t", "--offset", "7", "--partition", "1")).stdout
    assert out.splitlines() == ["m7", "m8", "m9"]
    last = ok(firth(broker, "consume", "off-t", "--offset", "-2")).stdout
    assert last.splitlines() == ["m8", "m9"]
    empty = ok(firth(broker, "consume", "off-t", "--partition", "0"))
    assert empty.stdout == ""
    missing = firth(broker, "consume", "off-t", "--partition", "5")
    assert missing.returncode == 2
    assert "no partition 5" in missing.stderr


def test_consume_from_timestamp(broker: RunningBroker) -> None:
    ok(firth(broker, "produce", "ts-t", stdin="early-1\nearly-2\n"))
    # Every early message was stamped before `boundary`; wait until the clock passes it so every
    # later message is stamped at or after it.
    boundary = int(time.time() * 1000) + 1
    while int(time.time() * 1000) < boundary:
        time.sleep(0.001)
    ok(firth(broker, "produce", "ts-t", stdin="late-1\nlate-2\n"))
    by_ms = ok(firth(broker, "consume", "ts-t", "--from-timestamp", str(boundary))).stdout
    assert by_ms.splitlines() == ["late-1", "late-2"]
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(boundary // 1000))
    iso += f".{boundary % 1000:03d}Z"
    by_iso = ok(firth(broker, "consume", "ts-t", "--from-timestamp", iso)).stdout
    assert by_iso.splitlines() == ["late-1", "late-2"]
    future = ok(firth(broker, "consume", "ts-t", "--from-timestamp", str(boundary + 3_600_000)))
    assert future.stdout == ""


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_produce_compressed(broker: RunningBroker, codec: str) -> None:
    topic = f"codec-{codec}"
    lines = [f"{codec} line {i}" for i in range(50)]
    ok(
        firth(
            broker, "produce", topic, "--compression", codec, "--acks", "1", stdin="\n".join(lines)
        )
    )
    assert ok(firth(broker, "consume", topic)).stdout.splitlines() == lines


def test_produce_line_without_separator_stops_with_usage_error(broker: RunningBroker) -> None:
    result = firth(
        broker, "produce", "sep-t", "--key-separator", "=", stdin="a=1\nnoseparator\nb=2\n"
    )
    assert result.returncode == 2
    assert "line 2 has no key separator" in result.stderr
    assert "1 message acknowledged" in result.stderr
    assert ok(firth(broker, "consume", "sep-t", "--show-key")).stdout.splitlines() == ["a\t1"]


def test_produce_to_missing_topic_without_auto_create() -> None:
    with running_broker(auto_create_topics=False) as strict:
        result = firth(strict, "produce", "nowhere", stdin="x\n")
        assert result.returncode == 1
        assert "'nowhere' does not exist" in result.stderr
        consumed = firth(strict, "consume", "nowhere")
        assert consumed.returncode == 1
        assert "does not exist" in consumed.stderr


def _lines_of(stream: object) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_consume_follow_prints_new_messages_until_interrupted(broker: RunningBroker) -> None:
    ok(firth(broker, "produce", "follow-t", stdin="old\n"))
    env = {key: value for key, value in os.environ.items() if not key.startswith("FIRTH_")}
    env["FIRTH_BOOTSTRAP"] = broker.bootstrap
    follower = subprocess.Popen(
        [*COMMAND, "consume", "follow-t", "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines = _lines_of(follower.stdout)
        # The follower starts at the end; keep producing until it shows a new message.
        deadline = time.monotonic() + 30
        seen = ""
        while not seen.startswith("new"):
            assert time.monotonic() < deadline, "the follower printed nothing"
            ok(firth(broker, "produce", "follow-t", stdin="new\n"))
            try:
                seen = lines.get(timeout=2)
            except queue.Empty:
                continue
        assert seen == "new\n"  # "old" was never printed: --follow starts at the end
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=30) == 130
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
