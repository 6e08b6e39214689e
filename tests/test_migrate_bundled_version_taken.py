"""A service that numbered its own migration 005 under sam_db 0.1 (the number sam_db 0.2 bundles
as 005_memory_text_search) follows the error's instructions and migrates on."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

import sam_db
from sam_db._checksum import checksum
from sam_db.errors import DuplicateMigrationError

MINE = "CREATE TABLE mine (id int PRIMARY KEY);"


async def test_renumbering_a_migration_that_took_a_bundled_version_migrates_on(
    db_dsn: str, tmp_path: Path
) -> None:
    await sam_db.migrate(db_dsn, target="004")
    conn = await asyncpg.connect(db_dsn)
    try:  # what sam_db 0.1 left: the service's 005 applied and recorded
        await conn.execute(MINE)
        await conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum, checksum_algorithm, "
            "execution_ms) VALUES ('005', 'mine', $1, 'sha256', 1)",
            checksum(MINE),
        )
        folder = tmp_path / "migrations"
        folder.mkdir()
        (folder / "005_mine.sql").write_text(MINE)
        with pytest.raises(DuplicateMigrationError, match=r"1005_mine\.sql"):
            await sam_db.migrate(db_dsn, sources=[folder])
        # The instructions: rename the file, record the new number.
        (folder / "005_mine.sql").rename(folder / "1005_mine.sql")
        await conn.execute(
            "UPDATE schema_migrations SET version = '1005' WHERE version = '005' AND name = 'mine'"
        )
        applied = await sam_db.migrate(db_dsn, sources=[folder])
        assert [m.version for m in applied] == ["005"]
        states = {s.version: s.state for s in await sam_db.status(db_dsn, sources=[folder])}
        assert states == dict.fromkeys(["001", "002", "003", "004", "005", "1005"], "applied")
    finally:
        await conn.close()
