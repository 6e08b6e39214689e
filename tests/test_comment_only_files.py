"""A migration or rollback file with no statement in it (only comments) is a valid no-op."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import sam_db
from tests.helpers import write_migrations


@pytest.mark.parametrize("body", ["-- nothing to do here\n", "/* nothing */ ;\n", ""])
def test_comment_only_migration_and_rollback_apply_and_roll_back(
    body: str, db_dsn: str, tmp_path: Path
) -> None:
    folder = write_migrations(
        tmp_path / "m",
        {
            "001_make.sql": "CREATE TABLE made (id int);\n",
            "001_make.rollback.sql": "DROP TABLE made;\n",
            "002_noop.sql": body,
            "002_noop.rollback.sql": body,
        },
    )

    async def scenario() -> None:
        kw = {"sources": [folder], "include_bundled": False}
        assert len(await sam_db.migrate(db_dsn, **kw)) == 2  # type: ignore[arg-type]
        await sam_db.rollback(db_dsn, target="0", **kw)  # type: ignore[arg-type]
        rows = await sam_db.status(db_dsn, **kw)  # type: ignore[arg-type]
        assert [r.state for r in rows] == ["pending", "pending"]

    asyncio.run(scenario())
