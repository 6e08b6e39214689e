"""``sam-db rollback`` says what it will undo and asks before it drops tables that hold rows.

Through real processes: stdin is a pipe (a script, CI), or a pseudo-terminal (a person).
"""

from __future__ import annotations

import asyncio
import os
import pty
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import sam_db
from sam_db._sources import discover
from tests.helpers import execute, fetchval, table_exists


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SAM_DB_TEST_DSN")}


def _sam_db(*argv: str, cwd: Path | None = None, answer: str | None = None) -> tuple[int, str, str]:
    """Run ``sam-db``; with ``answer``, on a terminal where that is typed."""
    command = [sys.executable, "-m", "sam_db", *argv]
    if answer is None:
        proc = subprocess.run(
            command,
            cwd=cwd,
            env=_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
        )
        return proc.returncode, proc.stdout, proc.stderr
    master, slave = pty.openpty()
    try:
        popen = subprocess.Popen(
            command,
            cwd=cwd,
            env=_env(),
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.close(slave)
        os.write(master, answer.encode() + b"\n")
        out, err = popen.communicate(timeout=180)
    finally:
        os.close(master)
    return popen.returncode, out, err


@pytest.fixture
def at_004(db_dsn: str) -> str:
    """A fresh database migrated up to 004, whose rollback drops the memory tables."""
    code, _, err = _sam_db("migrate", "--dsn", db_dsn, "--target", "004")
    assert code == 0, err
    return db_dsn


def _bundled() -> list[str]:
    return [m.version for m in discover()]


def _remember_something(dsn: str) -> None:
    asyncio.run(execute(dsn, "INSERT INTO memory_collections (name) VALUES ('notes')"))


def _applied(dsn: str) -> int:
    return int(asyncio.run(fetchval(dsn, "SELECT count(*) FROM schema_migrations")))


def test_rollback_prints_what_it_will_undo_and_the_tables_it_drops(at_004: str) -> None:
    code, out, err = _sam_db("rollback", "--dsn", at_004)
    assert code == 0, err
    plan, _, done = out.partition("rolled back")
    assert "004_memory_system.sql" in plan and "004_memory_system.rollback.sql" in plan
    assert "drops table public.memory_entries (empty)" in plan
    assert "drops table public.memory_collections (empty)" in plan
    assert "003_" not in plan
    assert done.startswith(" 004_memory_system.sql")


def test_rollback_refuses_to_drop_rows_without_yes_when_no_one_can_be_asked(
    at_004: str,
) -> None:
    _remember_something(at_004)
    code, out, err = _sam_db("rollback", "--dsn", at_004)
    assert code == 1
    assert "drops table public.memory_collections (1 row)" in out
    assert "public.memory_collections (1 row)" in err and "--yes" in err
    assert "Nothing was rolled back" in err
    assert asyncio.run(table_exists(at_004, "memory_collections"))
    assert _applied(at_004) == 4  # nothing undone


def test_rollback_counts_the_rows_of_the_schema_it_rolls_back(db_dsn: str) -> None:
    assert _sam_db("migrate", "--dsn", db_dsn, "--schema", "svc", "--target", "004")[0] == 0
    # The same tables, empty, in public:
    assert _sam_db("migrate", "--dsn", db_dsn, "--target", "004")[0] == 0
    asyncio.run(execute(db_dsn, "INSERT INTO svc.memory_collections (name) VALUES ('n')"))
    code, out, err = _sam_db("rollback", "--dsn", db_dsn, "--schema", "svc")
    assert code == 1 and "drops table svc.memory_collections (1 row)" in out
    assert "--yes" in err
    code, out, _ = _sam_db("rollback", "--dsn", db_dsn)
    assert code == 0 and "drops table public.memory_collections (empty)" in out


def test_rollback_with_yes_drops_tables_that_hold_rows(at_004: str) -> None:
    _remember_something(at_004)
    code, out, err = _sam_db("rollback", "--dsn", at_004, "--yes")
    assert code == 0, err
    assert "rolled back 004_memory_system.sql" in out
    assert not asyncio.run(table_exists(at_004, "memory_collections"))


def test_rollback_asks_on_a_terminal_and_stops_unless_told_yes(at_004: str) -> None:
    _remember_something(at_004)
    code, out, err = _sam_db("rollback", "--dsn", at_004, answer="no")
    assert code == 1
    assert "Type 'yes' to go on" in err and "nothing was rolled back" in err
    assert "rolled back 004" not in out
    assert _applied(at_004) == 4  # nothing undone


def test_rollback_asks_on_a_terminal_and_goes_on_when_told_yes(at_004: str) -> None:
    _remember_something(at_004)
    code, out, err = _sam_db("rollback", "--dsn", at_004, answer="yes")
    assert code == 0, err
    assert "Type 'yes' to go on" in err and "rolled back 004_memory_system.sql" in out
    assert _applied(at_004) == 3


def test_rollback_refusal_names_a_migration_with_no_rollback_file_first(
    migrated_dsn: str, tmp_path: Path
) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "900_x.sql").write_text("CREATE TABLE x (id int);")
    assert _sam_db("migrate", "--dsn", migrated_dsn, "--source", str(tmp_path / "m"))[0] == 0
    code, out, err = _sam_db("rollback", "--dsn", migrated_dsn, "--source", str(tmp_path / "m"))
    assert code == 1 and "has no 900_x.rollback.sql" in err and out == ""


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A folder outside pytest's (mode 0700) temporary root, which the embedded server's system
    user must be able to traverse when tests run as root."""
    path = Path(tempfile.mkdtemp(prefix="sam_db_rollback_"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_rollback_of_the_embedded_default_database_does_not_ask(workdir: Path) -> None:
    assert _sam_db("migrate", cwd=workdir)[0] == 0
    assert _sam_db("seed", cwd=workdir)[0] == 0  # rows in 001's tables
    code, out, err = _sam_db("rollback", "--target", "0", cwd=workdir)
    assert code == 0, err
    assert "drops table public.workflows (3 rows)" in out
    assert out.count("rolled back") == len(_bundled())


async def test_the_rollback_coroutine_never_asks(at_004: str) -> None:
    await execute(at_004, "INSERT INTO memory_collections (name) VALUES ('notes')")
    done = await sam_db.rollback(at_004)
    assert [m.version for m in done] == ["004"]  # and it did drop a table holding a row


def test_version_prints_the_installed_version() -> None:
    code, out, _ = _sam_db("--version")
    assert code == 0 and out.strip() == f"sam-db {sam_db.__version__}"
