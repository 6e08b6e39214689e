"""Migrating through a real PgBouncer in transaction-pooling mode.

PgBouncer (Debian's 1.18: no prepared statements in transaction mode) listens on 127.0.0.1 and
forwards every database name to the test server with a tiny pool, so server connections are shared
between clients between transactions: the migration lock, the tracking table and every statement
must work when consecutive transactions of one client land on different server connections.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

import sam_db
from tests.helpers import fetchval, table_exists

BUNDLED = ["001", "002", "003", "004", "005"]
POOL_SIZE = 2
CONCURRENT_TASKS = 8
CONCURRENT_PROCESSES = 4

_PGBOUNCER = shutil.which("pgbouncer") or next(
    (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None
)

pytestmark = pytest.mark.skipif(
    _PGBOUNCER is None,
    reason="the `pgbouncer` binary is not installed (Debian/Ubuntu: apt-get install -y pgbouncer)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _server_of(dsn: str) -> tuple[str, str, str, str | None]:
    """(host or socket directory, port, user, password) of a URL DSN."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "localhost"])[0]
    port = query.get("port", [str(parts.port or 5432)])[0]
    return host, port, parts.username or "postgres", parts.password or None


def _run_as() -> pwd.struct_passwd | None:
    """PgBouncer refuses to run as root: pick an unprivileged user then, else run as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("embedded_postgres", "postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.skip("running as root and no unprivileged user (embedded_postgres, postgres, nobody)")


class Bouncer:
    """A running PgBouncer forwarding ``*`` to the test server; ``dsn(db)`` goes through it."""

    def __init__(self, port: int, user: str) -> None:
        self.port = port
        self.user = user

    def dsn(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def via(self, direct_dsn: str) -> str:
        """The PgBouncer DSN of the database a direct DSN names."""
        return self.dsn(urlsplit(direct_dsn).path.lstrip("/"))


@pytest.fixture(scope="module")
def bouncer(pg_admin_dsn: str) -> Iterator[Bouncer]:
    host, port, user, password = _server_of(pg_admin_dsn)
    listen = _free_port()
    runner = _run_as()
    workdir = Path(tempfile.mkdtemp(prefix="sam_db_pgbouncer_"))
    backend = f"host={host} port={port} user={user}" + (f" password={password}" if password else "")
    (workdir / "userlist.txt").write_text(f'"{user}" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        f"""[databases]
