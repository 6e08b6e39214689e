"""The CLI's embedded default on its first run: concurrent first runs, interrupted ones, odd folders.

These start real ``sam-db`` processes in a temporary directory with neither ``--dsn`` nor
``DATABASE_URL``, so each one uses (and the first one creates) ``./.sam_db/pgdata``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from sam_db._embedded import ensure_database as _ensure_database
from sam_db.cli import EXIT_ERROR
from sam_db.testing._server import with_database
from tests.helpers import execute, fetchval

PGDATA = Path(".sam_db") / "pgdata"


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A fresh folder to run ``sam-db`` in, outside pytest's ``tmp_path``.

    As root the server runs as the ``embedded_postgres`` system user, which must traverse every
    parent folder; every pytest session (any other test run on the machine) resets its own
    temporary root to mode 0700, cutting that user off mid-test.
    """
    path = Path(tempfile.mkdtemp(prefix="sam_db_cli_"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SAM_DB_TEST_DSN")}


def _sam_db(cwd: Path, *argv: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sam_db", *argv],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=180)
    return proc.returncode, out, err


def _no_server_left_in(folder: Path) -> None:
    """Every sam-db process stops the server it started when it exits; none may linger."""
    deadline = time.monotonic() + 10
    while True:
        left = [
            p
            for p in psutil.process_iter(["name", "cmdline"])
            if p.info["name"] == "postgres" and str(folder) in " ".join(p.info["cmdline"] or ())
        ]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not left


@pytest.mark.slow
def test_concurrent_first_runs_all_succeed(workdir: Path) -> None:
    procs = [_sam_db(workdir, "migrate") for _ in range(4)]
    results = [_finish(p) for p in procs]
    for code, _out, err in results:
        assert code == 0, err
        assert "Traceback" not in err
    applied = [out for _code, out, _err in results if "applied 004_memory_system.sql" in out]
    assert len(applied) == 1  # the others found every migration applied (or waited for it)
    status = _finish(_sam_db(workdir, "status", "--check"))
    assert status[0] == 0 and "5 applied" in status[1]
    _no_server_left_in(workdir)


async def _ensure_all(admin_dsn: str, name: str, n: int) -> None:
    await asyncio.gather(*(_ensure_database(admin_dsn, name) for _ in range(n)))


def test_ensure_database_tolerates_concurrent_creators(pg_admin_dsn: str) -> None:
    name = f"t_{uuid.uuid4().hex[:16]}"
    try:
        asyncio.run(_ensure_all(pg_admin_dsn, name, 6))
        assert asyncio.run(fetchval(with_database(pg_admin_dsn, name), "SELECT current_database()"))
    finally:
        asyncio.run(execute(pg_admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _wait_for_initdb(proc: subprocess.Popen[str], pgdata: Path) -> psutil.Process:
    """The ``initdb`` that ``proc`` started, once it has begun to fill ``pgdata``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "sam-db finished before initdb was seen"
        for child in psutil.Process(proc.pid).children(recursive=True):
            try:
                if child.name() == "initdb" and (pgdata / "PG_VERSION").exists():
                    return child
            except psutil.Error:
                continue
        time.sleep(0.005)
    raise AssertionError("initdb never started")


@pytest.mark.slow
@pytest.mark.parametrize("kill", ["sam-db only", "sam-db and initdb"])
def test_a_first_run_killed_during_initdb_is_repaired_by_the_next_run(
    workdir: Path, kill: str
) -> None:
    first = _sam_db(workdir, "migrate", start_new_session=True)
    initdb = _wait_for_initdb(first, workdir / PGDATA)
    assert initdb.is_running()  # killed mid-initdb, not after
    if kill == "sam-db only":  # initdb goes on, orphaned, while the next run starts
        first.kill()
    else:  # the whole process group (as a terminal's kill would): a half-made directory stays
        os.killpg(first.pid, signal.SIGKILL)
        initdb.wait(10)
    first.communicate(timeout=10)
    assert (workdir / PGDATA).is_dir()

    code, out, err = _finish(_sam_db(workdir, "migrate"))
    assert code == 0, err
    assert "Traceback" not in err
    assert "applied 004_memory_system.sql" in out
    assert "half-made" in err  # it says what it found and did
    status = _finish(_sam_db(workdir, "status", "--check"))
    assert status[0] == 0 and "5 applied" in status[1], status
    _no_server_left_in(workdir)


def test_a_data_directory_holding_other_files_is_explained_not_touched(workdir: Path) -> None:
    pgdata = workdir / PGDATA
    pgdata.mkdir(parents=True)
    (pgdata / "notes.txt").write_text("mine")
    code, _out, err = _finish(_sam_db(workdir, "status"))
    assert code == EXIT_ERROR
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("error: ")
    assert str(pgdata.resolve()) in err and "not a PostgreSQL data directory" in err
    assert (pgdata / "notes.txt").read_text() == "mine"


def test_a_data_directory_whose_server_cannot_start_is_explained(workdir: Path) -> None:
    # Looks like a directory a server once ran on (so it may hold data: never deleted), but broken.
    pgdata = workdir / PGDATA
    pgdata.mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("18\n")
    (pgdata / "postmaster.opts").write_text("postgres\n")
    code, _out, err = _finish(_sam_db(workdir, "status"))
    assert code == EXIT_ERROR
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("error: ")
    assert "did not start" in err and str(pgdata.resolve()) in err
    assert (pgdata / "PG_VERSION").exists()


def test_a_data_directory_that_is_a_file_is_explained(workdir: Path) -> None:
    pgdata = workdir / PGDATA
    pgdata.parent.mkdir()
    pgdata.write_text("not a folder")
    code, _out, err = _finish(_sam_db(workdir, "status"))
    assert code == EXIT_ERROR
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("error: ") and str(pgdata.resolve()) in err
    assert pgdata.read_text() == "not a folder"
