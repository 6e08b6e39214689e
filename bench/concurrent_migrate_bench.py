"""Benchmark: replicas starting together — N processes migrating one fresh database at once.

Each round creates a fresh database and starts the migrating processes, which import sam_db and
then wait; once all are ready they are released together and each runs ``sam_db.migrate(dsn)``.
The round's wall time runs from the release to the last process's return (interpreter start-up and
imports are excluded: they are the same with or without sam_db). One-process and N-process rounds
are interleaved so that drift in machine load hits both alike; medians are printed, with the ratio
N processes / 1 process, and a raw asyncpg runner (one process, one transaction per file) as a
reference. The floor case — one raw runner plus N - 1 processes that only connect and run one
query — is what N processes cost before any lock waiting: N connections and N interpreters'
asyncpg work on the same cores.

    python bench/concurrent_migrate_bench.py [--rounds 9] [--processes 10] [--dsn postgresql://...]

Without --dsn/SAM_DB_TEST_DSN it starts an embedded PostgreSQL (default durability settings).
``SAM_DB_BENCH_SRC`` (a folder holding a ``sam_db`` package) makes the children import that code
instead, to compare with another version of the engine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from sam_db._embedded import embedded_dsn, start_embedded
from sam_db._ident import quote_ident
from sam_db.testing._server import with_database

_CHILD = """
import asyncio, os, sys, time
if os.environ.get("SAM_DB_BENCH_SRC"):
    sys.path.insert(0, os.environ["SAM_DB_BENCH_SRC"])
import asyncpg, sam_db
from sam_db._sources import discover

RAW_TRACKING = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, name text NOT NULL, "
    "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), execution_ms float8)"
)

async def raw(dsn):
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
                    "INSERT INTO schema_migrations (version, name, checksum, execution_ms) "
                    "VALUES ($1, $2, $3, $4)",
                    f.version, f.name, f.checksum, (time.perf_counter() - started) * 1000,
                )
    finally:
        await conn.close()

async def ping(dsn):
    conn = await asyncpg.connect(dsn)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()

runners = {"raw": raw, "ping": ping, "sam_db": sam_db.migrate}  # resolves the lazy import now
runner = runners[sys.argv[2]]
discover()  # both runners read the files once before the release (OS cache, imports)
print("ready", flush=True)
sys.stdin.readline()
asyncio.run(runner(sys.argv[1]))
print(time.monotonic(), flush=True)
"""


def _spawn(dsn: str, kind: str, count: int) -> list[subprocess.Popen[str]]:
    """``count`` waiting children; kind ``floor`` is one raw runner and ``count - 1`` pings."""
    kinds = ["raw"] + ["ping"] * (count - 1) if kind == "floor" else [kind] * count
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, dsn, k],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in kinds
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return procs


def _release(procs: list[subprocess.Popen[str]]) -> float:
    """Release the waiting children together; ms from the release to the last one's return."""
    started = time.monotonic()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    ends = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        if p.returncode != 0:
            raise RuntimeError(f"a migrating process failed with exit code {p.returncode}")
        ends.append(float(out.strip().splitlines()[-1]))
    return (max(ends) - started) * 1000


async def _database(admin: str, action: str, name: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        if action == "create":
            await conn.execute(f"CREATE DATABASE {quote_ident(name)}")
        else:
            await conn.execute(f"DROP DATABASE {quote_ident(name)} WITH (FORCE)")
    finally:
        await conn.close()


def one_round(admin: str, kind: str, count: int) -> float:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_database(admin, "create", name))
    try:
        procs = _spawn(with_database(admin, name), kind, count)
        return _release(procs)
    finally:
        asyncio.run(_database(admin, "drop", name))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--processes", type=int, default=10)
    parser.add_argument("--dsn", default=os.environ.get("SAM_DB_TEST_DSN"))
    args = parser.parse_args()
    server = None
    admin = args.dsn
    if not admin:
        tmp = Path(tempfile.mkdtemp(prefix="sam_db_bench_"))
        server = start_embedded(tmp / "data", cleanup="delete")
        admin = embedded_dsn(server)
    n = args.processes
    cases = [
        ("raw asyncpg, 1 process", "raw", 1),
        ("sam_db, 1 process", "sam_db", 1),
        (f"sam_db, {n} processes", "sam_db", n),
        (f"floor: raw + {n - 1} pings", "floor", n),
    ]
    times: dict[str, list[float]] = {label: [] for label, _, _ in cases}
    try:
        one_round(admin, "sam_db", 1)  # warm the OS caches and the server
        for _ in range(args.rounds):
            for label, kind, count in cases:
                times[label].append(one_round(admin, kind, count))
    finally:
        if server is not None:
            server.cleanup()
    print(
        f"\nconcurrent migrate benchmark: fresh database, 4 bundled files, {args.rounds} rounds\n"
    )
    print(f"{'case':<28} {'median ms':>10} {'min':>8} {'max':>8}")
    for label, _, _ in cases:
        t = times[label]
        print(f"{label:<28} {statistics.median(t):>10.1f} {min(t):>8.1f} {max(t):>8.1f}")
    raw, one, many, floor = (statistics.median(times[label]) for label, _, _ in cases)
    print(f"\n{n} processes / 1 process: {many / one:.2f}x  (goal <= 1.5x)")
    print(f"1 process / raw asyncpg: {one / raw:.2f}x")
    print(
        f"floor (1 raw migrating process + {n - 1} that only connect and run one query) / raw: "
        f"{floor / raw:.2f}x  -- what {n} processes cost before any waiting"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
