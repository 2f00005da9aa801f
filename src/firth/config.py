"""Broker configuration: one frozen value built from defaults, a TOML file, the environment and flags.

Owns the list of broker settings, their defaults, their types and their limits, and the order in
which the sources of a setting win:

    flags / keyword overrides  >  environment (FIRTH_<FIELD>)  >  TOML file  >  defaults

The TOML file is named by ``--config FILE`` or by ``FIRTH_CONFIG``; its keys are the field names
below, at top level. An unknown key is an error (a typo must not silently fall back to a default).

The defaults are the safe ones for a person trying Firth on a laptop: data in ``./firth-data``,
the Kafka listener on loopback only (nothing on the network can reach it), every acknowledged
write fsynced. ``fsync = false`` exists for test suites that throw their data away; it loses
acknowledged messages on a crash and must never be used for data that matters.

This module knows nothing of the broker: it only turns text into checked values. The meaning of
each setting lives with the code that uses it (``firth.app``, ``firth.log``).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "FIRTH_"
# The environment variable naming the TOML config file (the --config flag wins over it).
CONFIG_FILE_ENV = "FIRTH_CONFIG"

GIB = 1024**3
DAY_MS = 24 * 60 * 60 * 1000
# Kafka's smallest accepted segment.bytes: one legacy record's overhead.
MIN_SEGMENT_BYTES = 14
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """A setting could not be read or is out of range; the message says what to do instead."""


def parse_host_port(text: str) -> tuple[str, int]:
    """Split ``"host:port"`` (IPv6 as ``"[::1]:9092"``) into ``(host, port)``; port 0 is allowed.

    Raises ConfigError naming what was given and what is expected.
    """
    given = text
    text = text.strip()
    expected = "expected HOST:PORT, e.g. 127.0.0.1:9092 or [::1]:9092"
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or not text[close + 1 :].startswith(":"):
            raise ConfigError(f"{given!r} is not a valid address: {expected}")
        host, port_text = text[1:close], text[close + 2 :]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ConfigError(f"{given!r} has no port: {expected}")
        if ":" in host:
            raise ConfigError(
                f"{given!r} looks like an IPv6 address without brackets: write [{host}]:{port_text}"
            )
    if not host:
        raise ConfigError(f"{given!r} has no host: {expected}")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"{given!r} has an invalid port {port_text!r}: expected 0-65535")
    return host, int(port_text)


def format_host_port(host: str, port: int) -> str:
    """The inverse of parse_host_port: brackets an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class Config:
    """Every setting of a Firth broker process. Build it with ``Config.load``; it never changes.

    Invariant: every field holds a value of its declared type within its limits (checked in
    ``__post_init__``, so even ``Config(num_partitions=0)`` fails).
    """

    # Folder holding every topic's logs and the broker's metadata.
    data_dir: Path = Path("firth-data")
    # Where the Kafka listener binds; port 0 picks a free port (see FirthApp.kafka_address).
    kafka_listen: str = "127.0.0.1:9092"
    # HOST:PORT clients are told to connect to in Metadata; None = the bound listen address.
    kafka_advertised: str | None = None
    # Where the AMQP 0-9-1 listener binds (RabbitMQ clients); empty/None = no AMQP listener.
    amqp_listen: str | None = "127.0.0.1:5672"
    # AMQP users besides guest/guest (guest logs in from loopback only), as
    # "NAME:PASSWORD,NAME:PASSWORD"; empty = guest only.
    amqp_users: str = ""
    # Create a topic when a client asks for metadata of (or produces to) an unknown one.
    auto_create_topics: bool = True
    # Partition count of auto-created topics and of CreateTopics without a count.
    num_partitions: int = 1
    # False = never fsync (unsafe: loses acknowledged writes on a crash; for tests only).
    fsync: bool = True
    # Topic config defaults (Kafka names: segment.bytes, segment.ms, retention.ms, retention.bytes,
    # max.message.bytes); a topic's own config overrides them.
    log_segment_bytes: int = GIB
    log_segment_ms: int = 7 * DAY_MS
    log_retention_ms: int = 7 * DAY_MS
    log_retention_bytes: int = -1
    message_max_bytes: int = 1048588
    # How often the retention sweep runs.
    retention_check_interval_ms: int = 300_000
    # How long a new consumer group waits for more members before its first rebalance.
    group_initial_rebalance_delay_ms: int = 3000
    # KIP-848 consumer groups: the session timeout and heartbeat interval the coordinator sets.
    group_consumer_session_timeout_ms: int = 45_000
    group_consumer_heartbeat_interval_ms: int = 5_000
    # Bound on a graceful stop (SIGINT/SIGTERM): after it, in-flight work is abandoned.
    shutdown_timeout_s: float = 10.0
    log_level: str = "INFO"
    node_id: int = 0

    def __post_init__(self) -> None:
        for spec in _FIELDS.values():
            value = getattr(self, spec.name)
            if not spec.accepts(value):
                raise ConfigError(
                    f"{spec.name}: {value!r} is not {spec.expected} "
                    f"(a {type(value).__name__} was given)"
                )
            if spec.check is not None:
                problem = spec.check(value)
                if problem:
                    raise ConfigError(f"{spec.name}: {value!r} is invalid: {problem}")

    @property
    def kafka_listen_address(self) -> tuple[str, int]:
        """``kafka_listen`` split into (host, port)."""
        return parse_host_port(self.kafka_listen)

    @property
    def kafka_advertised_address(self) -> tuple[str, int] | None:
        """``kafka_advertised`` split into (host, port), or None to advertise the bound address."""
        return None if self.kafka_advertised is None else parse_host_port(self.kafka_advertised)

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed (values already typed), validated again."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def load(
        cls,
        path: Path | str | None = None,
        env: Mapping[str, str] = os.environ,
        *,
        labels: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Config:
        """Build a Config from, in rising precedence: defaults, the TOML file, env, overrides.

        ``path`` is the TOML file (``None``: the file named by ``FIRTH_CONFIG`` in ``env``, or
        none). ``env`` is read for ``FIRTH_<FIELD NAME UPPER>`` variables. ``overrides`` are
        field values from flags or code, either typed (``num_partitions=3``) or as text
        (``num_partitions="3"``); an override of ``None`` means "not given" and is skipped.
        ``labels`` names where an override came from in errors (the CLI passes its flag names).
        Raises ConfigError saying which source and key, what was given and what is expected.
        """
        values: dict[str, tuple[Any, str]] = {}
        if path is None and env.get(CONFIG_FILE_ENV):
            path = env[CONFIG_FILE_ENV]
        if path is not None:
            values.update(_read_toml(Path(path)))
        for spec in _FIELDS.values():
            name = ENV_PREFIX + spec.name.upper()
            if name in env:
                where = f"environment variable {name}"
                values[spec.name] = (spec.from_text(env[name], where), where)
        for key, value in overrides.items():
            spec = _spec_for(key, "override")
            if value is None:
                continue
            where = (labels or {}).get(key, f"setting {key}")
            if isinstance(value, str):
                values[key] = (spec.from_text(value, where), where)
            else:
                values[key] = (spec.from_native(value, where), where)
        for key, (value, where) in values.items():
            check = _FIELDS[key].check
            problem = check(value) if check is not None else None
            if problem:
                raise ConfigError(f"{where}: {value!r} is invalid for {key}: {problem}")
        return cls(**{key: value for key, (value, _) in values.items()})


