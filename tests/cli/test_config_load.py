"""firth.config: precedence of the sources, type conversion, validation and its messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from firth.config import (
    FIELD_NAMES,
    Config,
    ConfigError,
    example_toml,
    format_host_port,
    parse_host_port,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "firth.toml"
    path.write_text(text)
    return path


def test_defaults_are_the_safe_ones() -> None:
    config = Config.load(env={})
    assert config.data_dir == Path("firth-data")
    assert config.kafka_listen == "127.0.0.1:9092"
    assert config.kafka_advertised is None
    assert config.auto_create_topics is True
    assert config.num_partitions == 1
    assert config.fsync is True
    assert config.log_segment_bytes == 1024**3
    assert config.log_segment_ms == 7 * 24 * 3600 * 1000
    assert config.log_retention_ms == 7 * 24 * 3600 * 1000
    assert config.log_retention_bytes == -1
    assert config.message_max_bytes == 1048588
    assert config.retention_check_interval_ms == 300_000
    assert config.group_initial_rebalance_delay_ms == 3000
    assert config.shutdown_timeout_s == 10.0
    assert config.log_level == "INFO"
    assert config.node_id == 0
    assert config == Config()


def test_file_beats_defaults_env_beats_file_overrides_beat_env(tmp_path: Path) -> None:
    path = write(
        tmp_path, 'data_dir = "from-file"\nnum_partitions = 2\nnode_id = 7\nfsync = false\n'
    )
    env = {"FIRTH_NUM_PARTITIONS": "3", "FIRTH_NODE_ID": "8"}
    config = Config.load(path, env=env, node_id=9)
    assert config.data_dir == Path("from-file")  # file only
    assert config.fsync is False  # file only
    assert config.num_partitions == 3  # env over file
    assert config.node_id == 9  # override over env
    assert config.kafka_listen == "127.0.0.1:9092"  # default


def test_config_file_named_by_firth_config_env(tmp_path: Path) -> None:
    path = write(tmp_path, 'kafka_listen = "127.0.0.1:19092"\n')
    config = Config.load(env={"FIRTH_CONFIG": str(path)})
    assert config.kafka_listen == "127.0.0.1:19092"


def test_explicit_path_wins_over_firth_config_env(tmp_path: Path) -> None:
    explicit = write(tmp_path, "num_partitions = 4\n")
    other = tmp_path / "other.toml"
    other.write_text("num_partitions = 5\n")
    assert Config.load(explicit, env={"FIRTH_CONFIG": str(other)}).num_partitions == 4


def test_none_override_means_not_given() -> None:
    config = Config.load(env={"FIRTH_KAFKA_ADVERTISED": "example.org:9092"}, kafka_advertised=None)
    assert config.kafka_advertised == "example.org:9092"


def test_text_overrides_are_converted_like_env() -> None:
    config = Config.load(env={}, num_partitions="6", fsync="off", shutdown_timeout_s="2.5")
    assert (config.num_partitions, config.fsync, config.shutdown_timeout_s) == (6, False, 2.5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", True), ("true", True), ("YES", True), ("on", True), ("0", False), ("False", False)],
)
def test_env_booleans(text: str, expected: bool) -> None:
    assert Config.load(env={"FIRTH_AUTO_CREATE_TOPICS": text}).auto_create_topics is expected


def test_env_every_field_is_read() -> None:
    env = {
        "FIRTH_DATA_DIR": "/tmp/d",
        "FIRTH_KAFKA_LISTEN": "0.0.0.0:1",
        "FIRTH_KAFKA_ADVERTISED": "[::1]:2",
        "FIRTH_AMQP_LISTEN": "127.0.0.1:5673",
        "FIRTH_AMQP_USERS": "app:secret",
        "FIRTH_AUTO_CREATE_TOPICS": "0",
        "FIRTH_NUM_PARTITIONS": "3",
        "FIRTH_FSYNC": "0",
        "FIRTH_LOG_SEGMENT_BYTES": "1_000_000",
        "FIRTH_LOG_SEGMENT_MS": "60000",
        "FIRTH_LOG_RETENTION_MS": "-1",
        "FIRTH_LOG_RETENTION_BYTES": "5000000",
        "FIRTH_MESSAGE_MAX_BYTES": "2000",
        "FIRTH_RETENTION_CHECK_INTERVAL_MS": "1000",
        "FIRTH_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "FIRTH_GROUP_CONSUMER_SESSION_TIMEOUT_MS": "6000",
        "FIRTH_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS": "500",
        "FIRTH_SHUTDOWN_TIMEOUT_S": "3",
        "FIRTH_LOG_LEVEL": "debug",
        "FIRTH_NODE_ID": "4",
    }
    assert len(env) == len(FIELD_NAMES)
    config = Config.load(env=env)
    assert config == Config(
        data_dir=Path("/tmp/d"),
        kafka_listen="0.0.0.0:1",
        kafka_advertised="[::1]:2",
        amqp_listen="127.0.0.1:5673",
        amqp_users="app:secret",
        auto_create_topics=False,
        num_partitions=3,
        fsync=False,
        log_segment_bytes=1_000_000,
        log_segment_ms=60000,
        log_retention_ms=-1,
        log_retention_bytes=5_000_000,
        message_max_bytes=2000,
        retention_check_interval_ms=1000,
        group_initial_rebalance_delay_ms=0,
        group_consumer_session_timeout_ms=6000,
        group_consumer_heartbeat_interval_ms=500,
        shutdown_timeout_s=3.0,
        log_level="DEBUG",
        node_id=4,
    )


def test_empty_env_for_optional_field_means_none() -> None:
    assert Config.load(env={"FIRTH_KAFKA_ADVERTISED": ""}).kafka_advertised is None


def test_unknown_key_in_file_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "num_partition = 3\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'num_partition'.*'num_partitions'"):
        Config.load(path, env={})


def test_unknown_override_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown setting 'bogus'"):
        Config.load(env={}, bogus=1)


def test_wrong_type_in_file_names_file_key_and_expectation(tmp_path: Path) -> None:
    path = write(tmp_path, 'num_partitions = "three"\n')
    with pytest.raises(ConfigError) as caught:
        Config.load(path, env={})
    message = str(caught.value)
    assert str(path) in message
    assert "num_partitions" in message
    assert "'three'" in message
    assert "an integer" in message


def test_boolean_is_not_an_integer_in_file(tmp_path: Path) -> None:
    path = write(tmp_path, "num_partitions = true\n")
    with pytest.raises(ConfigError, match="an integer"):
        Config.load(path, env={})


def test_integer_accepted_for_float_field(tmp_path: Path) -> None:
    path = write(tmp_path, "shutdown_timeout_s = 3\n")
    assert Config.load(path, env={}).shutdown_timeout_s == 3.0


def test_bad_env_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"FIRTH_NUM_PARTITIONS.*'lots'.*an integer"):
        Config.load(env={"FIRTH_NUM_PARTITIONS": "lots"})


def test_out_of_range_names_source_and_limit() -> None:
    with pytest.raises(ConfigError, match=r"FIRTH_LOG_RETENTION_MS.*-5.*at least -1"):
        Config.load(env={"FIRTH_LOG_RETENTION_MS": "-5"})


def test_labels_name_the_flag_in_errors() -> None:
    with pytest.raises(ConfigError, match="--kafka-listen"):
        Config.load(env={}, labels={"kafka_listen": "--kafka-listen"}, kafka_listen="nope")


@pytest.mark.parametrize(
    "changes",
    [
        {"num_partitions": 0},
        {"log_segment_bytes": 13},
        {"log_retention_bytes": -2},
        {"message_max_bytes": -1},
        {"shutdown_timeout_s": -1.0},
        {"log_level": "LOUD"},
        {"node_id": -1},
        {"kafka_listen": "localhost"},
        {"kafka_advertised": "example.org:0"},
        {"num_partitions": "3"},  # the constructor takes typed values only
        {"fsync": 1},
    ],
)
def test_constructor_validates(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Config(**changes)  # type: ignore[arg-type]


def test_missing_file_says_what_to_check(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"does not exist.*--config.*FIRTH_CONFIG"):
        Config.load(tmp_path / "missing.toml", env={})


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "num_partitions = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Config.load(path, env={})


def test_data_dir_expands_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Config.load(env={"FIRTH_DATA_DIR": "~/data"}).data_dir == tmp_path / "data"


def test_log_level_is_case_insensitive(tmp_path: Path) -> None:
    assert Config.load(write(tmp_path, 'log_level = "warning"\n'), env={}).log_level == "WARNING"


def test_example_toml_is_a_valid_config_once_uncommented() -> None:
    lines = [line[2:].split("  #")[0] for line in example_toml().splitlines()]
    text = "\n".join(line for line in lines if not line.startswith("kafka_advertised"))
    import tomllib

    document = tomllib.loads(text)
    assert set(document) == set(FIELD_NAMES) - {"kafka_advertised"}
    assert Config.load(env={}, **document) == Config()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9092", ("127.0.0.1", 9092)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:9092", ("::1", 9092)),
        ("[fe80::1%eth0]:1", ("fe80::1%eth0", 1)),
        (" host:65535 ", ("host", 65535)),
    ],
)
def test_parse_host_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("localhost", "has no port"),
        (":9092", "has no host"),
        ("host:port", "invalid port"),
        ("host:65536", "invalid port"),
        ("host:-1", "invalid port"),
        ("::1:9092", r"write \[::1\]:9092"),
        ("[::1]9092", "not a valid address"),
        ("[::1", "not a valid address"),
    ],
)
def test_parse_host_port_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_host_port(text)


def test_format_host_port_round_trips() -> None:
    for text in ("127.0.0.1:9092", "[::1]:9092", "example.org:1"):
        assert format_host_port(*parse_host_port(text)) == text


def test_addresses_as_tuples() -> None:
    config = Config(kafka_listen="[::1]:0", kafka_advertised="example.org:9093")
    assert config.kafka_listen_address == ("::1", 0)
    assert config.kafka_advertised_address == ("example.org", 9093)
    assert Config().kafka_advertised_address is None
