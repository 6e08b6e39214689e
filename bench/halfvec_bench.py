"""1536-d embeddings stored as ``vector`` vs ``halfvec``, in the same run.

    python bench/halfvec_bench.py [--rows 20000] [--queries 1000] [--ef-search 40] [--dsn URL]

Uses ``--dsn`` / ``SAM_DB_TEST_DSN`` when given (it creates and drops two scratch databases there),
otherwise an embedded PostgreSQL in a temporary directory. One database stays at the bundled
``vector(1536)``; the other gets the migration ``sam-db new --memory-dimensions 1536 --half``
writes. Vectors are precomputed (bench/memory_bench.py's synthetic data), so embedding time is
out of every figure.

Measured, for each column type:
- the HNSW index's size and the table's (with TOAST) after loading ``rows`` rows;
- ``MemoryStore.add_many`` rows/s (the two loads take turns in four slices);
- ``search_by_vector`` p50/p95 at k=10 (the two stores take turns in blocks of 25 queries, in
  rotating order) and recall@10 against the exact float32 ranking from numpy.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import sam_db
from bench_server import run_on_server
from memory_bench import BUCKETS, K, Precomputed, _stats, admin, data
from sam_db._ident import quote_ident
from sam_db.memory import MemoryStore
from sam_db.testing._server import with_database

KINDS = ("vector", "halfvec")
SIZES = """
SELECT pg_relation_size('memory_entries_embedding_hnsw_idx'),
       pg_total_relation_size('memory_entries') - pg_indexes_size('memory_entries')
"""


async def load(
    stores: dict[str, MemoryStore], texts: list[str], slices: int = 4
) -> dict[str, float]:
    """add_many of every row into each store, the stores taking turns slice by slice."""
    seconds = dict.fromkeys(stores, 0.0)
    bounds = np.linspace(0, len(texts), slices + 1).astype(int)
    for s, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        order = list(stores) if s % 2 == 0 else list(reversed(stores))
        for kind in order:
            metas = [{"bucket": i % BUCKETS} for i in range(lo, hi)]
            start = time.perf_counter()
            await stores[kind].add_many(texts[lo:hi], metadata=metas)
            seconds[kind] += time.perf_counter() - start
    return seconds


async def search(
    stores: dict[str, MemoryStore], q: np.ndarray[Any, Any]
) -> dict[str, tuple[list[float], list[list[str]]]]:
    """Every query on each store, in blocks of 25 queries per store, rotating the order."""
    out: dict[str, tuple[list[float], list[list[str]]]] = {k: ([], []) for k in stores}
    for block, lo in enumerate(range(0, len(q), 25)):
        order = list(stores) if block % 2 == 0 else list(reversed(stores))
        for kind in order:
            times, results = out[kind]
            for i in range(lo, min(lo + 25, len(q))):
                start = time.perf_counter()
                hits = await stores[kind].search_by_vector(q[i], k=K, log=False)
                times.append(time.perf_counter() - start)
                results.append([h.entry.content for h in hits])
    return out


def recall(results: list[list[str]], truth: np.ndarray[Any, Any], texts: list[str]) -> float:
    hit = sum(len(set(r) & {texts[i] for i in t}) for r, t in zip(results, truth, strict=True))
    return hit / (len(results) * K)


async def run(dsn: str, rows: int, queries: int, ef: int) -> None:
    x, q = data(rows, queries)
    texts = [f"memory row {i}" for i in range(rows)]
    truth = np.argsort(-(q @ x.T), axis=1)[:, :K]
    names = {k: f"bench_{k}_{uuid.uuid4().hex[:8]}" for k in KINDS}
    dsns = {k: with_database(dsn, n) for k, n in names.items()}
    for n in names.values():
        await admin(dsn, f"CREATE DATABASE {quote_ident(n)}")
    try:
        with tempfile.TemporaryDirectory(prefix="sam_db_halfvec_") as folder:
            sam_db.memory_dimensions_migration(1536, half=True, folder=folder)
            await sam_db.migrate(dsns["vector"])
            await sam_db.migrate(dsns["halfvec"], sources=[folder])
        embedder = Precomputed(texts, x)
        async with (
            MemoryStore(dsns["vector"], embedder, ef_search=ef) as vec,
            MemoryStore(dsns["halfvec"], embedder, ef_search=ef) as half,
        ):
            stores = {"vector": vec, "halfvec": half}
            print(f"loading {rows} rows of 1536-d vectors into each table ...", flush=True)
            seconds = await load(stores, texts)
            sizes: dict[str, tuple[int, int]] = {}
            for kind, d in dsns.items():
                conn = await asyncpg.connect(d)
                try:
                    await conn.execute("ANALYZE memory_entries")
                    row = await conn.fetchrow(SIZES)
                    assert row is not None
                    sizes[kind] = (row[0], row[1])
                    plan = await stores[kind].explain_search(q[0].tolist(), k=K)
                    assert "memory_entries_embedding_hnsw_idx" in plan, plan
                finally:
                    await conn.close()
            print(f"searching {queries} queries on each ...", flush=True)
            found = await search(stores, q)
    finally:
        for n in names.values():
            await admin(dsn, f"DROP DATABASE IF EXISTS {quote_ident(n)} WITH (FORCE)")

    print()
    head = (
        f"{'1536-d, ' + str(rows) + ' rows':<18} {'index MB':>9} {'table MB':>9} "
        f"{'add_many rows/s':>16} {'p50 ms':>7} {'p95 ms':>7} {'recall@10':>9}"
    )
    print(head)
    for kind in KINDS:
        p50, p95 = _stats(found[kind][0])
        index, table = (b / 2**20 for b in sizes[kind])
        print(
            f"{kind:<18} {index:>9.1f} {table:>9.1f} {rows / seconds[kind]:>16.0f} "
            f"{p50:>7.2f} {p95:>7.2f} {recall(found[kind][1], truth, texts):>9.3f}"
        )
    ratio_p50 = _stats(found["halfvec"][0])[0] / _stats(found["vector"][0])[0]
    print(
        f"halfvec/vector: index size {sizes['halfvec'][0] / sizes['vector'][0]:.2f}, "
        f"add_many rows/s {seconds['vector'] / seconds['halfvec']:.2f}, p50 {ratio_p50:.2f} "
        f"(ef_search={ef}, k={K}, same run)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--ef-search", type=int, default=40)
    parser.add_argument("--dsn", default=os.environ.get("SAM_DB_TEST_DSN"))
    args = parser.parse_args()
    run_on_server(args.dsn, lambda dsn: run(dsn, args.rows, args.queries, args.ef_search))


if __name__ == "__main__":
    main()
