"""migrate / status / rollback / repair against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import asyncpg
import pytest

import sam_db
from sam_db.errors import (
    MigrationFailedError,
    MigrationLockTimeoutError,
    MigrationModifiedError,
    RollbackUnavailableError,
    UnknownMigrationError,
    UnknownTargetError,
)
from tests.helpers import fetchval, snapshot, table_exists, write_migrations

BUNDLED = ["001", "002", "003", "004", "005"]


async def test_migrate_applies_every_bundled_migration(db_dsn: str) -> None:
    applied = await sam_db.migrate(db_dsn)
    assert [m.version for m in applied] == BUNDLED
    assert [m.name for m in applied] == [
        "initial_schema",
        "session_metrics",
        "workflow_lifecycle",
        "memory_system",
        "memory_text_search",
    ]
    for table in ("workflows", "sessions", "session_events", "session_metrics", "memory_entries"):
        assert await table_exists(db_dsn, table)


async def test_migrate_when_up_to_date_returns_nothing(db_dsn: str) -> None:
    await sam_db.migrate(db_dsn)
    assert await sam_db.migrate(db_dsn) == []


async def test_status_of_never_migrated_database_is_all_pending(db_dsn: str) -> None:
    rows = await sam_db.status(db_dsn)
    assert [(r.version, r.state) for r in rows] == [(v, "pending") for v in BUNDLED]
    assert not await table_exists(db_dsn, "schema_migrations")


async def test_status_after_migrate_is_all_applied(db_dsn: str) -> None:
    await sam_db.migrate(db_dsn)
    rows = await sam_db.status(db_dsn)
    assert [r.state for r in rows] == ["applied"] * 5
    assert all(r.applied_at is not None and r.execution_ms is not None for r in rows)
    assert all(r.checksum and len(r.checksum) == 64 for r in rows)


async def test_tracking_table_records_checksum_with_algorithm(db_dsn: str) -> None:
    await sam_db.migrate(db_dsn)
    algo = await fetchval(db_dsn, "SELECT DISTINCT checksum_algorithm FROM schema_migrations")
    assert algo == "sha256"


async def test_migrate_stops_at_target(db_dsn: str) -> None:
    applied = await sam_db.migrate(db_dsn, target="002")
    assert [m.version for m in applied] == ["001", "002"]
    assert [r.state for r in await sam_db.status(db_dsn)] == [
        "applied",
        "applied",
        "pending",
        "pending",
        "pending",
    ]


async def test_unknown_target_is_an_error(db_dsn: str) -> None:
    with pytest.raises(UnknownTargetError, match="042"):
        await sam_db.migrate(db_dsn, target="042")


async def test_extra_source_migration_runs_after_bundled(db_dsn: str, tmp_path: Path) -> None:
    src = write_migrations(
        tmp_path,
        {
            "006_my_feature.sql": "CREATE TABLE my_feature (workflow_id text REFERENCES workflows (id));"
        },
    )
    applied = await sam_db.migrate(db_dsn, sources=[src])
    assert [m.version for m in applied] == [*BUNDLED, "006"]
    assert await table_exists(db_dsn, "my_feature")


async def test_schema_option_puts_everything_in_that_schema(db_dsn: str) -> None:
    await sam_db.migrate(db_dsn, schema="tenant_a")
    assert await table_exists(db_dsn, "tenant_a.schema_migrations")
    assert await table_exists(db_dsn, "tenant_a.memory_entries")
    assert not await table_exists(db_dsn, "public.workflows")


async def test_two_schemas_in_one_database_are_independent(db_dsn: str) -> None:
    await sam_db.migrate(db_dsn, schema="a")
    await sam_db.migrate(db_dsn, schema="b", target="001")
    assert [r.state for r in await sam_db.status(db_dsn, schema="a")] == ["applied"] * 5
    assert [r.state for r in await sam_db.status(db_dsn, schema="b")] == ["applied"] + [
        "pending"
    ] * 4
    await sam_db.rollback(db_dsn, schema="a", target="0")
    assert await table_exists(db_dsn, "b.workflows")


async def test_vector_extension_is_shared_by_schemas(db_dsn: str) -> None:
    await sam_db.migrate(db_dsn, schema="a")
    await sam_db.migrate(db_dsn, schema="b")
    where = await fetchval(
        db_dsn,
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'vector'",
    )
    assert where == "public"


async def test_schema_with_odd_name_is_quoted(db_dsn: str) -> None:
    odd = 'we"ird; DROP SCHEMA public'
    await sam_db.migrate(db_dsn, schema=odd)
    assert [r.state for r in await sam_db.status(db_dsn, schema=odd)] == ["applied"] * 5
    assert await table_exists(db_dsn, "public.schema_migrations") is False


async def test_failing_migration_leaves_nothing_behind(db_dsn: str, tmp_path: Path) -> None:
    src = write_migrations(
        tmp_path,
        {
            "001_ok.sql": "CREATE TABLE ok (id int);",
            "002_bad.sql": "CREATE TABLE half (id int);\nINSERT INTO half VALUES (1);\nSELECT * FROM nope;\n",
        },
    )
    with pytest.raises(MigrationFailedError) as info:
        await sam_db.migrate(db_dsn, sources=[src], include_bundled=False)
    assert not await table_exists(db_dsn, "half")
    assert await table_exists(db_dsn, "ok")
    rows = await sam_db.status(db_dsn, sources=[src], include_bundled=False)
    assert [r.state for r in rows] == ["applied", "pending"]
    assert info.value.file.endswith("002_bad.sql")


async def test_failure_names_file_line_and_statement(db_dsn: str, tmp_path: Path) -> None:
    src = write_migrations(
        tmp_path,
        {
            "001_bad.sql": "CREATE TABLE a (id int);\n\nINSERT INTO a VALUES (1);\nSELECT * FROM nope;\n"
        },
    )
    with pytest.raises(MigrationFailedError) as info:
        await sam_db.migrate(db_dsn, sources=[src], include_bundled=False)
    err = info.value
    assert err.line == 4
    assert err.statement == "SELECT * FROM nope"
    assert err.sqlstate == "42P01"
    assert "001_bad.sql" in str(err) and "line 4" in str(err) and "rolled back" in str(err)


async def test_syntax_error_reports_line_and_column(db_dsn: str, tmp_path: Path) -> None:
    src = write_migrations(
        tmp_path, {"001_bad.sql": "CREATE TABLE a (id int);\nCREATE TABLEX b (id int);\n"}
    )
    with pytest.raises(MigrationFailedError) as info:
        await sam_db.migrate(db_dsn, sources=[src], include_bundled=False)
    assert info.value.line == 2
    assert "line 2, column" in str(info.value)
    assert not await table_exists(db_dsn, "a")


async def test_changed_applied_file_makes_migrate_refuse(db_dsn: str, tmp_path: Path) -> None:
    src = write_migrations(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);"})
    await sam_db.migrate(db_dsn, sources=[src], include_bundled=False)
    (src / "001_a.sql").write_text("CREATE TABLE a (id bigint);")
    (src / "002_b.sql").write_text("CREATE TABLE b (id int);")
    with pytest.raises(MigrationModifiedError, match=r"001_a\.sql") as info:
        await sam_db.migrate(db_dsn, sources=[src], include_bundled=False)
    assert info.value.files == ["001_a.sql"]
    assert not await table_exists(db_dsn, "b")


async def test_status_shows_changed_file_as_modified(db_dsn: str, tmp_path: Path) -> None:
    src = write_migrations(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);"})
    await sam_db.migrate(db_dsn, sources=[src], include_bundled=False)
    (src / "001_a.sql").write_text("-- now with a comment\nCREATE TABLE a (id int);")
    [row] = await sam_db.status(db_dsn, sources=[src], include_bundled=False)
    assert row.state == "modified"
    assert row.checksum != row.applied_checksum


async def test_repair_accepts_a_changed_file(db_dsn: str, tmp_path: Path) -> None:
    src = write_migrations(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);"})
    await sam_db.migrate(db_dsn, sources=[src], include_bundled=False)
    (src / "001_a.sql").write_text("-- a comment\nCREATE TABLE a (id int);")
    assert await sam_db.repair(db_dsn, sources=[src], include_bundled=False) == ["001"]
    [row] = await sam_db.status(db_dsn, sources=[src], include_bundled=False)
    assert row.state == "applied"
    assert await sam_db.migrate(db_dsn, sources=[src], include_bundled=False) == []


async def test_crlf_checkout_is_not_drift(db_dsn: str, tmp_path: Path) -> None:
    src = write_migrations(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\nSELECT 1;\n"})
    await sam_db.migrate(db_dsn, sources=[src], include_bundled=False)
    (src / "001_a.sql").write_bytes(b"CREATE TABLE a (id int);\r\nSELECT 1;\r\n")
    assert [r.state for r in await sam_db.status(db_dsn, sources=[src], include_bundled=False)] == [
        "applied"
    ]


async def test_applied_version_without_file_shows_missing_and_is_logged(
    db_dsn: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    newer = write_migrations(
        tmp_path / "newer", {"001_a.sql": "SELECT 1;", "002_b.sql": "SELECT 2;"}
    )
    older = write_migrations(tmp_path / "older", {"001_a.sql": "SELECT 1;"})
    await sam_db.migrate(db_dsn, sources=[newer], include_bundled=False)
    rows = await sam_db.status(db_dsn, sources=[older], include_bundled=False)
    assert [(r.version, r.state) for r in rows] == [("001", "applied"), ("002", "missing")]
    with caplog.at_level(logging.WARNING, logger="sam_db"):
        assert await sam_db.migrate(db_dsn, sources=[older], include_bundled=False) == []
    assert "002" in caplog.text


async def test_strict_migrate_refuses_unknown_applied_versions(db_dsn: str, tmp_path: Path) -> None:
    newer = write_migrations(
        tmp_path / "newer", {"001_a.sql": "SELECT 1;", "002_b.sql": "SELECT 2;"}
    )
    older = write_migrations(tmp_path / "older", {"001_a.sql": "SELECT 1;"})
    await sam_db.migrate(db_dsn, sources=[newer], include_bundled=False)
    with pytest.raises(UnknownMigrationError) as info:
        await sam_db.migrate(db_dsn, sources=[older], include_bundled=False, strict=True)
    assert info.value.versions == ["002"]


async def test_rollback_undoes_the_newest_migration(db_dsn: str) -> None:
    await sam_db.migrate(db_dsn)
    undone = await sam_db.rollback(db_dsn)
    assert [m.version for m in undone] == ["005"]
    assert await fetchval(db_dsn, "SELECT to_regproc('memory_text_query') IS NULL")
    assert [r.state for r in await sam_db.status(db_dsn)] == ["applied"] * 4 + ["pending"]


async def test_rollback_steps_returns_newest_first(db_dsn: str) -> None:
    await sam_db.migrate(db_dsn)
    assert [m.version for m in await sam_db.rollback(db_dsn, steps=3)] == ["005", "004", "003"]


async def test_rollback_to_target_undoes_everything_above(db_dsn: str) -> None:
    await sam_db.migrate(db_dsn)
    assert [m.version for m in await sam_db.rollback(db_dsn, target="002")] == ["005", "004", "003"]


async def test_rollback_of_004_keeps_the_vector_extension(db_dsn: str) -> None:
    await sam_db.migrate(db_dsn)
    await sam_db.rollback(db_dsn, steps=2)
    assert await fetchval(db_dsn, "SELECT count(*) FROM pg_extension WHERE extname = 'vector'") == 1


async def test_rollback_everything_then_migrate_gives_identical_schema(db_dsn: str) -> None:
    await sam_db.migrate(db_dsn)
    before = await snapshot(db_dsn)
    await sam_db.rollback(db_dsn, target="0")
    relations = {v for k, v in await snapshot(db_dsn) if k == "rel"}
    assert relations == {"schema_migrations:r", "schema_migrations_pkey:i"}
    assert await fetchval(db_dsn, "SELECT count(*) FROM schema_migrations") == 0
    await sam_db.migrate(db_dsn)
    assert await snapshot(db_dsn) == before


async def test_each_rollback_restores_the_previous_schema(db_dsn: str) -> None:
    shots = []
    for version in BUNDLED:
        await sam_db.migrate(db_dsn, target=version)
        shots.append(await snapshot(db_dsn))
    for i in range(len(BUNDLED) - 1, 0, -1):
        await sam_db.rollback(db_dsn)
        assert await snapshot(db_dsn) == shots[i - 1], f"rollback of {BUNDLED[i]}"


async def test_rollback_without_rollback_file_rolls_back_nothing(
    db_dsn: str, tmp_path: Path
) -> None:
    src = write_migrations(
        tmp_path,
        {
            "001_a.sql": "CREATE TABLE a (id int);",
            "001_a.rollback.sql": "DROP TABLE a;",
            "002_b.sql": "CREATE TABLE b (id int);",
        },
    )
    await sam_db.migrate(db_dsn, sources=[src], include_bundled=False)
    with pytest.raises(RollbackUnavailableError, match=r"002_b\.rollback\.sql"):
        await sam_db.rollback(db_dsn, steps=2, sources=[src], include_bundled=False)
    assert await table_exists(db_dsn, "a") and await table_exists(db_dsn, "b")


async def test_rollback_of_nothing_applied_returns_empty(db_dsn: str) -> None:
    assert await sam_db.rollback(db_dsn) == []


async def test_migrate_accepts_an_asyncpg_connection(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        assert len(await sam_db.migrate(conn)) == 5
        assert [r.state for r in await sam_db.status(conn)] == ["applied"] * 5
    finally:
        await conn.close()


async def test_migrate_accepts_an_asyncpg_pool(db_dsn: str) -> None:
    async with asyncpg.create_pool(db_dsn, min_size=1, max_size=2) as pool:
        assert len(await sam_db.migrate(pool)) == 5
        assert [m.version for m in await sam_db.rollback(pool)] == ["005"]


async def test_up_to_date_migrate_takes_no_lock(db_dsn: str) -> None:
    from sam_db._lock import lock_key

    await sam_db.migrate(db_dsn)
    holder = await asyncpg.connect(db_dsn)
    try:
        await holder.execute("SELECT pg_advisory_lock($1, $2)", *lock_key("public"))
        # With the lock held elsewhere, a no-op migrate must still return at once.
        assert await asyncio.wait_for(sam_db.migrate(db_dsn, lock_wait=0.5), timeout=5) == []
    finally:
        await holder.close()


async def test_waiting_for_the_lock_is_bounded_and_names_the_holder(db_dsn: str) -> None:
    from sam_db._lock import lock_key

    holder = await asyncpg.connect(db_dsn, server_settings={"application_name": "the-holder"})
    try:
        await holder.execute("SELECT pg_advisory_lock($1, $2)", *lock_key("public"))
        with pytest.raises(MigrationLockTimeoutError, match="the-holder"):
            await sam_db.migrate(db_dsn, lock_wait=0.3)
    finally:
        await holder.close()
    assert len(await sam_db.migrate(db_dsn)) == 5  # released by the holder's disconnect


async def test_waiter_proceeds_when_the_lock_is_released(
    db_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    from sam_db._lock import lock_key

    holder = await asyncpg.connect(db_dsn, server_settings={"application_name": "slow-replica"})
    await holder.execute("SELECT pg_advisory_lock($1, $2)", *lock_key("public"))
    with caplog.at_level(logging.INFO, logger="sam_db"):
        task = asyncio.create_task(sam_db.migrate(db_dsn, lock_wait=30))
        await asyncio.sleep(0.5)
        assert not task.done()
        await holder.close()
        assert len(await asyncio.wait_for(task, timeout=10)) == 5
    assert "slow-replica" in caplog.text


async def test_ddl_lock_timeout_is_retried_then_reported(db_dsn: str, tmp_path: Path) -> None:
    from sam_db.errors import DDLLockTimeoutError

    src = write_migrations(
        tmp_path,
        {"001_a.sql": "CREATE TABLE a (id int);", "002_b.sql": "ALTER TABLE a ADD COLUMN x int;"},
    )
    await sam_db.migrate(db_dsn, sources=[src], include_bundled=False, target="001")
    blocker = await asyncpg.connect(db_dsn)
    try:
        await blocker.execute("BEGIN; LOCK TABLE a IN ACCESS SHARE MODE")
        with pytest.raises(DDLLockTimeoutError, match=r"002_b\.sql"):
            await sam_db.migrate(
                db_dsn, sources=[src], include_bundled=False, lock_timeout=0.05, lock_retries=1
            )
    finally:
        await blocker.close()
    assert [r.state for r in await sam_db.status(db_dsn, sources=[src], include_bundled=False)] == [
        "applied",
        "pending",
    ]


async def test_ddl_lock_timeout_retry_succeeds_once_the_blocker_ends(
    db_dsn: str, tmp_path: Path
) -> None:
    src = write_migrations(
        tmp_path,
        {"001_a.sql": "CREATE TABLE a (id int);", "002_b.sql": "ALTER TABLE a ADD COLUMN x int;"},
    )
    await sam_db.migrate(db_dsn, sources=[src], include_bundled=False, target="001")
    blocker = await asyncpg.connect(db_dsn)
    await blocker.execute("BEGIN; LOCK TABLE a IN ACCESS SHARE MODE")
    task = asyncio.create_task(
        sam_db.migrate(
            db_dsn, sources=[src], include_bundled=False, lock_timeout=0.1, lock_retries=5
        )
    )
    await asyncio.sleep(0.3)
    await blocker.close()
    assert [m.version for m in await asyncio.wait_for(task, timeout=30)] == ["002"]


NO_TX = "-- sam_db: no-transaction\n"


async def test_no_transaction_migration_can_create_index_concurrently(
    db_dsn: str, tmp_path: Path
) -> None:
    src = write_migrations(
        tmp_path,
        {
            "001_t.sql": "CREATE TABLE t (x int);",
            "002_idx.sql": NO_TX
            + "CREATE INDEX CONCURRENTLY t_x_idx ON t (x);\nCREATE INDEX CONCURRENTLY t_x2_idx ON t ((x * 2));\n",
            "002_idx.rollback.sql": NO_TX
            + "DROP INDEX CONCURRENTLY t_x_idx;\nDROP INDEX CONCURRENTLY t_x2_idx;\n",
        },
    )
    applied = await sam_db.migrate(db_dsn, sources=[src], include_bundled=False)
    assert [(m.version, m.transactional) for m in applied] == [("001", True), ("002", False)]
    assert await table_exists(db_dsn, "t_x_idx") and await table_exists(db_dsn, "t_x2_idx")
    assert [
        m.version for m in await sam_db.rollback(db_dsn, sources=[src], include_bundled=False)
    ] == ["002"]
    assert not await table_exists(db_dsn, "t_x_idx")


async def test_no_transaction_migration_in_a_schema(db_dsn: str, tmp_path: Path) -> None:
    src = write_migrations(
        tmp_path,
        {
            "001_t.sql": "CREATE TABLE t (x int);",
            "002_idx.sql": NO_TX + "CREATE INDEX CONCURRENTLY t_x_idx ON t (x);",
        },
    )
    await sam_db.migrate(db_dsn, schema="s1", sources=[src], include_bundled=False)
    assert await table_exists(db_dsn, "s1.t_x_idx")


async def test_no_transaction_migration_through_a_single_connection(
    db_dsn: str, tmp_path: Path
) -> None:
    src = write_migrations(
        tmp_path,
        {
            "001_t.sql": "CREATE TABLE t (x int);",
            "002_idx.sql": NO_TX + "CREATE INDEX CONCURRENTLY t_x_idx ON t (x);",
        },
    )
    conn = await asyncpg.connect(db_dsn)
    try:
        assert len(await sam_db.migrate(conn, sources=[src], include_bundled=False)) == 2
        assert await conn.fetchval("SELECT pg_try_advisory_lock(1, 1)")  # no session lock leaked
    finally:
        await conn.close()
    assert await table_exists(db_dsn, "t_x_idx")


async def test_failed_concurrent_index_reports_the_invalid_index(
    db_dsn: str, tmp_path: Path
) -> None:
    from sam_db.errors import InvalidIndexError

    src = write_migrations(
        tmp_path,
        {
            "001_t.sql": "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (1);",
            "002_idx.sql": NO_TX + "CREATE UNIQUE INDEX CONCURRENTLY t_x_key ON t (x);",
        },
    )
    with pytest.raises(InvalidIndexError) as info:
        await sam_db.migrate(db_dsn, sources=[src], include_bundled=False)
    assert info.value.indexes == ["public.t_x_key"]
    assert "DROP INDEX CONCURRENTLY" in str(info.value)
    # Not recorded, and shown as failed (its index is INVALID), not as pending or applied.
    assert [r.state for r in await sam_db.status(db_dsn, sources=[src], include_bundled=False)] == [
        "applied",
        "failed",
    ]
    assert await fetchval(db_dsn, "SELECT count(*) FROM schema_migrations") == 1


async def test_many_concurrent_migrate_calls_apply_each_migration_once(db_dsn: str) -> None:
    results = await asyncio.gather(*(sam_db.migrate(db_dsn) for _ in range(6)))
    versions = sorted(m.version for r in results for m in r)
    assert versions == BUNDLED
    assert await fetchval(db_dsn, "SELECT count(*) FROM schema_migrations") == 5


async def test_migrate_inside_a_callers_transaction_does_not_abort_it(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        async with conn.transaction():
            assert len(await sam_db.migrate(conn)) == 5
            assert await conn.fetchval("SELECT count(*) FROM workflows") == 0
        assert [r.state for r in await sam_db.status(conn)] == ["applied"] * 5
    finally:
        await conn.close()


async def test_foreign_schema_migrations_table_is_a_clear_error(db_dsn: str) -> None:
    from sam_db.errors import MigrationError

    conn = await asyncpg.connect(db_dsn)
    try:
        await conn.execute("CREATE TABLE schema_migrations (version varchar PRIMARY KEY)")
    finally:
        await conn.close()
    with pytest.raises(MigrationError, match="not sam_db's tracking table"):
        await sam_db.status(db_dsn)
