"""The pytest plugin's fixtures, used the way a user's test suite would use them."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from firth.testing import RunningBroker

pytest_plugins = ["pytester"]


def test_firth_broker_fixture_serves_kafka(firth_broker: RunningBroker) -> None:
    admin = AdminClient({"bootstrap.servers": firth_broker.bootstrap})
    futures = admin.create_topics([NewTopic("fixture-topic", num_partitions=2)])
    futures["fixture-topic"].result(10)
    producer = Producer({"bootstrap.servers": firth_broker.bootstrap})
    producer.produce("fixture-topic", b"hi", partition=1)
    assert producer.flush(10) == 0
    assert len(admin.list_topics(timeout=10).topics["fixture-topic"].partitions) == 2


def test_session_fixture_is_shared(
    firth_broker_session: RunningBroker, request: pytest.FixtureRequest
) -> None:
    assert request.getfixturevalue("firth_broker_session") is firth_broker_session
    assert firth_broker_session.kafka_port > 0


class TestOverrides:
    @pytest.fixture
    def firth_broker_overrides(self) -> dict[str, Any]:
        return {"num_partitions": 4, "auto_create_topics": False}

    def test_overrides_fixture_configures_the_broker(self, firth_broker: RunningBroker) -> None:
        assert firth_broker.config.num_partitions == 4
        assert firth_broker.config.auto_create_topics is False


def test_plugin_is_loaded_from_the_entry_point(pytester: pytest.Pytester) -> None:
    # A user's project: no conftest, no import of the plugin; the installed entry point provides
    # the fixture.
    pytester.makepyfile(
        test_user=textwrap.dedent(
            """
            from confluent_kafka.admin import AdminClient

            def test_uses_firth(firth_broker):
                admin = AdminClient({"bootstrap.servers": firth_broker.bootstrap})
                assert admin.list_topics(timeout=10).brokers
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
