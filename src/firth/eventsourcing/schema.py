"""Table names, schema and migrations of both backends, in one place.

The `events` table extends the minimal `events(id, aggregate_id, event_type, data, created_at)`
with what correctness needs:

- `position`: the global order (SQLite: AUTOINCREMENT rowid, never reused; PostgreSQL: an
  identity column assigned under the append lock, so id order is commit order).
- `stream_id` TEXT (not a UUID: streams are named like "account-42") and `version`, with
  UNIQUE(stream_id, version) for optimistic concurrency.
- `event_id` UNIQUE: idempotent appends, and a stable key for deduplication downstream
  (PostgreSQL: uuid; SQLite: the 16 UUID bytes, a much cheaper unique index than 36 characters).
- `type` TEXT (qualified type names outgrow short varchar limits), `data` and `metadata` JSON
  (jsonb on PostgreSQL), `category` (stream id before the first '-') indexed with position for
  category reads, `recorded_at` (timestamptz; REAL unix seconds on SQLite).

Side tables: `snapshots` (aggregate state at a version), `checkpoints` (a name's last processed
position: projections, the outbox relay), `stream_metadata` (max-age, max-count,
truncate-before, soft delete), and `schema_migrations` (one row per applied migration).

A migration is applied once, in order, inside a transaction that also records it; a store
refuses to open a database whose recorded schema is newer than this code knows.
"""

from __future__ import annotations

from dataclasses import dataclass

MIGRATIONS_TABLE = "schema_migrations"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


SQLITE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "events, snapshots, checkpoints, stream metadata",
        (
            """CREATE TABLE events (
                position    INTEGER PRIMARY KEY AUTOINCREMENT,
                stream_id   TEXT    NOT NULL,
                version     INTEGER NOT NULL,
                event_id    BLOB    NOT NULL UNIQUE,
                type        TEXT    NOT NULL,
                category    TEXT    NOT NULL,
                data        TEXT    NOT NULL,
                metadata    TEXT,
                recorded_at REAL    NOT NULL,
                UNIQUE (stream_id, version)
            )""",
            "CREATE INDEX events_by_category ON events (category, position)",
            "CREATE INDEX events_by_type ON events (type, position)",
            """CREATE TABLE snapshots (
                stream_id   TEXT    NOT NULL,
                version     INTEGER NOT NULL,
                type        TEXT    NOT NULL,
                state       TEXT    NOT NULL,
                recorded_at REAL    NOT NULL,
                PRIMARY KEY (stream_id, version)
            )""",
            """CREATE TABLE checkpoints (
                name       TEXT    PRIMARY KEY,
                position   INTEGER NOT NULL,
                updated_at REAL    NOT NULL
            )""",
            """CREATE TABLE stream_metadata (
                stream_id       TEXT PRIMARY KEY,
                max_age         REAL,
                max_count       INTEGER,
                truncate_before INTEGER,
                deleted         INTEGER NOT NULL DEFAULT 0
            )""",
        ),
    ),
)

POSTGRES_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "events, snapshots, checkpoints, stream metadata",
        (
            """CREATE TABLE events (
                position    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                stream_id   TEXT        NOT NULL,
                version     BIGINT      NOT NULL,
                event_id    UUID        NOT NULL UNIQUE,
                type        TEXT        NOT NULL,
                category    TEXT        NOT NULL,
                data        JSONB       NOT NULL,
                metadata    JSONB,
                recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                UNIQUE (stream_id, version)
            )""",
            "CREATE INDEX events_by_category ON events (category, position)",
            "CREATE INDEX events_by_type ON events (type, position)",
            """CREATE TABLE snapshots (
                stream_id   TEXT        NOT NULL,
                version     BIGINT      NOT NULL,
                type        TEXT        NOT NULL,
                state       JSONB       NOT NULL,
                recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                PRIMARY KEY (stream_id, version)
            )""",
            """CREATE TABLE checkpoints (
                name       TEXT        PRIMARY KEY,
                position   BIGINT      NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )""",
            """CREATE TABLE stream_metadata (
                stream_id       TEXT PRIMARY KEY,
                max_age         DOUBLE PRECISION,
                max_count       BIGINT,
                truncate_before BIGINT,
                deleted         BOOLEAN NOT NULL DEFAULT false
            )""",
        ),
    ),
)

LATEST_VERSION = max(m.version for m in SQLITE_MIGRATIONS)
