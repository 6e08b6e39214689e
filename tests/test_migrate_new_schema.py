"""migrate_new_schema: every migration into a brand-new schema in one transaction (the plugin's
fresh schemas), with the same result as migrate() and the same errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import sam_db
from sam_db._api import migrate_new_schema
from sam_db.errors import ConfigurationError, MigrationFailedError
from tests.helpers import execute, snapshot, table_exists, write_migrations


async def test_it_builds_the_same_schema_and_tracking_rows_as_migrate(db_dsn: str) -> None:
    applied = await migrate_new_schema(db_dsn, schema="s")
    assert [m.version for m in applied] == ["001", "002", "003", "004", "005"]
    one_tx = (await snapshot(db_dsn, "s"), await sam_db.status(db_dsn, schema="s"))
    await execute(db_dsn, "DROP SCHEMA s CASCADE")
    await sam_db.migrate(db_dsn, schema="s")
    step_by_step = (await snapshot(db_dsn, "s"), await sam_db.status(db_dsn, schema="s"))
    assert one_tx[0] == step_by_step[0]
    assert [(r.version, r.state, r.checksum) for r in one_tx[1]] == [
        (r.version, r.state, r.checksum) for r in step_by_step[1]
    ]


async def test_it_refuses_a_schema_that_exists(db_dsn: str) -> None:
    await execute(db_dsn, "CREATE SCHEMA taken")
    with pytest.raises(ConfigurationError, match="exists already"):
        await migrate_new_schema(db_dsn, schema="taken")


async def test_a_failing_file_raises_the_usual_error_naming_it(db_dsn: str, tmp_path: Path) -> None:
    src = write_migrations(
        tmp_path,
        {
            "001_ok.sql": "CREATE TABLE ok (id int);",
            "002_bad.sql": "CREATE TABLE half (id int);\nSELECT * FROM nope;\n",
        },
    )
    with pytest.raises(MigrationFailedError) as info:
        await migrate_new_schema(db_dsn, schema="s", sources=[src], include_bundled=False)
    assert info.value.file.endswith("002_bad.sql")
    assert info.value.line == 2
    assert not await table_exists(db_dsn, "s.half")


async def test_no_transaction_files_take_the_step_by_step_path(db_dsn: str, tmp_path: Path) -> None:
    src = write_migrations(
        tmp_path,
        {
            "001_t.sql": "CREATE TABLE t (id int);",
            "002_i.sql": "-- sam_db: no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n",
        },
    )
    applied = await migrate_new_schema(db_dsn, schema="s", sources=[src], include_bundled=False)
    assert [m.version for m in applied] == ["001", "002"]
    assert await table_exists(db_dsn, "s.t")
