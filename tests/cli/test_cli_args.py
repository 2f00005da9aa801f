"""The firth command line without a broker: argument errors, exit codes, config loading, hooks."""

from __future__ import annotations

import socket
import sys
import time
import types
from pathlib import Path

import pytest

import firth
from firth import cli
from firth.cli.consume import parse_timestamp
from firth.cli.errors import EXIT_UNREACHABLE, EXIT_USAGE, UsageError
from firth.cli.serve import load_config


def run(argv: list[str]) -> int:
    """main(argv), with argparse's SystemExit turned into its code."""
    try:
        return cli.main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--version"]) == 0
    assert firth.__version__ in capsys.readouterr().out


def test_help_lists_commands_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("serve", "topics", "produce", "consume"):
        assert command in out
    assert "exit codes" in out


def test_serve_help_states_the_safe_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    assert "./firth-data" in out
    assert "127.0.0.1:9092" in out
    assert "loopback only" in out
    assert "--ready-file" not in out  # hidden: for firth.testing only


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["launch"],
        ["topics"],
        ["topics", "create"],
        ["topics", "create", "t", "--partitions", "0"],
        ["topics", "create", "t", "--partitions", "many"],
        ["produce"],
        ["produce", "t", "--acks", "2"],
        ["produce", "t", "--compression", "brotli"],
        ["consume", "t", "--from-beginning", "--offset", "3"],
        ["consume", "t", "--offset", "x"],
        ["consume", "t", "--max-messages", "0"],
        ["consume", "t", "--timeout", "-1"],
    ],
)
def test_argument_errors_exit_2_with_usage(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "usage:" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["topics", "list", "--bootstrap", "nohost"], "has no port"),
        (["consume", "t", "--format", "{nope}"], "not a valid template"),
        (["consume", "t", "--from-timestamp", "yesterday"], "neither epoch milliseconds"),
        (["topics", "alter", "t"], "nothing to alter"),
        (["topics", "create", "t", "--config", "retention.ms"], "not KEY=VALUE"),
        (["produce", "t", "--key-separator", ""], "must not be empty"),
        (["produce", "t", "--header", "novalue"], "not KEY=VALUE"),
    ],
)
def test_usage_errors_found_before_connecting(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing listens at the bootstrap address: reaching it would fail with exit code 3.
    if "--bootstrap" not in argv:
        argv = [*argv, "--bootstrap", f"127.0.0.1:{closed_port()}"]
    started = time.monotonic()
    assert run(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("firth: error:")
    assert "Traceback" not in err
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "argv",
    [
        ["topics", "list"],
        ["topics", "describe", "t"],
        ["topics", "create", "t"],
        ["consume", "t"],
    ],
)
def test_unreachable_broker_fails_fast_with_advice(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    address = f"127.0.0.1:{closed_port()}"
    started = time.monotonic()
    assert run([*argv, "--bootstrap", address]) == EXIT_UNREACHABLE
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert f"could not reach a broker at {address}" in err
    assert "firth serve" in err
    assert "--bootstrap" in err
    assert elapsed < 5


def test_unreachable_broker_for_produce(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=iter([b"x\n"])))
    address = f"127.0.0.1:{closed_port()}"
    monkeypatch.setenv("FIRTH_BOOTSTRAP", address)
    # FIRTH_BOOTSTRAP is read when the parser is built, i.e. inside main().
    assert run(["produce", "t"]) == EXIT_UNREACHABLE
    assert f"could not reach a broker at {address}" in capsys.readouterr().err


def parse(argv: list[str]) -> object:
    return cli.build_parser().parse_args(argv)


def test_serve_flags_become_config_fields(tmp_path: Path) -> None:
    args = parse(
        [
            "serve",
            "--data-dir",
            str(tmp_path),
            "--kafka-listen",
            "127.0.0.1:0",
            "--kafka-advertised",
            "broker.example:9092",
            "--no-auto-create-topics",
            "--num-partitions",
            "3",
            "--log-level",
            "debug",
            "--unsafe-no-fsync",
        ]
    )
    config = load_config(args, env={})  # type: ignore[arg-type]
    assert config.data_dir == tmp_path
    assert config.kafka_listen == "127.0.0.1:0"
    assert config.kafka_advertised == "broker.example:9092"
    assert config.auto_create_topics is False
    assert config.num_partitions == 3
    assert config.log_level == "DEBUG"
    assert config.fsync is False


def test_serve_flags_beat_env_beats_file(tmp_path: Path) -> None:
    path = tmp_path / "firth.toml"
    path.write_text('data_dir = "file-dir"\nkafka_listen = "127.0.0.1:1"\nnum_partitions = 5\n')
    env = {"FIRTH_KAFKA_LISTEN": "127.0.0.1:2", "FIRTH_NUM_PARTITIONS": "6"}
    args = parse(["serve", "--config", str(path), "--num-partitions", "7"])
    config = load_config(args, env=env)  # type: ignore[arg-type]
    assert config.data_dir == Path("file-dir")
    assert config.kafka_listen == "127.0.0.1:2"
    assert config.num_partitions == 7
    # Flags not given do not override: fsync and auto-create keep their defaults.
    assert config.fsync is True
    assert config.auto_create_topics is True


def test_serve_flags_absent_leave_env_in_force() -> None:
    args = parse(["serve"])
    config = load_config(args, env={"FIRTH_FSYNC": "false", "FIRTH_AUTO_CREATE_TOPICS": "0"})  # type: ignore[arg-type]
    assert config.fsync is False
    assert config.auto_create_topics is False


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--kafka-listen", "nope"], "--kafka-listen"),
        (["serve", "--num-partitions", "0"], "--num-partitions"),
        (["serve", "--log-level", "loud"], "--log-level"),
        (["serve", "--config", "/nonexistent/firth.toml"], "does not exist"),
    ],
)
def test_serve_bad_config_is_a_usage_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_serve_bad_env_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FIRTH_NUM_PARTITIONS", "lots")
    assert run(["serve"]) == EXIT_USAGE
    assert "FIRTH_NUM_PARTITIONS" in capsys.readouterr().err