* = {backend}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {workdir}/userlist.txt
pool_mode = transaction
default_pool_size = {POOL_SIZE}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 200
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = {workdir}/pgbouncer.log
pidfile = {workdir}/pgbouncer.pid
"""
    )
    if runner is not None:
        for path in (workdir, *workdir.iterdir()):
            os.chown(path, runner.pw_uid, runner.pw_gid)
    proc = subprocess.Popen(
        # -q: log to the logfile only (a pipe nobody drains could fill up and stall PgBouncer).
        [str(_PGBOUNCER), "-q", str(workdir / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        user=runner.pw_uid if runner else None,
        group=runner.pw_gid if runner else None,
        extra_groups=[] if runner else None,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                log = (
                    (workdir / "pgbouncer.log").read_text(errors="replace")
                    if (workdir / "pgbouncer.log").exists()
                    else ""
                )
                pytest.fail(f"pgbouncer exited with {proc.returncode}:\n{log}")
            try:
                socket.create_connection(("127.0.0.1", listen), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("pgbouncer did not start listening within 10 s")
                time.sleep(0.05)
        yield Bouncer(listen, user)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def bounced_dsn(bouncer: Bouncer, db_dsn: str) -> str:
    """A fresh empty database, reached through PgBouncer."""
    return bouncer.via(db_dsn)


async def test_pgbouncer_runs_in_transaction_pooling_mode(bouncer: Bouncer, db_dsn: str) -> None:
    # Guards the other tests' premise: a session-level SET stays on the server connection when the
    # client's transaction ends, where another client picks it up (in session mode it could not).
    bounced = bouncer.via(db_dsn)
    first = await asyncpg.connect(bounced, statement_cache_size=0)
    others = [await asyncpg.connect(bounced, statement_cache_size=0) for _ in range(POOL_SIZE)]
    try:
        await first.execute("SET sam_db.probe = 'leaked'")
        seen = [await c.fetchval("SELECT current_setting('sam_db.probe', true)") for c in others]
        assert "leaked" in seen
    finally:
        for c in (first, *others):
            await c.close()


async def test_migrate_through_pgbouncer_applies_every_migration(
    bounced_dsn: str, db_dsn: str
) -> None:
    applied = await sam_db.migrate(bounced_dsn)
    assert [m.version for m in applied] == BUNDLED
    assert await fetchval(db_dsn, "SELECT count(*) FROM schema_migrations") == len(BUNDLED)
    for table in ("workflows", "sessions", "session_events", "session_metrics", "memory_entries"):
        assert await table_exists(db_dsn, table)


async def test_concurrent_migrate_tasks_through_pgbouncer_apply_each_migration_once(
    bounced_dsn: str, db_dsn: str
) -> None:
    results = await asyncio.gather(*(sam_db.migrate(bounced_dsn) for _ in range(CONCURRENT_TASKS)))
    applied = Counter(m.version for result in results for m in result)
    assert applied == Counter(BUNDLED)
    assert await fetchval(db_dsn, "SELECT count(*) FROM schema_migrations") == len(BUNDLED)


_MIGRATE_PROCESS = """
import asyncio, json, sys
import sam_db
applied = asyncio.run(sam_db.migrate(sys.argv[1]))
print(json.dumps([m.version for m in applied]))
"""


def test_concurrent_migrate_processes_through_pgbouncer_apply_each_migration_once(
    bounced_dsn: str, db_dsn: str
) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _MIGRATE_PROCESS, bounced_dsn],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(CONCURRENT_PROCESSES)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    applied = Counter(v for out, _ in outputs for v in json.loads(out.strip().splitlines()[-1]))
    assert applied == Counter(BUNDLED)
    assert asyncio.run(fetchval(db_dsn, "SELECT count(*) FROM schema_migrations")) == len(BUNDLED)


async def test_status_through_pgbouncer_shows_pending_then_applied(bounced_dsn: str) -> None:
    before = await sam_db.status(bounced_dsn)
    assert [(r.version, r.state) for r in before] == [(v, "pending") for v in BUNDLED]
    await sam_db.migrate(bounced_dsn)
    after = await sam_db.status(bounced_dsn)
    assert [(r.version, r.state) for r in after] == [(v, "applied") for v in BUNDLED]


async def test_noop_migrate_through_pgbouncer_returns_nothing(bounced_dsn: str) -> None:
    await sam_db.migrate(bounced_dsn)
    assert await sam_db.migrate(bounced_dsn) == []


async def test_rollback_through_pgbouncer_undoes_the_newest_migration(
    bounced_dsn: str, db_dsn: str
) -> None:
    await sam_db.migrate(bounced_dsn)
    undone = await sam_db.rollback(bounced_dsn)
    assert [m.version for m in undone] == ["005"]
    assert await table_exists(db_dsn, "memory_entries")
    rows = await sam_db.status(bounced_dsn)
    assert [r.state for r in rows] == ["applied", "applied", "applied", "applied", "pending"]


async def test_rollback_of_everything_through_pgbouncer_then_migrate_again(
    bounced_dsn: str, db_dsn: str
) -> None:
    await sam_db.migrate(bounced_dsn)
    undone = await sam_db.rollback(bounced_dsn, target="0")
    assert [m.version for m in undone] == list(reversed(BUNDLED))
    assert not await table_exists(db_dsn, "workflows")
    again = await sam_db.migrate(bounced_dsn)
    assert [m.version for m in again] == BUNDLED
