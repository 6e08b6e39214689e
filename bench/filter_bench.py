"""Filter benchmark: searches with long ``$in`` lists, MemoryStore beside raw asyncpg in one run.

    python bench/filter_bench.py [--rows 2000] [--queries 30] [--dsn URL]

Uses ``--dsn`` / ``SAM_DB_TEST_DSN`` when given (it creates and drops a scratch database there),
otherwise an embedded PostgreSQL in a temporary directory. Every ``$in`` list matches the same
20 rows (10 for a one-value list; the rest of its values match nothing), so only its length
changes.

Measured, per list length, search p50 at k=10 (access log off), taking turns in blocks:
- ``MemoryStore.search_by_vector`` with ``{"k": {"$in": values}}``;
- raw asyncpg, the same search hand-written with the obvious SQL for membership,
  ``metadata @> ANY($2::jsonb[])`` (one containment document per value), index forced;
- raw asyncpg with the store's form (one jsonb array, a hashed sub-plan), index forced.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import numpy as np
from pgvector import Vector
from pgvector.asyncpg import register_vector

from bench_server import run_on_server
from sam_db import migrate
from sam_db._ident import quote_ident
from sam_db.memory import MemoryStore
from sam_db.testing import HashEmbedder
from sam_db.testing._server import with_database

K, BLOCK, LENGTHS = 10, 5, (1, 10, 100, 1000, 10_000)
RAW_SETTINGS = (
    "SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off; "
    "SET hnsw.iterative_scan = relaxed_order"
)
RAW_SQL = (
    "SELECT e.id, e.content, e.metadata, e.embedding <=> $1 AS distance FROM memory_entries e "
    "WHERE e.collection_id = (SELECT id FROM memory_collections WHERE name = 'default') "
    "AND (e.expires_at IS NULL OR e.expires_at > now()) AND {cond} ORDER BY distance LIMIT 10"
)
CONTAINMENT = "e.metadata @> ANY($2::jsonb[])"
HASHED = "COALESCE(e.metadata -> 'k' IN (SELECT jsonb_array_elements($2::jsonb)), FALSE)"


def in_values(n: int, rows: int) -> list[int]:
    """``n`` values: the first two (one when ``n`` is 1) are on 10 rows each, the rest on none."""
    matching = list(range(min(n, 2)))
    return matching + [rows * 10 + j for j in range(n - len(matching))]


async def run(dsn: str, rows: int, queries: int) -> None:
    name = f"bench_filter_{uuid.uuid4().hex[:8]}"
    await _admin(dsn, f"CREATE DATABASE {quote_ident(name)}")
    db = with_database(dsn, name)
    rng = np.random.default_rng(7)
    q = rng.standard_normal((queries, 1536)).astype(np.float32)
    try:
        await migrate(db)
        buckets = rows // 10  # each k value on 10 rows
        print(f"loading {rows} rows ...", flush=True)
        async with MemoryStore(db, HashEmbedder(), access_log=False) as store:
            await store.add_many(
                [f"row {i}" for i in range(rows)],
                metadata=[{"k": i % buckets} for i in range(rows)],
            )
            raw = await asyncpg.connect(db)
            try:
                await register_vector(raw)
                await raw.execute(RAW_SETTINGS + "; ANALYZE memory_entries")
                print(
                    f"\n{'$in values':>10} {'store p50':>10} {'raw @>ANY':>10} {'raw hashed':>11}"
                )
                for n in LENGTHS:
                    p50 = await _compare(store, raw, q, in_values(n, rows))
                    print(f"{n:>10} {p50[0]:>8.2f}ms {p50[1]:>8.2f}ms {p50[2]:>9.2f}ms", flush=True)
            finally:
                await raw.close()
    finally:
        await _admin(dsn, f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")


async def _compare(
    store: MemoryStore, raw: asyncpg.Connection[Any], q: np.ndarray[Any, Any], values: list[int]
) -> list[float]:
    """p50 (ms) of the store and the two raw forms, taking turns in blocks of BLOCK queries."""
    f = {"k": {"$in": values}}
    docs = [json.dumps({"k": v}) for v in values]
    listed = json.dumps(values)

    async def store_search(i: int) -> int:
        return len(await store.search_by_vector(q[i], k=K, filter=f, log=False))

    async def raw_search(i: int, cond: str, arg: Any) -> int:
        return len(await raw.fetch(RAW_SQL.format(cond=cond), Vector(q[i]), arg))

    methods: list[Callable[[int], Awaitable[int]]] = [
        store_search,
        lambda i: raw_search(i, CONTAINMENT, docs),
        lambda i: raw_search(i, HASHED, listed),
    ]
    # The containment form costs one test per value per row: fewer queries for long lists.
    count = len(q) if len(values) <= 1000 else max(BLOCK, len(q) // 6)
    times: list[list[float]] = [[] for _ in methods]
    for method in methods:  # warm-up: plans, caches, connections
        await method(0)
    for b, first in enumerate(range(0, count, BLOCK)):
        order = list(range(len(methods)))
        for m in order[b % 3 :] + order[: b % 3]:
            for i in range(first, min(first + BLOCK, count)):
                start = time.perf_counter()
                await methods[m](i)
                times[m].append(time.perf_counter() - start)
    return [statistics.median(t) * 1000 for t in times]


async def _admin(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--dsn", default=os.environ.get("SAM_DB_TEST_DSN"))
    args = parser.parse_args()
    run_on_server(args.dsn, lambda dsn: run(dsn, args.rows, args.queries))


if __name__ == "__main__":
    main()
