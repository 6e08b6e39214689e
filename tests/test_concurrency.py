"""Replicas starting together: many OS processes migrating one fresh database at once."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap

import pytest

import sam_db
from tests.helpers import fetchval

PROCESSES = 10

_CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    import sam_db

    async def main() -> None:
        applied = await sam_db.migrate(sys.argv[1], lock_wait=120)
        print(json.dumps([m.version for m in applied]))

    asyncio.run(main())
    """
)


@pytest.mark.slow
def test_many_processes_migrating_at_once_apply_each_migration_exactly_once(
    db_dsn: str,
) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, db_dsn],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    applied = [v for out, _ in outputs for v in json.loads(out)]
    assert sorted(applied) == ["001", "002", "003", "004", "005"]
    assert asyncio.run(fetchval(db_dsn, "SELECT count(*) FROM schema_migrations")) == 5
    assert [r.state for r in asyncio.run(sam_db.status(db_dsn))] == ["applied"] * 5


def test_killed_migrator_leaves_no_stale_lock(db_dsn: str) -> None:
    # A process that holds the migration lock and is killed: its transaction dies with it.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import asyncio, sys, asyncpg
                from sam_db._lock import lock_key
                async def main():
                    c = await asyncpg.connect(sys.argv[1])
                    await c.execute("BEGIN")
                    await c.execute("SELECT pg_advisory_xact_lock(%d, %d)" % lock_key("public"))
                    print("locked", flush=True)
                    await asyncio.sleep(600)
                asyncio.run(main())
                """
            ),
            db_dsn,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        holder.kill()
        holder.wait(timeout=10)
        assert len(asyncio.run(sam_db.migrate(db_dsn, lock_wait=30))) == 5
    finally:
        holder.kill()
