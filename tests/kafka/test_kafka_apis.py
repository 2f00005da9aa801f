"""The advertised API table: kio can serve it, and stock clients read it as Kafka 4.0."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import aiokafka.protocol
import pytest
from aiokafka.protocol.api import Request
from kafka.protocol.broker_version_data import infer_broker_version_from_api_versions
from kio.index import load_request_schema, load_response_schema

from firth.kafka.protocol.apis import (
    ALL_API_RANGES,
    API_TABLE,
    ENABLED_GROUPS,
    SUPPORTED_APIS,
    supported_apis,
)
from firth.kafka.protocol.codec import check_version
from firth.kafka.protocol.errors import UnknownApiError, UnsupportedVersionError

ALL_GROUPS = {group: True for group in ENABLED_GROUPS}
EVERYTHING = supported_apis(ALL_GROUPS)


def test_kio_has_request_and_response_classes_for_every_decodable_version() -> None:
    for key, (low, high) in ALL_API_RANGES.items():
        for version in range(low, high + 1):
            assert load_request_schema(key, version).__version__ == version
            assert load_response_schema(key, version).__version__ == version


def test_supported_apis_follow_the_group_switches() -> None:
    groups_only = {key for key, spec in API_TABLE.items() if spec.group == "consumer_groups"}
    assert 10 in groups_only and 11 in groups_only
    assert set(EVERYTHING) == set(API_TABLE)
    only_core = supported_apis({"core": True})
    assert set(only_core) == {k for k, s in API_TABLE.items() if s.group == "core"}
    for key, spec in API_TABLE.items():
        assert (key in SUPPORTED_APIS) == ENABLED_GROUPS[spec.group]


def test_produce_is_advertised_from_v0_like_kafka_4_0_but_decoded_from_v3() -> None:
    assert EVERYTHING[0] == (0, 12)
    assert ALL_API_RANGES[0] == (3, 12)
    with pytest.raises(UnsupportedVersionError):
        check_version(0, 2)
    check_version(0, 3)
    with pytest.raises(UnknownApiError):
        check_version(57, 0)


@pytest.mark.parametrize("ranges", [SUPPORTED_APIS, EVERYTHING], ids=["enabled", "all"])
def test_kafka_python_infers_kafka_4_0(ranges: dict[int, tuple[int, int]]) -> None:
    assert infer_broker_version_from_api_versions(ranges) == (4, 0)


def _aiokafka_requests() -> dict[str, tuple[int, list[int]]]:
    found = {}
    for module_info in pkgutil.iter_modules(aiokafka.protocol.__path__):
        module = importlib.import_module(f"aiokafka.protocol.{module_info.name}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Request) and cls is not Request and hasattr(cls, "_CLASSES"):
                found[name] = (cls.API_KEY, sorted(c.API_VERSION for c in cls._CLASSES))
    return found


def test_aiokafka_finds_a_version_of_every_api_we_serve() -> None:
    requests = _aiokafka_requests()
    assert requests, "aiokafka's request classes were not found"
    for name, (key, versions) in requests.items():
        if key not in EVERYTHING:
            continue
        low, high = EVERYTHING[key]
        usable = [v for v in versions if low <= v <= high and v >= ALL_API_RANGES[key][0]]
        assert usable, f"aiokafka {name} {versions} vs advertised {low}-{high}"


# librdkafka enables a feature when each (api, min, max) below overlaps the broker's range
# (src/rdkafka_feature.c, the features a Kafka client of today relies on).
LIBRDKAFKA_FEATURES = {
    "MsgVer2": [(0, 3, 3), (1, 4, 4)],
    "IdempotentProducer": [(22, 0, 0)],
    "ZSTD": [(0, 7, 7), (1, 10, 10)],
    "OffsetTime": [(2, 1, 1)],
    "LZ4": [(10, 0, 0)],
    "BrokerGroupCoordinator": [(10, 0, 0)],
    "BrokerBalancedConsumer": [
        (10, 0, 0),
        (8, 1, 2),
        (9, 1, 1),
        (11, 0, 0),
        (14, 0, 0),
        (12, 0, 0),
        (13, 0, 0),
    ],
    "ApiVersion": [(18, 0, 0)],
}


@pytest.mark.parametrize("feature", sorted(LIBRDKAFKA_FEATURES))
def test_librdkafka_feature_checks_pass(feature: str) -> None:
    for key, low, high in LIBRDKAFKA_FEATURES[feature]:
        broker_low, broker_high = EVERYTHING[key]
        assert low <= broker_high and broker_low <= high, (feature, key)


def test_librdkafka_compression_check_sees_produce_v0_to_v2() -> None:
    # Older librdkafka enables gzip/snappy only when Produce v0..v2 overlap (KAFKA-18659).
    low, _ = EVERYTHING[0]
    assert low == 0


def test_ranges_reach_the_versions_clients_use() -> None:
    # librdkafka 2.x: Produce up to 10+, Fetch up to 16, Metadata 12; kafka-python: Fetch 12+.
    assert EVERYTHING[0][1] >= 10
    assert EVERYTHING[1][1] >= 16
    assert EVERYTHING[3][1] >= 12
    assert EVERYTHING[18] == (0, 4)
