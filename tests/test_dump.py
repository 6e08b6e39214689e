"""``sam-db dump``: a deterministic schema-only dump for review diffs, and ``dump --check``.

Through real processes and real pg_dump programs: the embedded wheel's (PostgreSQL 18, the test
server's version) and Debian's PostgreSQL 15 one (older than the server) where installed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sam_db._dump import choose_pg_dump, probe
from sam_db.errors import ConfigurationError
from tests.helpers import execute, fresh_database, write_migrations

OLD_PG_DUMP = "/usr/lib/postgresql/15/bin/pg_dump"
needs_old_pg_dump = pytest.mark.skipif(
    probe(OLD_PG_DUMP) is None, reason=f"no PostgreSQL 15 pg_dump at {OLD_PG_DUMP}"
)


def _sam_db(*argv: str, cwd: Path | None = None) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SAM_DB_TEST_DSN")}
    proc = subprocess.run(
        [sys.executable, "-m", "sam_db", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_dump_writes_the_schema_without_data_or_versions(migrated_dsn: str, tmp_path: Path) -> None:
    asyncio.run(execute(migrated_dsn, "INSERT INTO workflows (name) VALUES ('secret-row')"))
    out = tmp_path / "schema.sql"
    code, said, err = _sam_db("dump", "--dsn", migrated_dsn, "--out", str(out))
    assert code == 0, err
    assert f"wrote {out}" in said
    text = out.read_text()
    assert "CREATE TABLE public.memory_entries" in text and "CREATE TABLE public.workflows" in text
    assert "secret-row" not in text and "COPY " not in text
    assert "Dumped by" not in text and "Dumped from" not in text and "\\restrict" not in text


def test_dump_writes_schema_sql_in_the_current_folder_by_default(
    migrated_dsn: str, tmp_path: Path
) -> None:
    code, _, err = _sam_db("dump", "--dsn", migrated_dsn, cwd=tmp_path)
    assert code == 0, err
    assert "CREATE TABLE public.sessions" in (tmp_path / "schema.sql").read_text()


def test_dump_is_the_same_for_two_databases_with_the_same_migrations(
    migrated_dsn: str, pg_admin_dsn: str, tmp_path: Path
) -> None:
    with fresh_database(pg_admin_dsn) as other:
        assert _sam_db("migrate", "--dsn", other)[0] == 0
        first = _sam_db("dump", "--dsn", migrated_dsn, "--out", "-")
        second = _sam_db("dump", "--dsn", other, "--out", "-")
    assert first[0] == second[0] == 0
    assert first[1] == second[1] and "CREATE TABLE public.sessions" in first[1]


def test_dump_check_passes_when_the_file_matches(migrated_dsn: str, tmp_path: Path) -> None:
    out = tmp_path / "schema.sql"
    assert _sam_db("dump", "--dsn", migrated_dsn, "--out", str(out))[0] == 0
    code, said, _ = _sam_db("dump", "--dsn", migrated_dsn, "--out", str(out), "--check")
    assert code == 0 and "matches" in said


def test_dump_check_fails_and_shows_what_differs(migrated_dsn: str, tmp_path: Path) -> None:
    out = tmp_path / "schema.sql"
    assert _sam_db("dump", "--dsn", migrated_dsn, "--out", str(out))[0] == 0
    src = write_migrations(
        tmp_path / "m", {"900_note.sql": "ALTER TABLE sessions ADD COLUMN note text;"}
    )
    assert _sam_db("migrate", "--dsn", migrated_dsn, "--source", str(src))[0] == 0
    before = out.read_text()
    code, said, err = _sam_db("dump", "--dsn", migrated_dsn, "--out", str(out), "--check")
    assert code == 3
    assert "+    note text" in said and f"--- {out}" in said
    assert f"{out} differs from the database's schema" in err and "sam-db dump --out" in err
    assert out.read_text() == before  # --check never writes


def test_dump_check_fails_when_the_file_is_missing(migrated_dsn: str, tmp_path: Path) -> None:
    out = tmp_path / "schema.sql"
    code, _, err = _sam_db("dump", "--dsn", migrated_dsn, "--out", str(out), "--check")
    assert code == 3 and f"{out} does not exist" in err


def test_dump_of_one_schema(db_dsn: str, tmp_path: Path) -> None:
    assert _sam_db("migrate", "--dsn", db_dsn, "--schema", "svc")[0] == 0
    code, text, err = _sam_db("dump", "--dsn", db_dsn, "--schema", "svc", "--out", "-")
    assert code == 0, err
    assert "CREATE TABLE svc.sessions" in text and "CREATE TABLE public." not in text


@needs_old_pg_dump
def test_dump_refuses_a_pg_dump_older_than_the_server(migrated_dsn: str, tmp_path: Path) -> None:
    code, _, err = _sam_db(
        "dump", "--dsn", migrated_dsn, "--pg-dump", OLD_PG_DUMP, "--out", str(tmp_path / "s.sql")
    )
    assert code == 1 and "older than the server" in err and "pg_dump 15." in err
    assert not (tmp_path / "s.sql").exists()


@needs_old_pg_dump
def test_choosing_pg_dump_refuses_when_every_one_is_older_than_the_server() -> None:
    with pytest.raises(ConfigurationError, match=r"no pg_dump for PostgreSQL 18.*\(15\.\d+\)"):
        choose_pg_dump(18, [OLD_PG_DUMP])


@needs_old_pg_dump
def test_choosing_pg_dump_prefers_the_servers_major_version() -> None:
    newer = choose_pg_dump(18).path
    assert choose_pg_dump(15, [newer, OLD_PG_DUMP]).major == 15
    assert choose_pg_dump(14, [newer, OLD_PG_DUMP]).major == 15  # the oldest newer one


def test_dump_check_needs_a_file(migrated_dsn: str) -> None:
    code, _, err = _sam_db("dump", "--dsn", migrated_dsn, "--out", "-", "--check")
    assert code == 1 and "--out FILE" in err
