"""``sam-db migrate --dry-run`` / ``sam_db.plan()``: the SQL a migrate would run, changing nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

import sam_db
from sam_db.errors import MigrationModifiedError
from tests.helpers import (
    execute,
    fetchval,
    fresh_database,
    snapshot,
    table_exists,
    write_migrations,
)

FILES = {
    "001_a.sql": "CREATE TABLE a (id int PRIMARY KEY, note text DEFAULT 'it''s');\n"
    "CREATE FUNCTION a_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM a $$;\n",
    "002_b.sql": "CREATE TABLE b (a_id int REFERENCES a);\n",
}
NO_TX = {
    "003_idx.sql": "-- sam_db: no-transaction\n"
    "CREATE INDEX CONCURRENTLY b_a_id ON b (a_id);\n"
    "CREATE INDEX CONCURRENTLY a_note ON a (note);\n",
}


def sam_db_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m sam_db ARGV`` as a real process, with no DSN from the environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SAM_DB_TEST_DSN")}
    return subprocess.run(
        [sys.executable, "-m", "sam_db", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_dry_run_prints_pending_files_in_order_and_changes_nothing(
    db_dsn: str, tmp_path: Path
) -> None:
    src = write_migrations(tmp_path, FILES)
    done = sam_db_cli("migrate", "--dry-run", "--dsn", db_dsn, "--source", str(src), "--no-bundled")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    order = [
        f"-- {src / '001_a.sql'}:",
        "CREATE TABLE a",
        f"-- {src / '002_b.sql'}:",
        "CREATE TABLE b",
    ]
    positions = [out.index(text) for text in order]
    assert positions == sorted(positions)
    assert not await table_exists(db_dsn, "a")
    assert not await table_exists(db_dsn, "schema_migrations")


async def test_dry_run_frames_each_file_in_its_transaction_with_lock_and_tracking_row(
    db_dsn: str, tmp_path: Path
) -> None:
    src = write_migrations(tmp_path, {"001_a.sql": FILES["001_a.sql"]})
    out = sam_db_cli(
        "migrate", "--dry-run", "--dsn", db_dsn, "--source", str(src), "--no-bundled"
    ).stdout
    step = out[out.index("-- " + str(src / "001_a.sql")) :]
    order = [
        "BEGIN;",
        "pg_try_advisory_xact_lock(",
        "set_config('lock_timeout', '5000ms', true)",
        "CREATE TABLE IF NOT EXISTS",
        "CREATE TABLE a",
        'INSERT INTO "public"."schema_migrations"',
        "COMMIT;",
    ]
    positions = [step.index(text) for text in order]
    assert positions == sorted(positions)


async def test_dry_run_shows_lock_timeout_and_stall_timeout(db_dsn: str, tmp_path: Path) -> None:
    src = write_migrations(tmp_path, FILES)
    out = sam_db_cli(
        "migrate",
        "--dry-run",
        "--dsn",
        db_dsn,
        "--source",
        str(src),
        "--no-bundled",
        "--lock-timeout",
        "2",
        "--stall-timeout",
        "7",
        "--lock-retries",
        "3",
    ).stdout
    assert "set_config('lock_timeout', '2000ms', true)" in out
    assert "set_config('statement_timeout', '7000ms', true)" in out
    assert "retried up to 3 times" in out
    assert "stall_timeout=7s" in out


async def test_dry_run_shows_a_no_transaction_file_statement_by_statement(
    db_dsn: str, tmp_path: Path
) -> None:
    src = write_migrations(tmp_path, {**FILES, **NO_TX})
    out = sam_db_cli(
        "migrate", "--dry-run", "--dsn", db_dsn, "--source", str(src), "--no-bundled"
    ).stdout
    step = out[out.index("003_idx.sql: outside a transaction") :]
    order = [
        "-- connection 1:",
        "pg_try_advisory_xact_lock(",
        "-- connection 2",
        "set_config('lock_timeout', '5000ms', false)",
        "CREATE INDEX CONCURRENTLY b_a_id ON b (a_id);",
        "CREATE INDEX CONCURRENTLY a_note ON a (note);",
        "RESET search_path",
        "INSERT INTO",
        "COMMIT;",
    ]
    positions = [step.index(text) for text in order]
    assert positions == sorted(positions)


async def test_plan_on_one_connection_runs_no_transaction_files_under_a_session_lock(
    db_dsn: str, tmp_path: Path
) -> None:
    src = write_migrations(tmp_path, {**FILES, **NO_TX})
    conn = await asyncpg.connect(db_dsn)
    try:
        plan = await sam_db.plan(conn, sources=[src], include_bundled=False)
    finally:
        await conn.close()
    sql = plan.steps[-1].sql
    assert not plan.steps[-1].transactional
    assert sql.index("pg_try_advisory_lock(") < sql.index("CREATE INDEX CONCURRENTLY b_a_id")
    assert sql.index("CREATE INDEX CONCURRENTLY a_note") < sql.index("pg_advisory_unlock(")


async def test_plan_lists_what_migrate_then_applies(db_dsn: str, tmp_path: Path) -> None:
    src = write_migrations(tmp_path, {**FILES, **NO_TX})
    await sam_db.migrate(db_dsn, sources=[src], include_bundled=False, target="001")
    plan = await sam_db.plan(db_dsn, sources=[src], include_bundled=False)
    applied = await sam_db.migrate(db_dsn, sources=[src], include_bundled=False)
    assert (
        [s.filename for s in plan.steps]
        == [m.filename for m in applied]
        == [
            "002_b.sql",
            "003_idx.sql",
        ]
    )
    assert plan.target_schema == "public"
    assert plan.sql.count("BEGIN;") == 2


def test_the_planned_sql_of_transactional_files_applies_them_like_migrate(
    pg_admin_dsn: str, db_dsn: str, tmp_path: Path
) -> None:
    src = write_migrations(tmp_path, FILES)
    plan = asyncio.run(sam_db.plan(db_dsn, schema="app", sources=[src], include_bundled=False))
    asyncio.run(execute(db_dsn, plan.sql))  # the whole printed script, as psql would send it
    rows = asyncio.run(sam_db.status(db_dsn, schema="app", sources=[src], include_bundled=False))
    assert [(r.version, r.state) for r in rows] == [("001", "applied"), ("002", "applied")]
    with fresh_database(pg_admin_dsn, "dry") as migrated:
        asyncio.run(sam_db.migrate(migrated, schema="app", sources=[src], include_bundled=False))
        assert asyncio.run(snapshot(db_dsn, "app")) == asyncio.run(snapshot(migrated, "app"))


async def test_dry_run_of_an_up_to_date_database_plans_nothing(db_dsn: str, tmp_path: Path) -> None:
    src = write_migrations(tmp_path, FILES)
    await sam_db.migrate(db_dsn, sources=[src], include_bundled=False)
    plan = await sam_db.plan(db_dsn, sources=[src], include_bundled=False)
    assert plan.steps == []
    done = sam_db_cli("migrate", "--dry-run", "--dsn", db_dsn, "--source", str(src), "--no-bundled")
    assert done.returncode == 0
    assert "none (up to date)" in done.stdout
    assert "BEGIN" not in done.stdout


async def test_dry_run_refuses_like_migrate_when_an_applied_file_changed(
    db_dsn: str, tmp_path: Path
) -> None:
    src = write_migrations(tmp_path, FILES)
    await sam_db.migrate(db_dsn, sources=[src], include_bundled=False, target="001")
    (src / "001_a.sql").write_text("CREATE TABLE a (id bigint);")
    with pytest.raises(MigrationModifiedError):
        await sam_db.plan(db_dsn, sources=[src], include_bundled=False)
    done = sam_db_cli("migrate", "--dry-run", "--dsn", db_dsn, "--source", str(src), "--no-bundled")
    assert done.returncode == 1
    assert "001_a.sql" in done.stderr
    assert not await table_exists(db_dsn, "b")


async def test_status_shows_the_plan_of_the_next_migrate(db_dsn: str, tmp_path: Path) -> None:
    src = write_migrations(tmp_path, {**FILES, **NO_TX})
    await sam_db.migrate(db_dsn, sources=[src], include_bundled=False, target="001")
    done = sam_db_cli("status", "--dsn", db_dsn, "--source", str(src), "--no-bundled")
    assert done.returncode == 0, done.stderr
    plan = done.stdout[done.stdout.index("next migrate") :].splitlines()
    assert plan[:2] == [
        "next migrate: 002_b.sql in one transaction",
        "next migrate: 003_idx.sql outside a transaction, one by one",
    ]
    assert await fetchval(db_dsn, "SELECT count(*) FROM schema_migrations") == 1
