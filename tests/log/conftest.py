"""Fixtures for the storage engine tests."""

from __future__ import annotations

import pytest

from tests.log.logbatches import FakeClock


@pytest.fixture
def log_dir(tmp_path):
    return str(tmp_path / "topic-0")


@pytest.fixture
def clock():
    return FakeClock()
