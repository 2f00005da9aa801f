"""Shared plumbing of the client commands: options, librdkafka settings, error translation.

The client commands (topics, produce, consume, and the hooks' groups/events) talk to a broker
through confluent-kafka, exactly as a user's program would, so they exercise the same wire path.

librdkafka retries an unreachable broker forever and logs each failure to stderr. A person at a
terminal wants neither: the settings below cap connection attempts at a few seconds, route
librdkafka's log into a Python logger that stays silent unless ``--verbose``, and every command
starts with one metadata request (``probe``) whose failure becomes "could not reach a broker".
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from firth.cli.errors import BrokerRefused, BrokerUnreachable, UsageError
from firth.cli.options import (  # re-exported: hook modules add these options too
    BOOTSTRAP_ENV,
    add_client_options,
    non_negative_int,
    positive_float,
    positive_int,
)
from firth.config import ConfigError, parse_host_port

__all__ = [
    "BOOTSTRAP_ENV",
    "add_client_options",
    "client_config",
    "key_values",
    "non_negative_int",
    "partitions_of",
    "positive_float",
    "positive_int",
    "probe",
    "translate",
    "translate_error",
    "unreachable",
]

# How long a broker may take to accept a TCP connection before librdkafka gives up on it.
CONNECT_TIMEOUT_MS = 3000

LIBRDKAFKA_LOGGER = "firth.cli.librdkafka"

# librdkafka error codes that mean "no broker answered", not "the broker said no".
_UNREACHABLE = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
        KafkaError._MSG_TIMED_OUT,
    }
)


# Reported through error_cb when no bootstrap broker can be connected to.
_DOWN = frozenset({KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE})
# One metadata attempt of the probe lasts at most this long.
PROBE_SLICE_S = 0.5


def key_values(pairs: Iterable[str] | None, what: str) -> list[tuple[str, str]]:
    """Parse repeated ``KEY=VALUE`` options, keeping order and duplicates."""
    result = []
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} {pair!r} is not KEY=VALUE")
        result.append((key, value))
    return result


def check_bootstrap(bootstrap: str) -> str:
    """Validate a comma-separated HOST:PORT list, so a typo is a usage error, not a hang."""
    for entry in bootstrap.split(","):
        try:
            parse_host_port(entry)
        except ConfigError as error:
            raise UsageError(f"--bootstrap: {error}") from None
    return bootstrap


def client_config(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """librdkafka settings for a CLI client: fast failure, quiet logs, our client id."""
    timeout_ms = int(args.timeout * 1000)
    config: dict[str, Any] = {
        "bootstrap.servers": check_bootstrap(args.bootstrap),
        "client.id": "firth-cli",
        "socket.connection.setup.timeout.ms": min(CONNECT_TIMEOUT_MS, timeout_ms),
        "socket.timeout.ms": max(timeout_ms, 10),
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 1000,
        "logger": _librdkafka_logger(),
        # Without an error callback librdkafka prints transport errors itself; the command sees
        # them anyway as failed requests, so they are only logged.
        "error_cb": _log_client_error,
    }
    config.update(extra)
    return config


def _librdkafka_logger() -> logging.Logger:
    logger = logging.getLogger(LIBRDKAFKA_LOGGER)
    if not logger.handlers:
        # Silent unless --verbose attaches a handler to the "firth" logger tree.
        logger.addHandler(logging.NullHandler())
    return logger


# Errors librdkafka reported through error_cb since the last probe; a CLI process runs one
# command, so one list serves every client it creates.
_reported: list[KafkaError] = []


def _log_client_error(error: KafkaError) -> None:
    _reported.append(error)
    logging.getLogger(LIBRDKAFKA_LOGGER).debug("client error: %s", error)


def translate(exception: BaseException, bootstrap: str, topic: str | None = None) -> Exception:
    """Turn a confluent-kafka failure into a CliError a person can act on."""
    error = exception.args[0] if exception.args else None
    if not isinstance(error, KafkaError):
        return BrokerRefused(str(exception))
    return translate_error(error, bootstrap, topic)


def translate_error(error: KafkaError, bootstrap: str, topic: str | None = None) -> Exception:
    code = error.code()
    name = error.name()
    if code in _UNREACHABLE:
        return unreachable(bootstrap)
    what = f"topic {topic!r}" if topic else "the topic"
    if code == KafkaError.TOPIC_ALREADY_EXISTS:
        return BrokerRefused(f"{what} already exists", name)
    if code in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC):
        return BrokerRefused(f"{what} does not exist (`firth topics list` shows the topics)", name)
    if code == KafkaError._UNKNOWN_PARTITION:
        return BrokerRefused(f"{what} has no such partition", name)
    detail = error.str()
    return BrokerRefused(f"the broker refused: {name}: {detail}", name)


def unreachable(bootstrap: str) -> BrokerUnreachable:
    return BrokerUnreachable(
        f"could not reach a broker at {bootstrap}: is `firth serve` running? "
        f"use --bootstrap HOST:PORT (or ${BOOTSTRAP_ENV}) to point at it"
    )


def probe(client: Any, args: argparse.Namespace, topic: str | None = None) -> Any:
    """One metadata request; returns ClusterMetadata or raises BrokerUnreachable.

    With ``topic`` the request names it (a producer's request may auto-create it). The request
    is retried in short slices so that librdkafka's report "all brokers are down" (a refused
    connection, or none within the connect timeout) ends the wait at once, not after --timeout.
    """
    _reported.clear()
    deadline = time.monotonic() + args.timeout
    while True:
        remaining = deadline - time.monotonic()
        try:
            if topic is None:
                return client.list_topics(timeout=min(PROBE_SLICE_S, max(remaining, 0.01)))
            return client.list_topics(topic=topic, timeout=min(PROBE_SLICE_S, max(remaining, 0.01)))
        except KafkaException as exception:
            error = exception.args[0] if exception.args else None
            retry = isinstance(error, KafkaError) and error.code() in _UNREACHABLE
            if not retry or remaining <= PROBE_SLICE_S:
                raise translate(exception, args.bootstrap, topic) from None
        client.poll(0)  # serves error_cb
        if any(error.code() in _DOWN for error in _reported):
            raise unreachable(args.bootstrap)


def partitions_of(metadata: Any, topic: str, bootstrap: str) -> list[int]:
    """The sorted partition ids of ``topic`` in a metadata answer, or a clear error."""
    topic_metadata = metadata.topics.get(topic)
    if topic_metadata is None:
        raise BrokerRefused(
            f"topic {topic!r} does not exist (`firth topics list` shows the topics)",
            "UNKNOWN_TOPIC_OR_PART",
        )
    if topic_metadata.error is not None:
        raise translate_error(topic_metadata.error, bootstrap, topic)
    return sorted(topic_metadata.partitions)
