"""The bundled SQL files themselves, applied straight with asyncpg (no migration engine).

Each test gets a fresh database and a schema ``app`` with ``search_path = app, public``, as the
engine sets it, so the unqualified SQL lands in ``app`` and finds the ``vector`` type in ``public``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sam_db"
MIGRATIONS = PACKAGE / "migrations"
SEED = PACKAGE / "seed" / "sample_data.sql"
VERSIONS = ["001", "002", "003", "004", "005"]


def _file(version: str, *, rollback: bool = False) -> Path:
    suffix = ".rollback.sql" if rollback else ".sql"
    (path,) = [
        p
        for p in MIGRATIONS.glob(f"{version}_*{suffix}")
        if rollback or not p.name.endswith(".rollback.sql")
    ]
    return path


@functools.cache
def _sql(path: Path) -> str:
    return path.read_text(encoding="utf-8")


async def _run(conn: asyncpg.Connection, path: Path) -> None:
    """Apply one file in a transaction, as the engine does."""
    async with conn.transaction():
        await conn.execute(_sql(path))


async def _migrate(conn: asyncpg.Connection, upto: str = "005") -> None:
    for version in VERSIONS:
        if version > upto:
            break
        await _run(conn, _file(version))


async def _migrate_one(conn: asyncpg.Connection, version: str) -> None:
    await _run(conn, _file(version))


async def _rollback(conn: asyncpg.Connection, version: str) -> None:
    await _run(conn, _file(version, rollback=True))


# Every object of the current schema, described by name and definition (never by OID), so two
# snapshots are equal exactly when the schemas are. Columns are numbered by position among live
# columns, as pg_dump orders them: a dropped column leaves a hole in attnum but not in the schema.
SNAPSHOT = """
WITH ns AS (SELECT current_schema()::regnamespace::oid AS oid)
SELECT 'relation', c.relname || ' kind=' || c.relkind::text
       || ' persistence=' || c.relpersistence::text
       || ' options=' || coalesce(array_to_string(c.reloptions, ','), '')
FROM pg_class AS c, ns WHERE c.relnamespace = ns.oid
UNION ALL
SELECT 'column', c.relname || '.' || a.attname
       || ' #' || row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum)
       || ' ' || format_type(a.atttypid, a.atttypmod)
       || ' notnull=' || a.attnotnull || ' identity=' || a.attidentity::text
       || ' generated=' || a.attgenerated::text || ' collation=' || a.attcollation::regcollation
       || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute AS a
JOIN pg_class AS c ON c.oid = a.attrelid
JOIN ns ON c.relnamespace = ns.oid
LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint', coalesce(k.conrelid::regclass::text, k.contypid::regtype::text) || ' '
       || k.conname || ' ' || pg_get_constraintdef(k.oid)
       || ' deferrable=' || k.condeferrable || ' validated=' || k.convalidated
FROM pg_constraint AS k, ns WHERE k.connamespace = ns.oid
UNION ALL
SELECT 'index', pg_get_indexdef(i.indexrelid) || ' valid=' || i.indisvalid
FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid JOIN ns ON c.relnamespace = ns.oid
UNION ALL
SELECT 'sequence', s.seqrelid::regclass::text || ' ' || s.seqtypid::regtype::text
       || ' start=' || s.seqstart || ' inc=' || s.seqincrement || ' cache=' || s.seqcache