# --- field table: type conversion and limits --------------------------------------------------

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class _FieldSpec:
    """How one Config field is parsed from text or TOML and what range it must lie in."""

    name: str
    kind: type  # Path, str, bool, int or float
    optional: bool  # None allowed (written as an empty string in env)
    check: Callable[[Any], str | None] | None
    expected: str

    def accepts(self, value: object) -> bool:
        if value is None:
            return self.optional
        if self.kind is int:
            return isinstance(value, int) and not isinstance(value, bool)
        if self.kind is float:
            return isinstance(value, int | float) and not isinstance(value, bool)
        return isinstance(value, self.kind)

    def from_text(self, text: str, where: str) -> Any:
        """Parse an environment or flag string."""
        raw = text.strip()
        if raw == "" and self.optional:
            return None
        try:
            if self.kind is bool:
                if raw.lower() in _TRUE:
                    return True
                if raw.lower() in _FALSE:
                    return False
                raise ValueError
            if self.kind is int:
                return int(raw.replace("_", ""))
            if self.kind is float:
                return float(raw)
        except ValueError:
            raise ConfigError(
                f"{where}: {text!r} is not {self.expected} (for {self.name})"
            ) from None
        if self.kind is Path:
            if not raw:
                raise ConfigError(f"{where}: empty, expected {self.expected} (for {self.name})")
            return Path(raw).expanduser()
        if self.kind is str and self.name == "log_level":
            return raw.upper()
        return raw

    def from_native(self, value: object, where: str) -> Any:
        """Check a value from TOML or Python code, converting where that cannot lose meaning."""
        if self.kind is Path and isinstance(value, str | os.PathLike):
            return self.from_text(os.fspath(value), where)
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if self.name == "log_level" and isinstance(value, str):
            return value.upper()
        if not self.accepts(value):
            raise ConfigError(
                f"{where}: {value!r} is not {self.expected} (for {self.name}; "
                f"a {type(value).__name__} was given)"
            )
        return value


def _at_least(minimum: int | float) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value >= minimum else f"must be at least {minimum}"

    return check