def test_serve_unknown_key_in_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "firth.toml"
    path.write_text("kafka_lisen = '127.0.0.1:9092'\n")
    assert run(["serve", "--config", str(path)]) == EXIT_USAGE
    assert "did you mean 'kafka_listen'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1700000000000", 1_700_000_000_000),
        ("2023-11-14T22:13:20Z", 1_700_000_000_000),
        ("2023-11-14T22:13:20", 1_700_000_000_000),  # no zone: UTC
        ("2023-11-14T23:13:20+01:00", 1_700_000_000_000),
        ("2023-11-14T22:13:20.250Z", 1_700_000_000_250),
    ],
)
def test_parse_timestamp(text: str, expected: int) -> None:
    assert parse_timestamp(text) == expected


def test_parse_timestamp_rejects_words() -> None:
    with pytest.raises(UsageError):
        parse_timestamp("last tuesday")


# --- hooks --------------------------------------------------------------------------------------


def _hook_module(name: str, command: str, calls: list[object]) -> types.ModuleType:
    module = types.ModuleType(name)

    def register(subparsers: object) -> None:
        parser = subparsers.add_parser(command, help="hooked")  # type: ignore[attr-defined]
        parser.add_argument("--flag", action="store_true")

    def run_hook(args: object) -> int:
        calls.append(args)
        return 7

    module.register = register  # type: ignore[attr-defined]
    module.run = run_hook  # type: ignore[attr-defined]
    return module


def test_hook_module_adds_a_command_dispatched_to_its_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[object] = []
    module = _hook_module("firth_test_hook_groups", "groups", calls)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(cli, "HOOK_MODULES", (module.__name__, "firth_test_hook_missing"))
    assert run(["groups", "--flag"]) == 7
    assert len(calls) == 1
    assert calls[0].flag is True  # type: ignore[attr-defined]


def test_missing_hook_module_leaves_the_command_out(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "HOOK_MODULES", ("firth_test_hook_missing",))
    assert run(["--help"]) == 0
    assert "events" not in capsys.readouterr().out
    assert run(["events"]) == EXIT_USAGE