FROM pg_sequence AS s JOIN pg_class AS c ON c.oid = s.seqrelid JOIN ns ON c.relnamespace = ns.oid
UNION ALL
SELECT 'function', pg_get_functiondef(p.oid) FROM pg_proc AS p, ns WHERE p.pronamespace = ns.oid
UNION ALL
SELECT 'trigger', pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid JOIN ns ON c.relnamespace = ns.oid
WHERE NOT t.tgisinternal
UNION ALL
SELECT 'view', v.viewname || ' ' || v.definition FROM pg_views AS v
WHERE v.schemaname = current_schema()
UNION ALL
SELECT 'type', t.typname || ' ' || t.typtype::text
FROM pg_type AS t, ns WHERE t.typnamespace = ns.oid
ORDER BY 1, 2
"""


async def _plan(conn: asyncpg.Connection, query: str) -> str:
    """The plan of ``query`` with sequential scans discouraged (the test tables are empty)."""
    await conn.execute("SET enable_seqscan = off; SET enable_bitmapscan = off")
    return "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN (COSTS OFF) {query}"))


async def _snapshot(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in await conn.fetch(SNAPSHOT)]


@pytest.fixture
async def conn(db_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(db_dsn)
    try:
        await connection.execute("CREATE SCHEMA app; SET search_path = app, public")
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def db(conn: asyncpg.Connection) -> asyncpg.Connection:
    """``conn`` with every migration applied."""
    await _migrate(conn)
    return conn


async def _session(
    conn: asyncpg.Connection,
    session_id: str,
    workflow_id: str | None = None,
    parent: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO sessions (id, workflow_id, parent_session_id) VALUES ($1, $2, $3)",
        session_id,
        workflow_id,
        parent,
    )


# --- every file applies; every object lands in the target schema -------------------------------


async def test_migrations_create_every_documented_table_in_the_target_schema(
    db: asyncpg.Connection,
) -> None:
    tables = await db.fetch(
        "SELECT table_schema, table_name FROM information_schema.tables"
        " WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 2"
    )
    assert [(r[0], r[1]) for r in tables] == [
        ("app", name)
        for name in sorted(
            [
                "memory_access_log",
                "memory_collections",
                "memory_entries",
                "session_events",
                "session_metric_totals",
                "session_metrics",
                "sessions",
                "workflow_metric_summary",
                "workflow_session_stats",
                "workflow_state_transitions",
                "workflow_versions",
                "workflows",
            ]
        )
    ]


async def test_migrations_create_nothing_in_public_but_the_vector_extension(
    db: asyncpg.Connection,
) -> None:
    await _run(db, SEED)
    # Objects of public that are not members of an extension: the SQL created none there itself.
    strays = await db.fetch(
        """
        SELECT c.relname FROM pg_class AS c
        WHERE c.relnamespace = 'public'::regnamespace
          AND NOT EXISTS (SELECT 1 FROM pg_depend AS d
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                            AND d.deptype = 'e')
        UNION ALL
        SELECT p.proname FROM pg_proc AS p
        WHERE p.pronamespace = 'public'::regnamespace
          AND NOT EXISTS (SELECT 1 FROM pg_depend AS d
                          WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                            AND d.deptype = 'e')
        """
    )
    assert strays == []


# --- 001: workflows, sessions, events --------------------------------------------------------


async def test_workflow_and_session_ids_default_to_uuid_strings(db: asyncpg.Connection) -> None:
    workflow_id = await db.fetchval("INSERT INTO workflows (name) VALUES ('w') RETURNING id")
    session_id = await db.fetchval(
        "INSERT INTO sessions (workflow_id) VALUES ($1) RETURNING id", workflow_id
    )
    uuid_text = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    assert uuid_text.match(workflow_id)
    assert uuid_text.match(session_id)


async def test_agent_supplied_session_id_is_kept(db: asyncpg.Connection) -> None:
    await _session(db, "claude-session-1")
    assert await db.fetchval("SELECT count(*) FROM sessions WHERE id = 'claude-session-1'") == 1


async def test_empty_ids_are_rejected(db: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("INSERT INTO workflows (id, name) VALUES ('', 'w')")
    with pytest.raises(asyncpg.CheckViolationError):
        await _session(db, "")


async def test_unknown_session_status_is_rejected(db: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.CheckViolationError, match="sessions_status_check"):
        await db.execute(
            "INSERT INTO sessions (id, status, ended_at) VALUES ('s', 'exploded', now())"
        )


async def test_finished_session_without_ended_at_is_rejected(db: asyncpg.Connection) -> None:
    await _session(db, "s")
    with pytest.raises(asyncpg.CheckViolationError, match="sessions_ended_matches_status_check"):
        await db.execute("UPDATE sessions SET status = 'completed' WHERE id = 's'")


async def test_live_session_with_ended_at_is_rejected(db: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.CheckViolationError, match="sessions_ended_matches_status_check"):
        await db.execute("INSERT INTO sessions (id, status, ended_at) VALUES ('s', 'idle', now())")


async def test_session_ending_before_it_started_is_rejected(db: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.CheckViolationError, match="sessions_ended_after_started_check"):
        await db.execute(
            "INSERT INTO sessions (id, status, started_at, ended_at)"
            " VALUES ('s', 'failed', now(), now() - interval '1 second')"
        )


async def test_session_cannot_be_its_own_parent(db: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.CheckViolationError, match="sessions_parent_not_self_check"):
        await _session(db, "s", parent="s")


async def test_event_of_unknown_session_is_rejected(db: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await db.execute(
            "INSERT INTO session_events (session_id, event_type) VALUES ('nope', 'Stop')"
        )


async def test_non_object_jsonb_payloads_are_rejected(db: asyncpg.Connection) -> None:
    await _session(db, "s")
    bad = [
        "INSERT INTO session_events (session_id, event_type, payload) VALUES ('s', 'x', '[1]')",
        "INSERT INTO workflows (name, config) VALUES ('w', '\"text\"')",
        "INSERT INTO sessions (id, metadata) VALUES ('t', 'null')",
        "INSERT INTO session_metrics (session_id, name, value, labels) VALUES ('s', 'x', 1, '[]')",
    ]
    for sql in bad:
        with pytest.raises(asyncpg.CheckViolationError):
            await db.execute(sql)


async def test_event_ids_are_generated_always(db: asyncpg.Connection) -> None:
    await _session(db, "s")
    with pytest.raises(asyncpg.GeneratedAlwaysError):
        await db.execute(
            "INSERT INTO session_events (id, session_id, event_type) VALUES (1, 's', 'Stop')"
        )


async def test_deleting_a_session_deletes_its_events_and_metrics(db: asyncpg.Connection) -> None:
    await _session(db, "s")
    await _session(db, "other")
    for sid in ("s", "other"):
        await db.execute(
            "INSERT INTO session_events (session_id, event_type) VALUES ($1, 'Stop')", sid
        )
        await db.execute(
            "INSERT INTO session_metrics (session_id, name, value) VALUES ($1, 'cost_usd', 1)", sid
        )
    await db.execute("DELETE FROM sessions WHERE id = 's'")
    assert await db.fetchval("SELECT array_agg(DISTINCT session_id) FROM session_events") == [
        "other"
    ]
    assert await db.fetchval("SELECT array_agg(DISTINCT session_id) FROM session_metrics") == [
        "other"
    ]


async def test_deleting_a_workflow_keeps_its_sessions_unlinked(db: asyncpg.Connection) -> None:
    await db.execute("INSERT INTO workflows (id, name) VALUES ('w', 'w')")
    await _session(db, "s", workflow_id="w")
    await db.execute("DELETE FROM workflows WHERE id = 'w'")
    assert await db.fetchval("SELECT workflow_id FROM sessions WHERE id = 's'") is None


async def test_deleting_a_parent_session_keeps_its_subagent_sessions(
    db: asyncpg.Connection,
) -> None:
    await _session(db, "parent")
    await _session(db, "child", parent="parent")
    await db.execute("DELETE FROM sessions WHERE id = 'parent'")
    assert await db.fetchval("SELECT parent_session_id FROM sessions WHERE id = 'child'") is None


async def test_session_events_in_time_order_use_the_session_index(db: asyncpg.Connection) -> None:
    plan = await _plan(
        db, "SELECT * FROM session_events WHERE session_id = 's' ORDER BY occurred_at, id LIMIT 50"
    )
    assert "session_events_session_occurred_idx" in plan
    assert "Sort" not in plan


async def test_recent_sessions_by_status_use_the_status_index(db: asyncpg.Connection) -> None:
    plan = await _plan(
        db, "SELECT * FROM sessions WHERE status = 'running' ORDER BY started_at DESC LIMIT 20"
    )
    assert "sessions_status_started_idx" in plan
    assert "Sort" not in plan


# --- 002: metrics and their views ------------------------------------------------------------


async def test_non_finite_metric_values_are_rejected(db: asyncpg.Connection) -> None:
    await _session(db, "s")
    for value in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(asyncpg.CheckViolationError, match="session_metrics_value_check"):
            await db.execute(
                "INSERT INTO session_metrics (session_id, name, value) VALUES ('s', 'x', $1)",
                float(value),
            )


async def test_badly_formed_metric_names_are_rejected(db: asyncpg.Connection) -> None:
    await _session(db, "s")
    for name in ("", "Cost", "1tokens", "cost usd"):
        with pytest.raises(asyncpg.CheckViolationError, match="session_metrics_name_check"):
            await db.execute(
                "INSERT INTO session_metrics (session_id, name, value) VALUES ('s', $1, 1)", name
            )


async def test_workflow_metric_summary_aggregates_per_session_totals(
    db: asyncpg.Connection,
) -> None:
    await db.execute("INSERT INTO workflows (id, name) VALUES ('w', 'w')")
    await _session(db, "a", workflow_id="w")
    await _session(db, "b", workflow_id="w")
    await _session(db, "loose")
    rows = [("a", 1.0), ("a", 2.0), ("b", 10.0), ("loose", 5.0)]
    await db.executemany(
        "INSERT INTO session_metrics (session_id, name, value) VALUES ($1, 'cost_usd', $2)", rows
    )
    summary = {
        r["workflow_id"]: r
        for r in await db.fetch("SELECT * FROM workflow_metric_summary WHERE name = 'cost_usd'")
    }
    assert set(summary) == {"w", None}
    w = summary["w"]
    assert (w["sessions"], w["total"], w["avg_per_session"]) == (2, 13.0, 6.5)
    assert (w["min_per_session"], w["max_per_session"], w["p50_per_session"]) == (3.0, 10.0, 6.5)
    assert summary[None]["total"] == 5.0


async def test_workflow_session_stats_count_outcomes_and_durations(
    db: asyncpg.Connection,
) -> None:
    await db.execute("INSERT INTO workflows (id, name) VALUES ('w', 'w')")
    await db.execute(
        "INSERT INTO sessions (id, workflow_id, status, started_at, ended_at) VALUES"
        " ('ok', 'w', 'completed', '2025-01-01 10:00Z', '2025-01-01 10:01Z'),"
        " ('bad', 'w', 'failed', '2025-01-01 11:00Z', '2025-01-01 11:03Z'),"
        " ('live', 'w', 'running', '2025-01-01 12:00Z', NULL)"
    )
    row = await db.fetchrow("SELECT * FROM workflow_session_stats WHERE workflow_id = 'w'")
    assert (row["sessions"], row["live"], row["completed"], row["failed"]) == (3, 1, 1, 1)
    assert row["success_rate"] == 0.5
    assert row["avg_duration"].total_seconds() == 120


# --- 003: lifecycle ----------------------------------------------------------------------------


async def test_unknown_workflow_status_is_rejected(db: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.CheckViolationError, match="workflows_status_check"):
        await db.execute("INSERT INTO workflows (name, status) VALUES ('w', 'deleted')")


async def test_new_workflows_default_to_active(db: asyncpg.Connection) -> None:
    assert await db.fetchval("INSERT INTO workflows (name) VALUES ('w') RETURNING status") == (
        "active"
    )


async def test_transition_outside_the_lifecycle_is_rejected(db: asyncpg.Connection) -> None:
    await db.execute("INSERT INTO workflows (id, name, status) VALUES ('w', 'w', 'draft')")
    with pytest.raises(asyncpg.CheckViolationError, match="cannot go from draft to paused"):
        await db.execute("UPDATE workflows SET status = 'paused' WHERE id = 'w'")


async def test_workflow_creation_is_logged_with_its_first_version(db: asyncpg.Connection) -> None:
    await db.execute(
        "INSERT INTO workflows (id, name, status, config) VALUES ('w', 'w', 'draft', '{\"a\": 1}')"
    )
    transitions = await db.fetch(
        "SELECT from_status, to_status FROM workflow_state_transitions WHERE workflow_id = 'w'"
    )
    assert [tuple(r) for r in transitions] == [(None, "draft")]
    versions = await db.fetch("SELECT version, config FROM workflow_versions")
    assert [tuple(r) for r in versions] == [(1, '{"a": 1}')]


async def test_status_change_is_logged_with_actor_and_reason(db: asyncpg.Connection) -> None:
    await db.execute("INSERT INTO workflows (id, name, status) VALUES ('w', 'w', 'draft')")
    async with db.transaction():
        await db.execute("SET LOCAL sam_db.actor = 'alice'; SET LOCAL sam_db.reason = 'ship it'")
        await db.execute("UPDATE workflows SET status = 'active' WHERE id = 'w'")
    await db.execute("UPDATE workflows SET status = 'paused' WHERE id = 'w'")
    rows = await db.fetch(
        "SELECT from_status, to_status, actor, reason FROM workflow_state_transitions"
        " WHERE workflow_id = 'w' ORDER BY id"
    )
    assert [tuple(r) for r in rows] == [
        (None, "draft", None, None),
        ("draft", "active", "alice", "ship it"),
        ("active", "paused", None, None),
    ]


async def test_status_change_stamps_status_changed_at(db: asyncpg.Connection) -> None:
    await db.execute(
        "INSERT INTO workflows (id, name, status_changed_at) VALUES ('w', 'w', '2000-01-01Z')"
    )
    async with db.transaction():  # now() is the transaction's start time
        await db.execute("UPDATE workflows SET status = 'paused' WHERE id = 'w'")
        changed = await db.fetchval(
            "SELECT status_changed_at = now() FROM workflows WHERE id = 'w'"
        )
    assert changed is True


async def test_update_without_status_change_logs_nothing(db: asyncpg.Connection) -> None:
    await db.execute("INSERT INTO workflows (id, name) VALUES ('w', 'w')")
    await db.execute("UPDATE workflows SET name = 'renamed', status = 'active' WHERE id = 'w'")
    assert await db.fetchval("SELECT count(*) FROM workflow_state_transitions") == 1
    assert await db.fetchval("SELECT count(*) FROM workflow_versions") == 1


async def test_config_change_adds_the_next_version(db: asyncpg.Connection) -> None:
    await db.execute("INSERT INTO workflows (id, name, config) VALUES ('w', 'w', '{\"v\": 1}')")
    await db.execute("UPDATE workflows SET config = '{\"v\": 2}' WHERE id = 'w'")
    await db.execute("UPDATE workflows SET config = '{\"v\": 2}' WHERE id = 'w'")  # unchanged
    await db.execute("UPDATE workflows SET config = '{\"v\": 3}' WHERE id = 'w'")
    versions = await db.fetch("SELECT version, config FROM workflow_versions ORDER BY version")
    assert [tuple(r) for r in versions] == [(1, '{"v": 1}'), (2, '{"v": 2}'), (3, '{"v": 3}')]
    assert await db.fetchval("SELECT version FROM workflows WHERE id = 'w'") == 3


async def test_writers_cannot_set_the_version_number(db: asyncpg.Connection) -> None:
    version = await db.fetchval(
        "INSERT INTO workflows (id, name, version) VALUES ('w', 'w', 7) RETURNING version"
    )
    assert version == 1
    await db.execute("UPDATE workflows SET version = 9 WHERE id = 'w'")
    assert await db.fetchval("SELECT version FROM workflows WHERE id = 'w'") == 1


async def test_deleting_a_workflow_deletes_its_versions_and_transitions(
    db: asyncpg.Connection,
) -> None:
    await db.execute("INSERT INTO workflows (id, name) VALUES ('w', 'w'), ('x', 'x')")
    await db.execute("DELETE FROM workflows WHERE id = 'w'")
    assert await db.fetchval("SELECT array_agg(workflow_id) FROM workflow_versions") == ["x"]
    assert await db.fetchval("SELECT array_agg(workflow_id) FROM workflow_state_transitions") == [
        "x"
    ]


async def test_lifecycle_003_backfills_existing_workflows(conn: asyncpg.Connection) -> None:
    await _migrate(conn, "002")
    await conn.execute(
        "INSERT INTO workflows (id, name, config, created_at) VALUES"
        " ('w', 'w', '{\"k\": true}', '2024-05-01Z')"
    )
    await _migrate_one(conn, "003")
    row = await conn.fetchrow("SELECT status, version, status_changed_at FROM workflows")
    assert (row["status"], row["version"]) == ("active", 1)
    assert row["status_changed_at"].isoformat() == "2024-05-01T00:00:00+00:00"
    assert await conn.fetchval("SELECT config FROM workflow_versions WHERE version = 1") == (
        '{"k": true}'
    )
    assert [
        tuple(r)
        for r in await conn.fetch("SELECT from_status, to_status FROM workflow_state_transitions")
    ] == [(None, "active")]


async def test_lifecycle_triggers_write_to_their_own_schema(conn: asyncpg.Connection) -> None:
    await _migrate(conn, "003")
    await conn.execute("CREATE SCHEMA other; SET search_path = other, public")
    await _migrate(conn, "003")
    # Whatever the caller's search_path, each schema's trigger logs into its own schema.
    await conn.execute("SET search_path = public")
    await conn.execute("INSERT INTO app.workflows (id, name) VALUES ('in-app', 'w')")
    await conn.execute("UPDATE app.workflows SET status = 'paused'")
    await conn.execute("INSERT INTO other.workflows (id, name) VALUES ('in-other', 'w')")
    app_log = await conn.fetch("SELECT workflow_id, to_status FROM app.workflow_state_transitions")
    other_log = await conn.fetch("SELECT workflow_id FROM other.workflow_versions")
    assert sorted(tuple(r) for r in app_log) == [("in-app", "active"), ("in-app", "paused")]
    assert [tuple(r) for r in other_log] == [("in-other",)]


MEMORY_WITH_LOG = """
INSERT INTO app.memory_collections (name) VALUES ('a'), ('b');
INSERT INTO app.memory_entries (collection_id, content, content_hash, embedding)
SELECT c.id, c.name, sha256(c.name::bytea), array_fill(0.5::real, ARRAY[1536])::vector
FROM app.memory_collections c;
INSERT INTO app.memory_access_log (entry_id, collection_id, query_hash, similarity, rank)
SELECT e.id, e.collection_id, sha256('q'), 1, r FROM app.memory_entries e, generate_series(1, 2) r;
"""  # two collections, an entry in each, two access-log rows per entry


async def test_deleting_an_entry_deletes_its_access_log_rows_whatever_the_search_path(
    conn: asyncpg.Connection,
) -> None:
    await _migrate(conn)
    await conn.execute(MEMORY_WITH_LOG)
    await conn.execute("SET search_path = public")
    await conn.execute("DELETE FROM app.memory_entries WHERE content = 'a'")
    left = await conn.fetch(
        "SELECT DISTINCT e.content FROM app.memory_access_log l"
        " JOIN app.memory_entries e ON e.id = l.entry_id"
    )
    assert [r[0] for r in left] == ["b"]
    assert await conn.fetchval("SELECT count(*) FROM app.memory_access_log") == 2


async def test_deleting_a_collection_deletes_its_entries_and_their_log_rows(
    db: asyncpg.Connection,
) -> None:
    await db.execute(MEMORY_WITH_LOG)
    await db.execute("DELETE FROM memory_collections WHERE name = 'a'")
    assert await db.fetchval("SELECT count(*) FROM memory_entries") == 1
    assert await db.fetchval("SELECT count(*) FROM memory_access_log") == 2


# --- rollbacks --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_rollback_restores_the_schema_of_the_previous_step(
    conn: asyncpg.Connection, version: str
) -> None:
    previous = f"{int(version) - 1:03d}"
    await _migrate(conn, previous)
    before = await _snapshot(conn)
    await _migrate_one(conn, version)
    assert await _snapshot(conn) != before
    await _rollback(conn, version)
    assert await _snapshot(conn) == before


async def test_rollback_all_then_migrate_again_gives_an_identical_schema(
    conn: asyncpg.Connection,
) -> None:
    await _migrate(conn)
    first = await _snapshot(conn)
    for version in reversed(VERSIONS):
        await _rollback(conn, version)
    assert await _snapshot(conn) == []
    await _migrate(conn)
    assert await _snapshot(conn) == first


async def test_rollback_and_reapply_of_003_gives_an_identical_schema(
    conn: asyncpg.Connection,
) -> None:
    # 003 adds columns to workflows, so its rollback leaves dropped-column holes behind.
    await _migrate(conn)
    first = await _snapshot(conn)
    await _rollback(conn, "005")
    await _rollback(conn, "004")
    await _rollback(conn, "003")
    await _migrate_one(conn, "003")
    await _migrate_one(conn, "004")
    await _migrate_one(conn, "005")
    assert await _snapshot(conn) == first


async def test_rollback_of_003_keeps_workflow_rows(db: asyncpg.Connection) -> None:
    await db.execute("INSERT INTO workflows (id, name, status) VALUES ('w', 'w', 'draft')")
    await _rollback(db, "005")
    await _rollback(db, "004")
    await _rollback(db, "003")
    assert await db.fetchval("SELECT name FROM workflows WHERE id = 'w'") == "w"


async def test_rollback_of_004_leaves_the_vector_extension_installed(
    db: asyncpg.Connection,
) -> None:
    await _rollback(db, "005")
    await _rollback(db, "004")
    schema = await db.fetchval(
        "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'vector'"
    )
    assert schema == "public"


# --- seed -------------------------------------------------------------------------------------


async def _counts(conn: asyncpg.Connection) -> dict[str, int]:
    tables = [
        "workflows",
        "sessions",
        "session_events",
        "session_metrics",
        "workflow_versions",
        "workflow_state_transitions",
    ]
    return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in tables}  # noqa: S608


async def test_seed_loads_workflows_sessions_events_and_metrics(db: asyncpg.Connection) -> None:
    await _run(db, SEED)
    counts = await _counts(db)
    assert counts == {
        "workflows": 3,
        "sessions": 5,
        "session_events": 12,
        "session_metrics": 10,
        "workflow_versions": 3,
        "workflow_state_transitions": 3,
    }


async def test_seed_is_idempotent(db: asyncpg.Connection) -> None:
    await _run(db, SEED)
    first = await _counts(db)
    snapshot = await db.fetch(
        "SELECT session_id, event_type, occurred_at FROM session_events ORDER BY 1, 3, 2"
    )
    await _run(db, SEED)
    assert await _counts(db) == first
    assert (
        await db.fetch(
            "SELECT session_id, event_type, occurred_at FROM session_events ORDER BY 1, 3, 2"
        )
        == snapshot
    )


async def test_seed_keeps_rows_already_there(db: asyncpg.Connection) -> None:
    await db.execute("INSERT INTO workflows (id, name) VALUES ('wf-code-review', 'mine')")
    await _run(db, SEED)
    assert await db.fetchval("SELECT name FROM workflows WHERE id = 'wf-code-review'") == "mine"
