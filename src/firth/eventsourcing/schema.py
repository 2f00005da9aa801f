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

On PostgreSQL, migration 2 adds `firth_append`, the append as one server-side function: it
takes the append lock, checks the stream and the batch's event ids, inserts and notifies in
one call, so an append is one round trip and the lock is never held while the client is
scheduled (see `firth.eventsourcing.postgres`). Migration 3 replaces it with a version that
keeps its statements' plans (no planning while the lock is held) and checks the batch's event
ids before taking the lock; migration 4 takes a batch's positions from one sequence call and
the events' types, data and metadata as three JSON arrays.

Side tables: `snapshots` (aggregate state at a version), `checkpoints` (a name's last processed
position: projections, the outbox relay), `stream_metadata` (max-age, max-count,
truncate-before, soft delete), and `schema_migrations` (one row per applied migration).

A migration is applied once, in order, inside a transaction that also records it; a store
refuses to open a database whose recorded schema is newer than this code knows
(`pending_migrations`, used by both backends). A released migration's text never changes: the
three `firth_append` versions are assembled from shared parts, and a part that one of them
uses changes only with a new migration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from firth.eventsourcing.errors import NotAnEventStore

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


# The append lock of the PostgreSQL backend: advisory lock (namespace "FIRT" in ASCII, id 1).
PG_LOCK_NAMESPACE = 0x46495254
PG_APPEND_LOCK = 1

# Expected-version codes of `firth_append` (an exact version is passed as itself, >= 0).
EXPECT_ANY, EXPECT_NO_STREAM, EXPECT_STREAM_EXISTS = -1, -2, -3
# Its status codes: appended, refused (expected version not met), an event id already stored.
APPENDED, REFUSED, ALREADY_STORED = 0, 1, 2

# `firth_append` of migrations 2, 3 and 4, built from the parts they share. Each migration's
# text must stay exactly what it was when released (a database records that it ran it, not
# what it said), so a part changes only together with a new migration that uses it.

_PG_APPEND_SIGNATURE = """
CREATE{or_replace} FUNCTION firth_append(
    p_stream text, p_category text, p_expected bigint,
    p_ids uuid[], p_types {list_type}, p_data {list_type}, p_metadata {list_type},
    OUT status integer, OUT version bigint
) LANGUAGE plpgsql VOLATILE
"""

_PG_APPEND_CUSTOM_PLANS = """\
-- Custom plans always: a plan cached while the table was small (statistics not yet gathered)
-- checks the batch's ids with a sequential scan, which grows with the table.
SET plan_cache_mode = force_custom_plan
"""

_PG_APPEND_GENERIC_PLANS = """\
-- Generic plans, cached once per session, with sequential scans priced out: every lookup here
-- has its index, and a plan made while the table was small (statistics not yet gathered) would
-- otherwise check the batch's ids with a sequential scan that grows with the table. (Version 2
-- planned each statement afresh instead, about 50 us per call, spent holding the append lock.)
SET enable_seqscan = off
"""

_PG_APPEND_DECLARE = """\
SET search_path FROM CURRENT
AS $fn$
DECLARE
    v_deleted boolean;
    v_ok boolean;
{more}BEGIN
"""

_PG_APPEND_LOCK = f"""\
    PERFORM pg_advisory_xact_lock({PG_LOCK_NAMESPACE}, {PG_APPEND_LOCK});
    SELECT coalesce(max(e.version), 0) INTO version FROM events e WHERE e.stream_id = p_stream;
    SELECT coalesce((SELECT m.deleted FROM stream_metadata m WHERE m.stream_id = p_stream), false)
        INTO v_deleted;
"""

_PG_APPEND_STORED_IDS = f"""\
    IF EXISTS (SELECT 1 FROM events e WHERE e.event_id = ANY(p_ids)) THEN
        status := {ALREADY_STORED};
{{unused_version}}        RETURN;
    END IF;
"""

_PG_APPEND_EXPECTED = f"""\
    v_ok := CASE
        WHEN p_expected >= 0 THEN version = p_expected
        WHEN p_expected = {EXPECT_NO_STREAM} THEN NOT (version > 0 AND NOT v_deleted)
        WHEN p_expected = {EXPECT_STREAM_EXISTS} THEN version > 0 AND NOT v_deleted
        ELSE true
    END;
    IF NOT v_ok THEN
        status := {REFUSED};
        RETURN;
    END IF;
"""

_PG_APPEND_TEXT_ARRAYS_INSERT = """\
    INSERT INTO events (stream_id, version, event_id, type, category, data, metadata)
        SELECT p_stream, version + u.ord, u.event_id, u.type, p_category, u.data::jsonb,
               u.metadata::jsonb
        FROM unnest(p_ids, p_types, p_data, p_metadata)
             WITH ORDINALITY AS u(event_id, type, data, metadata, ord)
        ORDER BY u.ord;
"""

