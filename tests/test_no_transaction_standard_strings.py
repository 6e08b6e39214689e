"""No-transaction files are split with the session's standard_conforming_strings, as the server reads them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sam_db
from sam_db._ident import quote_ident
from tests.helpers import execute, fetchval, write_migrations

FILE = "-- sam_db: no-transaction\nCREATE TABLE t (v text);\nINSERT INTO t VALUES ('a\\';b');\n"


def test_database_default_standard_strings_off_is_followed(db_dsn: str, tmp_path: Path) -> None:
    database = asyncio.run(fetchval(db_dsn, "SELECT current_database()"))
    asyncio.run(
        execute(
            db_dsn, f"ALTER DATABASE {quote_ident(database)} SET standard_conforming_strings = off"
        )
    )
    folder = write_migrations(tmp_path / "m", {"001_quotes.sql": FILE})
    asyncio.run(sam_db.migrate(db_dsn, sources=[folder], include_bundled=False))
    assert asyncio.run(fetchval(db_dsn, "SELECT v FROM t")) == "a';b"


def test_standard_strings_turned_off_in_the_file_is_followed(db_dsn: str, tmp_path: Path) -> None:
    body = FILE.replace("CREATE TABLE", "SET standard_conforming_strings = off;\nCREATE TABLE")
    folder = write_migrations(
        tmp_path / "m", {"001_quotes.sql": body + "RESET standard_conforming_strings;\n"}
    )
    asyncio.run(sam_db.migrate(db_dsn, sources=[folder], include_bundled=False))
    assert asyncio.run(fetchval(db_dsn, "SELECT v FROM t")) == "a';b"
