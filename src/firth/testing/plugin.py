"""The pytest plugin (entry point ``pytest11: firth``): fixtures that run a Firth broker.

pytest loads this module in every run of every project that has firth installed, so it only
defines fixtures; nothing starts until a test asks for one.

- ``firth_broker``: a fresh broker for one test (its own data folder, so tests cannot see each
  other's topics). Its settings come from the ``firth_broker_overrides`` fixture, ``{}`` by
  default; override that fixture in a conftest.py (or a test module) to change them, e.g.
  ``return {"num_partitions": 3}``.
- ``firth_broker_session``: one broker shared by every test of the session, with the test
  defaults; faster when tests use distinct topic names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from firth.testing.inprocess import RunningBroker, running_broker


@pytest.fixture
def firth_broker_overrides() -> dict[str, Any]:
    """Config fields for ``firth_broker``; override this fixture to change them."""
    return {}


@pytest.fixture
def firth_broker(firth_broker_overrides: dict[str, Any]) -> Iterator[RunningBroker]:
    """A Firth broker running for this test only; ``firth_broker.bootstrap`` is its address."""
    with running_broker(**firth_broker_overrides) as broker:
        yield broker


@pytest.fixture(scope="session")
def firth_broker_session() -> Iterator[RunningBroker]:
    """One Firth broker for the whole test session."""
    with running_broker() as broker:
        yield broker
