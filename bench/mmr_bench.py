"""MMR search vs plain vector search, interleaved in one process (issue 11: MMR at fetch_k=40
should cost at most 1.5x a plain search with the same k).

    python bench/mmr_bench.py [--rows 20000] [--queries 400] [--rounds 3] [--dsn URL]
                              [--dimensions 1536] [--half]

Uses ``--dsn`` / ``SAM_DB_TEST_DSN`` when given (a database without the store's tables is
migrated; one with fewer than ``rows`` entries is filled: later runs reuse them), otherwise
an embedded PostgreSQL in a temporary directory. Rows and queries are bench/memory_bench.py's (synthetic
1536-d vectors of low intrinsic dimension; metadata ``{"bucket": i % 20}``), so the filtered
figures use its 5 % filter. ``--dimensions N`` keeps their first N coordinates (renormalized) and
``--half`` stores them as ``halfvec``: a new database gets the migration of
``sam-db new --memory-dimensions N [--half]``.

Three searches take turns in blocks of 25 queries, in rotating order, unfiltered and filtered:
``search_by_vector(k=10)``, the same with ``mmr_lambda=0.5, fetch_k=40``, and ``k=40`` (the
plain search for as many rows as MMR's candidates: what MMR's scan alone costs). Each round
reports p50s and the MMR / plain ratio; the last lines give the medians over the rounds.

To compare with an older tree: ``git archive <commit> src bench | tar -x -C /tmp/old`` and run
this file alternately with ``PYTHONPATH=/tmp/old/src`` and without, on the same ``--dsn``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

import sam_db
from bench_server import run_on_server
from memory_bench import D, data
from sam_db.memory import MemoryStore, embedder_from_function

K, FETCH_K, LAMBDA, BLOCK = 10, 40, 0.5, 25
FILTER = {"bucket": 0}  # 1 row in 20


async def fill(dsn: str, x: np.ndarray[Any, Any], half: bool) -> None:
    """Migrate a new database and load the rows that are missing (all of them there)."""
    conn = await asyncpg.connect(dsn)
    try:
        found = await conn.fetchval("SELECT to_regclass('memory_entries') IS NOT NULL")
    finally:
        await conn.close()
    if not found:  # (an older tree's migrate() would refuse a database a newer one migrated)
        with tempfile.TemporaryDirectory(prefix="sam_db_mmr_bench_") as folder:
            if half or x.shape[1] != D:
                sam_db.memory_dimensions_migration(x.shape[1], half=half, folder=folder)
            await sam_db.migrate(dsn, sources=[folder])

    def embed(texts: Sequence[str]) -> list[list[float]]:
        return [x[int(t.split()[1])].tolist() for t in texts]

    embedder = embedder_from_function(embed, dimensions=x.shape[1], model="mmr-bench")
    async with MemoryStore(dsn, embedder, access_log=False) as store:
        start = await store.count()
        for first in range(start, len(x), 1000):
            rows = range(first, min(first + 1000, len(x)))
            texts = [f"row {i} of the MMR benchmark" for i in rows]
            await store.add_many(texts, metadata=[{"bucket": i % 20} for i in rows])


async def one_round(
    store: MemoryStore, q: np.ndarray[Any, Any], filtered: bool
) -> dict[str, float]:
    """p50 (ms) of each search over the queries ``q``, taking turns block by block."""
    where = FILTER if filtered else None

    def search(**kw: Any) -> Callable[[int], Awaitable[Any]]:
        return lambda i: store.search_by_vector(q[i], filter=where, log=False, **kw)

    methods = {
        "plain k=10": search(k=K),
        f"MMR k=10 of {FETCH_K}": search(k=K, mmr_lambda=LAMBDA, fetch_k=FETCH_K),
        f"plain k={FETCH_K}": search(k=FETCH_K),
    }
    times: dict[str, list[float]] = {m: [] for m in methods}
    for m in methods:  # warm-up: plans, caches, connections
        for i in range(min(BLOCK, len(q))):
            await methods[m](i)
    names = list(methods)
    for b, first in enumerate(range(0, len(q), BLOCK)):
        for m in names[b % len(names) :] + names[: b % len(names)]:
            for i in range(first, min(first + BLOCK, len(q))):
                start = time.perf_counter()
                await methods[m](i)
                times[m].append(time.perf_counter() - start)
    return {m: statistics.median(t) * 1000 for m, t in times.items()}


async def run(args: argparse.Namespace, dsn: str) -> None:
    rows, queries, rounds = args.rows, args.queries, args.rounds
    x, q = data(rows, queries)
    if args.dimensions != D:
        x, q = x[:, : args.dimensions], q[:, : args.dimensions]
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    await fill(dsn, x, args.half)
    unused = embedder_from_function(lambda t: [], dimensions=x.shape[1], model="mmr-bench")
    store = MemoryStore(dsn, unused, access_log=False)
    async with store:
        kind = f"{'halfvec' if args.half else 'vector'}({x.shape[1]})"
        print(
            f"sam_db from {Path(sam_db.__file__).parent}; {rows} rows of {kind}, {queries} queries"
        )
        for filtered in (False, True):
            label = "filtered (5 %)" if filtered else "unfiltered"
            ratios: list[float] = []
            p50s: dict[str, list[float]] = {}
            for r in range(rounds):
                p50 = await one_round(store, q, filtered)
                mmr, plain = p50[f"MMR k=10 of {FETCH_K}"], p50["plain k=10"]
                ratios.append(mmr / plain)
                for m, v in p50.items():
                    p50s.setdefault(m, []).append(v)
                shown = ", ".join(f"{m} {v:.2f} ms" for m, v in p50.items())
                print(f"{label} round {r + 1}: {shown}; MMR / plain {mmr / plain:.2f}")
            medians = ", ".join(f"{m} {statistics.median(v):.2f} ms" for m, v in p50s.items())
            print(
                f"{label} median of rounds: {medians}; MMR / plain {statistics.median(ratios):.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dsn", default=os.environ.get("SAM_DB_TEST_DSN"))
    parser.add_argument("--dimensions", type=int, default=D)
    parser.add_argument("--half", action="store_true")
    args = parser.parse_args()
    run_on_server(args.dsn, lambda dsn: run(args, dsn))


if __name__ == "__main__":
    main()
