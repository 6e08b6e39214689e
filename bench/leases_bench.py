"""Leases: a store on its own pool (connections leased) beside one on a borrowed pool (acquired and
released through asyncpg for every operation), in one process, on the same database.

    python bench/leases_bench.py [--rows 2000] [--rounds 40] [--dsn URL]

The borrowed pool is set up as the store sets up its own (same codec init, no reset query), so
the two differ only in how an operation gets its connection. They take turns in blocks of 25
operations (order alternating per round): ``search_by_vector`` (k=10, access log off) and
``get(id)``, the cheapest operation, where the difference shows most. Prints p25/p50/p75 per
operation and the difference of the medians. Uses ``--dsn`` / ``SAM_DB_TEST_DSN`` when given (it
creates and drops a scratch database there), otherwise an embedded PostgreSQL in a temporary
directory.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import numpy as np

from bench_server import run_on_server
from sam_db import migrate
from sam_db._ident import quote_ident
from sam_db.memory import MemoryStore
from sam_db.memory._connections import _init_owned, _keep_session
from sam_db.testing._server import with_database

D, BLOCK = 1536, 25


class Lookup:
    """An embedder that looks vectors up (embedding time excluded)."""

    dimensions = D
    model = "lookup"

    def __init__(self, texts: list[str], x: np.ndarray[Any, Any]) -> None:
        self._row = {t: i for i, t in enumerate(texts)}
        self._x = x

    async def embed(self, texts: Any) -> list[list[float]]:
        return [self._x[self._row[t]].tolist() for t in texts]


async def run(server_dsn: str, rows: int, rounds: int) -> None:
    name = f"bench_leases_{uuid.uuid4().hex[:8]}"
    await _admin(server_dsn, f"CREATE DATABASE {quote_ident(name)}")
    try:
        await _compare(with_database(server_dsn, name), rows, rounds)
    finally:
        await _admin(server_dsn, f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")


async def _admin(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _compare(dsn: str, rows: int, rounds: int) -> None:
    await migrate(dsn)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((rows, D)).astype(np.float32)
    texts = [f"memory row {i}" for i in range(rows)]
    embedder = Lookup(texts, x)
    pool = await asyncpg.create_pool(
        dsn, min_size=1, max_size=8, init=_init_owned, reset=_keep_session
    )
    try:
        async with MemoryStore(dsn, embedder) as leased, MemoryStore(pool, embedder) as borrowed:
            ids = [e.id for e in await leased.add_many(texts)]
            stores = {"leased (own pool)": leased, "acquire/release": borrowed}
            ops: dict[str, Callable[[MemoryStore, int], Awaitable[Any]]] = {
                "search_by_vector, log off": lambda s, i: s.search_by_vector(
                    x[i % rows], k=10, log=False
                ),
                "get(id)": lambda s, i: s.get(ids[i % rows]),
            }
            for name, op in ops.items():
                times = await _interleaved(stores, op, rounds)
                med = {}
                for store_name, ts in times.items():
                    q = statistics.quantiles([t * 1000 for t in ts], n=4)
                    med[store_name] = q[1]
                    print(
                        f"{name:<26} {store_name:<18} p25 {q[0]:6.3f}  p50 {q[1]:6.3f}  "
                        f"p75 {q[2]:6.3f} ms  (n={len(ts)})"
                    )
                saved = med["acquire/release"] - med["leased (own pool)"]
                print(f"{name:<26} leases save {saved:6.3f} ms at the median")
    finally:
        await pool.close()


async def _interleaved(
    stores: dict[str, MemoryStore],
    op: Callable[[MemoryStore, int], Awaitable[Any]],
    rounds: int,
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {n: [] for n in stores}
    for store in stores.values():  # warm-up: connections, plans
        for i in range(2 * BLOCK):
            await op(store, i)
    i = 0
    for r in range(rounds):
        names = list(stores) if r % 2 == 0 else list(reversed(stores))
        for n in names:
            for _ in range(BLOCK):
                start = time.perf_counter()
                await op(stores[n], i)
                times[n].append(time.perf_counter() - start)
                i += 1
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--dsn", default=os.environ.get("SAM_DB_TEST_DSN"))
    args = parser.parse_args()
    run_on_server(args.dsn, lambda dsn: run(dsn, args.rows, args.rounds))


if __name__ == "__main__":
    main()