def _check_address(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_host_port(value)
    except ConfigError as error:
        return str(error)
    return None


def _check_advertised(value: str | None) -> str | None:
    problem = _check_address(value)
    if problem is None and value is not None and parse_host_port(value)[1] == 0:
        return "an advertised port cannot be 0: give the port clients should connect to"
    return problem


def parse_users(text: str | None) -> dict[str, str]:
    """``"alice:secret,bob:pw"`` → ``{"alice": "secret", "bob": "pw"}`` (ConfigError if bad)."""
    users: dict[str, str] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, password = item.partition(":")
        if not sep or not name:
            raise ConfigError(f"{item!r} is not NAME:PASSWORD")
        users[name] = password
    return users


def _check_users(value: str | None) -> str | None:
    try:
        parse_users(value)
    except ConfigError as error:
        return str(error)
    return None


def _check_level(value: str) -> str | None:
    return None if value in LOG_LEVELS else f"expected one of {', '.join(LOG_LEVELS)}"


_KIND_WORDS = {
    Path: "a folder path",
    str: "a string",
    bool: "a boolean (true/false, 1/0, yes/no, on/off)",
    int: "an integer",
    float: "a number",
}

_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "kafka_listen": _check_address,
    "kafka_advertised": _check_advertised,
    "amqp_listen": _check_address,
    "amqp_users": _check_users,
    "num_partitions": _at_least(1),
    "log_segment_bytes": _at_least(MIN_SEGMENT_BYTES),
    "log_segment_ms": _at_least(1),
    "log_retention_ms": _at_least(-1),
    "log_retention_bytes": _at_least(-1),
    "message_max_bytes": _at_least(0),
    "retention_check_interval_ms": _at_least(1),
    "group_initial_rebalance_delay_ms": _at_least(0),
    "group_consumer_session_timeout_ms": _at_least(1),
    "group_consumer_heartbeat_interval_ms": _at_least(1),
    "shutdown_timeout_s": _at_least(0.0),
    "log_level": _check_level,
    "node_id": _at_least(0),
}

_TYPES: dict[str, tuple[type, bool]] = {
    "data_dir": (Path, False),
    "kafka_listen": (str, False),
    "kafka_advertised": (str, True),
    "amqp_listen": (str, True),
    "amqp_users": (str, False),
    "auto_create_topics": (bool, False),
    "num_partitions": (int, False),
    "fsync": (bool, False),
    "log_segment_bytes": (int, False),
    "log_segment_ms": (int, False),
    "log_retention_ms": (int, False),
    "log_retention_bytes": (int, False),
    "message_max_bytes": (int, False),
    "retention_check_interval_ms": (int, False),
    "group_initial_rebalance_delay_ms": (int, False),
    "group_consumer_session_timeout_ms": (int, False),
    "group_consumer_heartbeat_interval_ms": (int, False),
    "shutdown_timeout_s": (float, False),
    "log_level": (str, False),
    "node_id": (int, False),
}


def _build_specs() -> dict[str, _FieldSpec]:
    specs = {}
    for f in dataclasses.fields(Config):
        kind, optional = _TYPES[f.name]
        words = _KIND_WORDS[kind]
        if f.name in ("kafka_listen", "kafka_advertised", "amqp_listen"):
            words = "HOST:PORT"
        if f.name == "log_level":
            words = "one of " + ", ".join(LOG_LEVELS)
        if f.name == "amqp_users":
            words = "NAME:PASSWORD[,NAME:PASSWORD...]"
        specs[f.name] = _FieldSpec(
            name=f.name,
            kind=kind,
            optional=optional,
            check=_CHECKS.get(f.name),
            expected=words + (" (or empty for none)" if optional else ""),
        )
    return specs


_FIELDS: dict[str, _FieldSpec] = _build_specs()
FIELD_NAMES: tuple[str, ...] = tuple(_FIELDS)


def _spec_for(key: str, where: str) -> _FieldSpec:
    spec = _FIELDS.get(key)
    if spec is None:
        close = difflib.get_close_matches(key.replace("-", "_").replace(".", "_"), _FIELDS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"{where}: unknown setting {key!r}{hint} (known settings: {', '.join(_FIELDS)})"
        )
    return spec


def _read_toml(path: Path) -> dict[str, tuple[Any, str]]:
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist: check --config or {CONFIG_FILE_ENV}"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder: give a TOML file") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"config file {path} cannot be read: {error.strerror}") from None
    values: dict[str, tuple[Any, str]] = {}
    for key, value in document.items():
        spec = _spec_for(key, f"config file {path}")
        where = f"config file {path}, key {key}"
        values[key] = (spec.from_native(value, where), where)
    return values


def example_toml() -> str:
    """A config file listing every setting with its default, for docs and ``--help``."""
    lines = []
    for f in dataclasses.fields(Config):
        default = f.default
        if default is None:
            lines.append(f'# {f.name} = "host:port"  # default: unset')
        elif isinstance(default, bool):
            lines.append(f"# {f.name} = {str(default).lower()}")
        elif isinstance(default, str | Path):
            lines.append(f'# {f.name} = "{default}"')
        else:
            lines.append(f"# {f.name} = {default}")
    return "\n".join(lines) + "\n"
