"""How long application queries can wait for a migration: per statement, or per migration.

``lock_timeout`` bounds each lock wait of each statement, but a transaction keeps the locks it took
until it ends, so an application query queued behind a migration's first statement also waits for
its later ones. ``stall_timeout`` is a deadline across a migration's statements: no application
query waits longer than that for one attempt.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import sam_db
from sam_db.cli import main as cli_main
from sam_db.errors import ConfigurationError, DDLLockTimeoutError, MigrationFailedError
from tests.helpers import fetchval, write_migrations

NO_TX = "-- sam_db: no-transaction\n"
TWO_BLOCKED = "ALTER TABLE a ADD COLUMN x int;\nALTER TABLE b ADD COLUMN y int;\n"


def _sources(tmp_path: Path, second: str = TWO_BLOCKED) -> Path:
    return write_migrations(
        tmp_path / "m",
        {"001_ab.sql": "CREATE TABLE a (id int); CREATE TABLE b (id int);", "002_x.sql": second},
    )


async def _reader(dsn: str, table: str) -> asyncpg.Connection:
    """A connection in a transaction that read ``table``: ALTER TABLE waits for it to end."""
    conn = await asyncpg.connect(dsn)
    await conn.execute(f"BEGIN; LOCK TABLE {table} IN ACCESS SHARE MODE")
    return conn


async def _application_query_wait(
    dsn: str, migrate: Coroutine[Any, Any, list[sam_db.Migration]], hold: float = 2.5
) -> tuple[float, bool, list[sam_db.Migration]]:
    """Runs ``migrate`` with statement 1 blocked briefly and statement 2 for ``hold`` seconds.

    Returns how long an application query on ``a`` waited, whether it ended while statement 2's
    blocker was still there, and what the migration applied.
    """
    a_reader = await _reader(dsn, "a")
    b_reader = await _reader(dsn, "b")
    app = await asyncpg.connect(dsn)
    try:
        migrate_task = asyncio.ensure_future(migrate)
        await asyncio.sleep(0.2)  # the migration queues for a's lock
        started = time.monotonic()
        query = asyncio.create_task(app.fetchval("SELECT count(*) FROM a"))  # queues behind it
        await asyncio.sleep(0.2)
        await a_reader.close()  # statement 1 gets a's lock and keeps it; statement 2 waits for b
        done, _ = await asyncio.wait({query}, timeout=hold)
        waited = time.monotonic() - started
        before_b_released = bool(done)
        await b_reader.close()
        await asyncio.wait_for(query, timeout=10)
        waited = min(waited, time.monotonic() - started)
        return waited, before_b_released, await asyncio.wait_for(migrate_task, timeout=30)
    finally:
        for c in (a_reader, b_reader, app):
            await c.close()


@pytest.mark.slow
async def test_lock_timeout_alone_bounds_each_statement_not_the_migration(
    db_dsn: str, tmp_path: Path
) -> None:
    src = _sources(tmp_path)
    await sam_db.migrate(db_dsn, sources=[src], include_bundled=False, target="001")
    run = sam_db.migrate(db_dsn, sources=[src], include_bundled=False, lock_timeout=4)
    waited, before_b_released, _ = await _application_query_wait(db_dsn, run)
    # The app query stayed queued behind the migration until statement 2's blocker went away,
    # though each statement waited less than lock_timeout.
    assert not before_b_released and waited >= 2.5


async def test_stall_timeout_bounds_how_long_application_queries_wait(
    db_dsn: str, tmp_path: Path
) -> None:
    src = _sources(tmp_path)
    await sam_db.migrate(db_dsn, sources=[src], include_bundled=False, target="001")
    run = sam_db.migrate(
        db_dsn,
        sources=[src],
        include_bundled=False,
        lock_timeout=4,
        stall_timeout=1.0,
        lock_retries=50,
    )
    waited, before_b_released, applied = await _application_query_wait(db_dsn, run)
    # The attempt was rolled back at its deadline, releasing a, while b was still blocked.
    assert before_b_released
    assert waited <= 1.0 + 0.5
    assert [m.version for m in applied] == ["002"]  # retried once b was free
    assert (
        await fetchval(
            db_dsn,
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name IN ('a', 'b') AND column_name IN ('x', 'y')",
        )
        == 2
    )


async def test_stall_timeout_reported_once_retries_run_out(db_dsn: str, tmp_path: Path) -> None:
    src = _sources(tmp_path)
    await sam_db.migrate(db_dsn, sources=[src], include_bundled=False, target="001")
    b_reader = await _reader(db_dsn, "b")
    try:
        with pytest.raises(DDLLockTimeoutError) as info:
            await sam_db.migrate(
                db_dsn, sources=[src], include_bundled=False, stall_timeout=0.3, lock_retries=1
            )
    finally:
        await b_reader.close()
    message = str(info.value)
    assert "stall_timeout=0.3s" in message and "002_x.sql" in message
    assert info.value.line == 2 and info.value.statement == "ALTER TABLE b ADD COLUMN y int"
    states = await sam_db.status(db_dsn, sources=[src], include_bundled=False)
    assert [r.state for r in states] == ["applied", "pending"]
    # Rolled back: statement 1's column is not there either.
    assert not await fetchval(
        db_dsn, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'x'"
    )


async def test_a_failing_statement_under_stall_timeout_is_named(
    db_dsn: str, tmp_path: Path
) -> None:
    src = _sources(tmp_path, "ALTER TABLE a ADD COLUMN x int;\n\nSELECT * FROM nope;\n")
    with pytest.raises(MigrationFailedError) as info:
        await sam_db.migrate(db_dsn, sources=[src], include_bundled=False, stall_timeout=5)
    assert (info.value.line, info.value.statement, info.value.sqlstate) == (
        3,
        "SELECT * FROM nope",
        "42P01",
    )
    assert "statement 2 of 2" in str(info.value)
    assert [r.state for r in await sam_db.status(db_dsn, sources=[src], include_bundled=False)] == [
        "applied",
        "pending",
    ]


async def test_stall_timeout_applies_migrations_normally(db_dsn: str) -> None:
    applied = await sam_db.migrate(db_dsn, stall_timeout=30)
    assert [m.version for m in applied] == ["001", "002", "003", "004", "005"]
    # The deadline's settings stayed inside the migrations' transactions.
    conn = await asyncpg.connect(db_dsn)
    try:
        assert await conn.fetchval("SHOW statement_timeout") == "0"
    finally:
        await conn.close()


async def test_stall_timeout_cuts_a_slow_statement_of_a_no_transaction_file(
    db_dsn: str, tmp_path: Path
) -> None:
    src = _sources(tmp_path, NO_TX + "SELECT pg_sleep(5);\n")
    started = time.monotonic()
    with pytest.raises(MigrationFailedError, match="statement timeout"):
        await sam_db.migrate(db_dsn, sources=[src], include_bundled=False, stall_timeout=0.3)
    assert time.monotonic() - started < 4


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
async def test_stall_timeout_must_be_positive(db_dsn: str, bad: float) -> None:
    with pytest.raises(ConfigurationError, match="stall_timeout"):
        await sam_db.migrate(db_dsn, stall_timeout=bad)
    assert not await fetchval(db_dsn, "SELECT to_regclass('schema_migrations') IS NOT NULL")


async def test_cli_stall_timeout_option(
    db_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _sources(tmp_path)
    await sam_db.migrate(db_dsn, sources=[src], include_bundled=False, target="001")
    args = ["migrate", "--dsn", db_dsn, "--source", str(src), "--no-bundled", "--lock-retries", "0"]
    b_reader = await _reader(db_dsn, "b")
    try:
        code = await asyncio.to_thread(cli_main, [*args, "--stall-timeout", "0.3"])
    finally:
        await b_reader.close()
    assert code == 1
    assert "stall_timeout=0.3s" in capsys.readouterr().err
    assert await asyncio.to_thread(cli_main, [*args, "--stall-timeout", "5"]) == 0
    assert "applied 002_x.sql" in capsys.readouterr().out


async def test_stall_timeout_inside_a_callers_transaction_leaves_its_settings(
    db_dsn: str, tmp_path: Path
) -> None:
    src = _sources(tmp_path)
    conn = await asyncpg.connect(db_dsn)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL statement_timeout = '42s'")
            applied = await sam_db.migrate(
                conn, sources=[src], include_bundled=False, stall_timeout=9
            )
            assert [m.version for m in applied] == ["001", "002"]
            assert await conn.fetchval("SHOW statement_timeout") == "42s"
    finally:
        await conn.close()