_PG_APPEND_JSON_ARRAYS_INSERT = """\
    -- The batch's positions from one nextval and one setval instead of a nextval per row: the
    -- sequence is drawn from nowhere else, and only under the append lock.
    v_first := nextval('events_position_seq');
    IF v_count > 1 THEN
        PERFORM setval('events_position_seq', v_first + v_count - 1);
    END IF;
    -- Types, data and metadata come as three JSON arrays (each parsed once, and cheaper to
    -- send than text arrays); a metadata of JSON null is an event without metadata.
    INSERT INTO events (position, stream_id, version, event_id, type, category, data, metadata)
        OVERRIDING SYSTEM VALUE
        SELECT v_first + u.ord - 1, p_stream, version + u.ord, u.event_id, u.type, p_category,
               u.data, nullif(u.metadata, 'null'::jsonb)
        FROM ROWS FROM (
                 unnest(p_ids),
                 jsonb_array_elements_text(p_types::jsonb),
                 jsonb_array_elements(p_data::jsonb),
                 jsonb_array_elements(p_metadata::jsonb)
             ) WITH ORDINALITY AS u(event_id, type, data, metadata, ord)
        ORDER BY u.ord;
"""

_PG_APPEND_END = f"""\
    IF v_deleted THEN
        UPDATE stream_metadata SET deleted = false WHERE stream_id = p_stream;
    END IF;
    PERFORM pg_notify('firth_events', '');
    status := {APPENDED};
    version := version + {{count}};
END
$fn$"""

_PG_IDS_BEFORE_LOCK = """\
    -- Ids already stored, before the append lock (work done while other appends wait is
    -- what limits concurrent appenders). An id stored stays stored; one committed by a
    -- concurrent append after this check fails the INSERT below on the unique index instead,
    -- which the client resolves like this status.
"""
_PG_UNUSED_VERSION = "        version := 0;  -- unused: the client finds where the ids are stored\n"

# Version 2: ids checked under the append lock, statements planned per call, text arrays.
_PG_APPEND_FUNCTION = (
    _PG_APPEND_SIGNATURE.format(or_replace=" OR REPLACE", list_type="text[]")
    + _PG_APPEND_CUSTOM_PLANS
    + _PG_APPEND_DECLARE.format(more="")
    + "    -- The append lock first: every later statement sees every earlier append (fresh snapshot\n"
    "    -- per statement), and positions are assigned in commit order.\n"
    + _PG_APPEND_LOCK
    + "    -- Before INSERT: a unique violation would burn identity values and leave unused positions.\n"
    + _PG_APPEND_STORED_IDS.format(unused_version="")
    + _PG_APPEND_EXPECTED
    + _PG_APPEND_TEXT_ARRAYS_INSERT
    + _PG_APPEND_END.format(count="cardinality(p_ids)")
)

_PG_IDS_THEN_LOCK = (
    _PG_IDS_BEFORE_LOCK
    + _PG_APPEND_STORED_IDS.format(unused_version=_PG_UNUSED_VERSION)
    + "    -- Then the append lock: every later statement sees every earlier append (fresh snapshot\n"
    "    -- per statement), and positions are assigned in commit order.\n"
    + _PG_APPEND_LOCK
    + _PG_APPEND_EXPECTED
)

# Version 3: ids checked before the append lock, cached generic plans.
_PG_APPEND_FUNCTION_V3 = (
    _PG_APPEND_SIGNATURE.format(or_replace=" OR REPLACE", list_type="text[]")
    + _PG_APPEND_GENERIC_PLANS
    + _PG_APPEND_DECLARE.format(more="")
    + _PG_IDS_THEN_LOCK
    + _PG_APPEND_TEXT_ARRAYS_INSERT
    + _PG_APPEND_END.format(count="cardinality(p_ids)")
)

# Version 4: a batch's positions from one sequence call, the events as three JSON arrays.
_PG_APPEND_FUNCTION_V4 = (
    _PG_APPEND_SIGNATURE.format(or_replace="", list_type="text")
    + _PG_APPEND_GENERIC_PLANS
    + _PG_APPEND_DECLARE.format(
        more="    v_count integer := cardinality(p_ids);\n    v_first bigint;\n"
    )
    + _PG_IDS_THEN_LOCK
    + _PG_APPEND_JSON_ARRAYS_INSERT
    + _PG_APPEND_END.format(count="v_count")
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
    Migration(2, "firth_append: the append in one server-side call", (_PG_APPEND_FUNCTION,)),
    Migration(
        3,
        "firth_append: cached plans, event ids checked before the append lock",
        (_PG_APPEND_FUNCTION_V3,),
    ),
    Migration(
        4,
        "firth_append: batch positions from one sequence call, JSON arrays for the events",
        (
            "DROP FUNCTION firth_append(text, text, bigint, uuid[], text[], text[], text[])",
            _PG_APPEND_FUNCTION_V4,
        ),
    ),
)


def pending_migrations(
    migrations: Sequence[Migration], applied: int, subject: str
) -> list[Migration]:
    """The migrations (in order) that a database at schema version `applied` lacks. One that
    is newer than all of `migrations` is refused: "{subject} {applied}; this Firth knows
    up to ...", `subject` naming the database."""
    known = max(migration.version for migration in migrations)
    if applied > known:
        raise NotAnEventStore(f"{subject} {applied}; this Firth knows up to {known}")
    return [migration for migration in migrations if migration.version > applied]
