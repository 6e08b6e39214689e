"""A server without pgvector: 004 fails with a clear, typed error and 001-003 stay applied.

Runs against a private PostgreSQL 15 cluster (Debian's ``postgresql-15``, which has no pgvector
package) created in a temporary directory and listening on a unix socket only.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

import sam_db
from sam_db.errors import ExtensionMissingError
from tests.helpers import execute

PG_BIN = Path("/usr/lib/postgresql/15/bin")
INITDB = PG_BIN / "initdb"

pytestmark = pytest.mark.skipif(
    not os.access(INITDB, os.X_OK),
    reason=f"{INITDB} is missing: install PostgreSQL 15 without pgvector "
    "(Debian/Ubuntu: apt-get install -y postgresql-15)",
)


def _run_as() -> pwd.struct_passwd | None:
    """initdb and postgres refuse to run as root: pick an unprivileged user then."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "embedded_postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.skip("running as root and no unprivileged user (postgres, embedded_postgres, nobody)")


def _pg(runner: pwd.struct_passwd | None, *args: str) -> None:
    result = subprocess.run(
        args,
        capture_output=True,
        text=True,
        user=runner.pw_uid if runner else None,
        group=runner.pw_gid if runner else None,
        extra_groups=[] if runner else None,
        timeout=120,
    )
    if result.returncode != 0:
        output = result.stdout + result.stderr
        pytest.fail(f"{' '.join(args)} failed ({result.returncode}):\n{output}")


async def _fetch_column(dsn: str, sql: str) -> list[object]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r[0] for r in await conn.fetch(sql)]
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def pg15_socket_dir() -> Iterator[Path]:
    """A private PostgreSQL 15 cluster (no pgvector) on a unix socket in a temporary directory."""
    runner = _run_as()
    root = Path(tempfile.mkdtemp(prefix="sam_db_pg15_"))
    data = root / "data"
    if runner is not None:
        os.chown(root, runner.pw_uid, runner.pw_gid)
    _pg(runner, str(INITDB), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "-N")
    _pg(
        runner,
        str(PG_BIN / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(root / "server.log"),
        "-w",
        "-o",
        f"-k {root} -c listen_addresses='' -c fsync=off",
        "start",
    )
    try:
        yield root
    finally:
        _pg(runner, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg15_dsn(pg15_socket_dir: Path) -> Iterator[str]:
    """A fresh database on the pgvector-less server."""
    admin = f"postgresql://postgres@/postgres?host={pg15_socket_dir}"
    name = f"t_{uuid.uuid4().hex[:16]}"
    asyncio.run(execute(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@/{name}?host={pg15_socket_dir}"
    finally:
        asyncio.run(execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def failed_migrate(pg15_dsn: str) -> tuple[str, ExtensionMissingError]:
    """``migrate`` run once on the pgvector-less server: its DSN and the error it raised."""
    with pytest.raises(ExtensionMissingError) as info:
        asyncio.run(sam_db.migrate(pg15_dsn))
    return pg15_dsn, info.value


def test_server_really_has_no_pgvector(pg15_dsn: str) -> None:
    available = asyncio.run(
        _fetch_column(pg15_dsn, "SELECT name FROM pg_available_extensions WHERE name = 'vector'")
    )
    assert available == []


def test_migrate_without_pgvector_raises_extension_missing_error(
    failed_migrate: tuple[str, ExtensionMissingError],
) -> None:
    _, error = failed_migrate
    assert error.extension == "vector"
    message = str(error)
    assert "004_memory_system.sql" in message
    assert "pgvector" in message
    assert "install" in message.lower()


def test_migrations_before_004_stay_applied_without_pgvector(
    failed_migrate: tuple[str, ExtensionMissingError],
) -> None:
    dsn, _ = failed_migrate
    rows = asyncio.run(sam_db.status(dsn))
    assert [(r.version, r.state) for r in rows] == [
        ("001", "applied"),
        ("002", "applied"),
        ("003", "applied"),
        ("004", "pending"),
        ("005", "pending"),
    ]


def test_nothing_of_004_is_left_behind_without_pgvector(
    failed_migrate: tuple[str, ExtensionMissingError],
) -> None:
    dsn, _ = failed_migrate
    leftovers = asyncio.run(
        _fetch_column(
            dsn,
            "SELECT relname FROM pg_class WHERE relname LIKE 'memory%' "
            "UNION ALL SELECT extname FROM pg_extension WHERE extname = 'vector'",
        )
    )
    assert leftovers == []
    assert asyncio.run(_fetch_column(dsn, "SELECT to_regclass('workflows')::text")) == ["workflows"]


def test_cli_migrate_without_pgvector_exits_1_with_a_short_error(pg15_dsn: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "sam_db", "migrate", "--dsn", pg15_dsn],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")
    assert "pgvector" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3
