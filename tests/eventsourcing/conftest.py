"""Fixtures of the event-sourcing tests: a store per backend, and the throwaway PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import psycopg
import pytest

from firth.eventsourcing import EventStore

from . import es_pg

_schemas = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[es_pg.PgServer]:
    if not es_pg.find_bin("initdb") or not es_pg.find_bin("postgres"):
        pytest.skip("no PostgreSQL binaries (initdb, postgres) on this machine")
    server = es_pg.start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server: es_pg.PgServer) -> str:
    """A fresh, empty schema on the throwaway server (the URL sets it as the search path;
    a schema is much cheaper to create than a database)."""
    name = f"es_test_{next(_schemas)}"
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    return f"{pg_server.url()}?options=-csearch_path%3D{name}"


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/events.db"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty store, once per backend."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    with EventStore.open(store_url) as opened:
        yield opened
