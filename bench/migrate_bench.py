"""Benchmark: sam_db.migrate against a raw-asyncpg baseline measured in the same run.

Prints medians for (1) a fresh full migrate of the bundled files into a new database, (2) a no-op
migrate when up to date (connect + one query), and (3) `sam-db status` as a process on an up-to-date
database against a bare `python` process that imports asyncpg, connects and runs one query.

    python bench/migrate_bench.py [--rounds 15] [--dsn postgresql://...]

Without --dsn/SAM_DB_TEST_DSN it starts an embedded PostgreSQL (default durability settings).
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

import sam_db
from sam_db._embedded import embedded_dsn, start_embedded
from sam_db._ident import quote_ident
from sam_db._sources import discover
from sam_db.testing._server import with_database

RAW_TRACKING = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, name text NOT NULL, "
    "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), execution_ms float8)"
)


async def raw_fresh(dsn: str) -> None:
    """What a minimal hand-written runner does: one transaction per file plus its tracking row."""
    files = discover()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(RAW_TRACKING)
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for f in files:
            if f.version in done:
                continue
            async with conn.transaction():
                started = time.perf_counter()
                await conn.execute(f.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum, execution_ms) VALUES ($1, $2, $3, $4)",
                    f.version,
                    f.name,
                    f.checksum,
                    (time.perf_counter() - started) * 1000,
                )
    finally:
        await conn.close()


async def raw_noop(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.fetch("SELECT version, checksum FROM schema_migrations")
    finally:
        await conn.close()


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await fn()
    return (time.perf_counter() - started) * 1000


async def fresh_round(admin: str, runner: Callable[[str], Awaitable[object]]) -> float:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f"CREATE DATABASE {quote_ident(name)}")
        # The vector extension is created by 004; keep that cost in both runners.
        ms = await timed(lambda: runner(with_database(admin, name)))
        await conn.execute(f"DROP DATABASE {quote_ident(name)} WITH (FORCE)")
    finally:
        await conn.close()
    return ms


def process_ms(cmd: list[str], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def main_async(admin: str, rounds: int) -> list[tuple[str, float, float]]:
    rows = []
    # Interleave the runners so drift in machine load hits both alike.
    ours, raw = [], []
    for _ in range(rounds):
        raw.append(await fresh_round(admin, raw_fresh))
        ours.append(await fresh_round(admin, sam_db.migrate))
    fresh = f"fresh migrate ({len(discover())} files)"
    rows.append((fresh, statistics.median(raw), statistics.median(ours)))

    name = f"bench_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f"CREATE DATABASE {quote_ident(name)}")
    await conn.close()
    dsn = with_database(admin, name)
    await sam_db.migrate(dsn)
    ours, raw = [], []
    for _ in range(rounds * 3):
        raw.append(await timed(lambda: raw_noop(dsn)))
        ours.append(await timed(lambda: sam_db.migrate(dsn)))
    rows.append(("no-op migrate (up to date)", statistics.median(raw), statistics.median(ours)))

    script = (
        "import asyncio, sys, asyncpg\n"
        "async def m():\n"
        "    c = await asyncpg.connect(sys.argv[1])\n"
        "    await c.fetch('SELECT version, checksum FROM schema_migrations')\n"
        "    await c.close()\n"
        "asyncio.run(m())\n"
    )
    # Installed wheels ship compiled bytecode; an editable checkout under PYTHONDONTWRITEBYTECODE
    # would recompile every module on each run, so compile once as an install would.
    compileall.compile_dir(str(Path(sam_db.__file__).parent), quiet=1)
    cli = shutil.which("sam-db") or ""
    base_cmd = [sys.executable, "-c", script, dsn]
    ours_cmd = (
        [cli, "status", "--dsn", dsn]
        if cli
        else [sys.executable, "-m", "sam_db", "status", "--dsn", dsn]
    )
    process_ms(base_cmd, 2)  # warm the OS caches
    base, mine = [], []
    for _ in range(rounds):
        base.append(process_ms(base_cmd, 1))
        mine.append(process_ms(ours_cmd, 1))
    rows.append(("`sam-db status` process", statistics.median(base), statistics.median(mine)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--dsn", default=os.environ.get("SAM_DB_TEST_DSN"))
    args = parser.parse_args()
    server = None
    admin = args.dsn
    if not admin:
        tmp = Path(tempfile.mkdtemp(prefix="sam_db_bench_"))
        server = start_embedded(tmp / "data", cleanup="delete")
        admin = embedded_dsn(server)
    try:
        rows = asyncio.run(main_async(admin, args.rounds))
    finally:
        if server is not None:
            server.cleanup()
    print(f"\nmigrate benchmark: medians of {args.rounds} rounds (no-op: {args.rounds * 3})\n")
    print(f"{'case':<30} {'raw asyncpg ms':>15} {'sam_db ms':>10} {'ratio':>7}")
    for case, raw_ms, ours_ms in rows:
        print(f"{case:<30} {raw_ms:>15.1f} {ours_ms:>10.1f} {ours_ms / raw_ms:>6.2f}x")
    print("\ngoals: fresh <= 1.2x, no-op <= 1.5x, CLI status process <= 1.3x")


if __name__ == "__main__":
    main()
