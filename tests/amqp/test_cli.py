"""``firth queues|exchanges|bindings|amqp`` against an in-process broker with an AMQP listener.

The commands run through ``firth.cli.main`` in this process (stdout captured); the broker is a
real one on a free loopback port, its data folder a temporary one (the admin socket lives
there).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from firth.cli import main
from firth.testing import RunningBroker, running_broker

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBroker]:
    data = tmp_path_factory.mktemp("cli") / "data"
    with running_broker(data_dir=data, amqp_listen="127.0.0.1:0", fsync=False) as running:
        yield running


def firth(capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, str, str]:
    code = main(list(words))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_publish_then_list_then_get(
    broker: RunningBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    url, data = broker.amqp_url or "", str(broker.data_dir)
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare("cli-q", durable=True, arguments={"x-max-length": 10})
    channel.exchange_declare("cli-x", "topic", durable=True)
    channel.queue_bind("cli-q", "cli-x", "a.#")
    connection.close()

    assert firth(capsys, "amqp", "publish", "cli-x", "a.b", "hello", "--url", url)[0] == 0
    assert firth(capsys, "amqp", "publish", "", "cli-q", "second", "--url", url)[0] == 0

    code, out, _ = firth(capsys, "queues", "list", "--data-dir", data, "--json")
    assert code == 0
    [row] = [r for r in json.loads(out) if r["name"] == "cli-q"]
    assert (row["ready"], row["unacked"], row["consumers"], row["durable"]) == (2, 0, 0, True)
    assert row["arguments"] == {"x-max-length": 10}

    code, out, _ = firth(capsys, "exchanges", "list", "--data-dir", data, "--json")
    assert {"name": "cli-x", "type": "topic"}.items() <= next(
        x for x in json.loads(out) if x["name"] == "cli-x"
    ).items()
    code, out, _ = firth(capsys, "bindings", "list", "--data-dir", data, "--json")
    assert any(
        (b["source"], b["destination"], b["routing_key"]) == ("cli-x", "cli-q", "a.#")
        for b in json.loads(out)
    )

    code, out, _ = firth(capsys, "amqp", "get", "cli-q", "--url", url, "--json", "--count", "5")
    assert code == 0
    got = [json.loads(line) for line in out.splitlines()]
    assert [(g["body"], g["exchange"], g["routing_key"]) for g in got] == [
        ("hello", "cli-x", "a.b"),
        ("second", "", "cli-q"),
    ]
    code, out, err = firth(capsys, "amqp", "get", "cli-q", "--url", url)
    assert code == 0 and out == "" and "empty" in err


def test_purge_and_delete(broker: RunningBroker, capsys: pytest.CaptureFixture[str]) -> None:
    url = broker.amqp_url or ""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare("cli-purge")
    channel.confirm_delivery()
    for body in (b"1", b"2", b"3"):
        channel.basic_publish("", "cli-purge", body)
    connection.close()
    code, out, _ = firth(capsys, "queues", "purge", "cli-purge", "--url", url)
    assert code == 0 and "purged 3" in out
    code, out, _ = firth(capsys, "queues", "delete", "cli-purge", "--url", url)
    assert code == 0 and "deleted cli-purge" in out
    code, _, err = firth(capsys, "queues", "delete", "cli-purge", "--url", url)
    assert code == 1 and "404" in err


def test_unroutable_mandatory_publish_fails(
    broker: RunningBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    url = broker.amqp_url or ""
    code, _, err = firth(
        capsys, "amqp", "publish", "", "no-such-queue", "x", "--mandatory", "--url", url
    )
    assert code == 1 and "unroutable" in err


def test_unreachable_broker_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert firth(capsys, "queues", "list", "--data-dir", str(tmp_path))[0] == 3
    url = "amqp://guest:guest@127.0.0.1:1/"
    assert firth(capsys, "amqp", "get", "q", "--url", url)[0] == 3
