"""MemoryStore benchmark: bulk loading and search, beside raw asyncpg in the same run.

    python bench/memory_bench.py [--rows 20000] [--queries 1000] [--dsn URL]

Uses ``--dsn`` / ``SAM_DB_TEST_DSN`` when given (it creates and drops two scratch databases there),
otherwise an embedded PostgreSQL in a temporary directory. Vectors are precomputed (synthetic,
low intrinsic dimension, 1536-d), so embedding time is out of every figure.

Measured:
- loading ``rows`` rows into the HNSW-indexed table: raw ``copy_records_to_table`` on one
  connection vs ``MemoryStore.add_many`` (batches on several connections), each into its own
  database, taking turns in four slices; then the raw copy is dropped and the store's table
  vacuumed and analyzed, so that no autovacuum of the fresh rows runs during the timings;
- search p50/p95 and recall@10 (exact ground truth from numpy) at k=10, unfiltered and with a
  5 % metadata filter: the raw index-forced SQL query vs ``MemoryStore.search_by_vector``. The
  raw query is what a hand-written asyncpg search returning the same entries runs (same columns
  and conditions, planner settings SET for the session, one connection). The store searches
  with the access log off, written by the search (``access_log_mode="sync"``) and buffered (the
  default: a background COPY), and with MMR (k of fetch_k=40 candidates). All take turns in
  blocks of 25 queries, in rotating order;
- search modes: ``MemoryStore.search`` p50 with ``mode="vector"``, ``"text"`` and ``"hybrid"``
  (log off), taking turns likewise, for identifier-style and ordinary-language queries from
  bench/retrieval_corpus.py. Entries hold the standard library's docstrings (the retrieval
  evaluation's passages, cycled to ``rows``, each made unique by its row number), so the text
  leg sees a real word distribution; vectors stay synthetic, so no recall is given here
  (bench/retrieval_eval.py measures the modes' hit@10 with a real model).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import time
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import numpy as np
from pgvector import Vector
from pgvector.asyncpg import register_vector

import retrieval_corpus as rc
from bench_server import run_on_server
from sam_db import migrate
from sam_db._ident import quote_ident
from sam_db.memory import MemoryStore
from sam_db.testing._server import with_database

D, K, BUCKETS = 1536, 10, 20


class Precomputed:
    """An embedder that looks vectors up instead of computing them (embedding time excluded)."""

    dimensions = D
    model = "precomputed"

    def __init__(self, texts: Sequence[str], x: np.ndarray[Any, Any]) -> None:
        self._row = {t: i for i, t in enumerate(texts)}
        self._x = x

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._x[self._row[t]].tolist() for t in texts]


def data(rows: int, queries: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    rng = np.random.default_rng(7)
    basis = rng.standard_normal((32, D)).astype(np.float32)
    centers = rng.standard_normal((50, 32)).astype(np.float32) * 2
    latent = centers[rng.integers(0, 50, rows)] + rng.standard_normal((rows, 32)).astype(np.float32)
    x = latent @ basis + 0.5 * rng.standard_normal((rows, D)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    picks = rng.integers(0, rows, queries)
    q = (latent[picks] + 0.3 * rng.standard_normal((queries, 32)).astype(np.float32)) @ basis
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return x, q


async def admin(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def raw_copy(
    conn: asyncpg.Connection[Any], cid: int, texts: list[str], x: np.ndarray[Any, Any], rows: range
) -> float:
    """COPY ``rows`` (binary, one connection, one transaction); returns the seconds it took."""
    records = [
        (
            uuid.uuid4(),
            cid,
            texts[i],
            hashlib.sha256(texts[i].encode()).digest(),
            Vector(x[i]),
            json.dumps({"bucket": i % BUCKETS}),
        )
        for i in rows
    ]
    start = time.perf_counter()
    await conn.copy_records_to_table(
        "memory_entries",
        records=records,
        columns=["id", "collection_id", "content", "content_hash", "embedding", "metadata"],
    )
    return time.perf_counter() - start


async def store_load(store: MemoryStore, texts: list[str], rows: range) -> float:
    metas = [{"bucket": i % BUCKETS} for i in rows]
    start = time.perf_counter()
    await store.add_many([texts[i] for i in rows], metadata=metas)
    return time.perf_counter() - start


async def compare_loads(
    raw_dsn: str, store: MemoryStore, texts: list[str], x: np.ndarray[Any, Any]
) -> tuple[float, float]:
    """Both load every row, taking turns in LOAD_ROUNDS slices (rotating who goes first).

    Each fills its own database, so both indexes grow alike; taking turns keeps slow drift of
    this virtual machine out of the ratio, as the search comparison does.
    """
    conn = await asyncpg.connect(raw_dsn)
    try:
        await register_vector(conn)
        cid = await conn.fetchval(
            "INSERT INTO memory_collections (name) VALUES ('default') RETURNING id"
        )
        step = -(-len(texts) // LOAD_ROUNDS)
        t_raw = t_store = 0.0
        for n, first in enumerate(range(0, len(texts), step)):
            rows = range(first, min(first + step, len(texts)))
            if n % 2 == 0:
                t_raw += await raw_copy(conn, cid, texts, x, rows)
                t_store += await store_load(store, texts, rows)
            else:
                t_store += await store_load(store, texts, rows)
                t_raw += await raw_copy(conn, cid, texts, x, rows)
        return t_raw, t_store
    finally:
        await conn.close()


# The raw baseline: the index-forced query a hand-written asyncpg search returning the same
# entries would run (same columns, collection and expiry conditions), with session settings.
RAW_SETTINGS = (
    "SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off; "
    "SET hnsw.ef_search = {ef}; SET hnsw.iterative_scan = relaxed_order"
)
RAW_SQL = (
    "SELECT e.id, e.content, e.metadata, e.session_id, e.workflow_id, e.embedding_model, "
    "e.created_at, e.updated_at, e.expires_at, e.embedding <=> $1 AS distance "
    "FROM memory_entries e "
    "WHERE e.collection_id = (SELECT id FROM memory_collections WHERE name = 'default') "
    "AND (e.expires_at IS NULL OR e.expires_at > now()) {filter} "
    "ORDER BY distance LIMIT 10"
)
BLOCK = 25  # queries per block; methods take turns block by block
MODE_QUERIES = 200  # queries of each kind (identifier-style, ordinary-language) per mode
LOAD_ROUNDS = 4  # slices in which raw COPY and add_many take turns


async def compare_searches(
    raw: asyncpg.Connection[Any],
    store: MemoryStore,
    sync_store: MemoryStore,
    q: np.ndarray[Any, Any],
    filtered: bool,
) -> dict[str, tuple[list[float], list[list[str]]]]:
    """Every method runs every query; they take turns in blocks, in rotating order.

    Taking turns (rather than one method after the other) keeps slow drift of this virtual
    machine out of the ratios; blocks keep each method's connection warm, as in a service.
    """
    sql = RAW_SQL.format(filter="AND e.metadata @> '{\"bucket\": 0}'" if filtered else "")
    f = {"bucket": 0} if filtered else None

    async def by_raw(i: int) -> list[str]:
        return [r["content"] for r in await raw.fetch(sql, Vector(q[i]))]

    async def by_store(i: int, log: bool, on: MemoryStore = store, **mmr: Any) -> list[str]:
        # Both start from the same numpy row (as a sentence-transformers caller would).
        hits = await on.search_by_vector(q[i], k=K, filter=f, log=log, **mmr)
        return [h.entry.content for h in hits]

    # The log's two modes (access_log_mode): "sync" writes the rows in the search statement,
    # "buffered" (the default) hands them to a buffer written by a background COPY. The MMR row
    # picks k of fetch_k=40 candidates (its recall is not comparable: diversity is its aim).
    methods: dict[str, Any] = {
        "raw SQL": by_raw,
        "store, log off": lambda i: by_store(i, False),
        "store, log sync": lambda i: by_store(i, True, sync_store),
        "store, log buffered": lambda i: by_store(i, True),
        "store, MMR fetch_k=40": lambda i: by_store(i, False, mmr_lambda=0.5, fetch_k=40),
    }
    out: dict[str, tuple[list[float], list[list[str]]]] = {
        m: ([0.0] * len(q), [[] for _ in q]) for m in methods
    }
    for m in methods:  # warm-up: plans, caches, the store's connections
        for i in range(min(BLOCK, len(q))):
            await methods[m](i)
    names = list(methods)
    for b, first in enumerate(range(0, len(q), BLOCK)):
        for m in names[b % len(names) :] + names[: b % len(names)]:
            times, results = out[m]
            for i in range(first, min(first + BLOCK, len(q))):
                start = time.perf_counter()
                results[i] = await methods[m](i)
                times[i] = time.perf_counter() - start
    return out


def recall(
    results: list[list[str]], truth: np.ndarray[Any, Any], texts: list[str]
) -> tuple[float, int]:
    hit = sum(len(set(r) & {texts[i] for i in t}) for r, t in zip(results, truth, strict=True))
    return hit / (len(results) * K), min(len(r) for r in results)


async def run(dsn: str, rows: int, queries: int, ef: int) -> None:
    x, q = data(rows, queries)
    corpus = rc.passages()
    texts = [f"{corpus[i % len(corpus)]} #{i}" for i in range(rows)]
    mode_queries = [
        *((qy.text, "identifier") for qy in rc.identifier_queries(corpus, MODE_QUERIES)),
        *((qy.text, "ordinary") for qy in rc.ordinary_queries(corpus, MODE_QUERIES)),
    ]
    sims = q @ x.T
    truth = np.argsort(-sims, axis=1)[:, :K]
    masked = np.where((np.arange(rows) % BUCKETS) == 0, sims, -np.inf)
    ftruth = np.argsort(-masked, axis=1)[:, :K]

    names = [f"bench_raw_{uuid.uuid4().hex[:8]}", f"bench_store_{uuid.uuid4().hex[:8]}"]
    for n in names:
        await admin(dsn, f"CREATE DATABASE {quote_ident(n)}")
    raw_dsn, store_dsn = (with_database(dsn, n) for n in names)
    try:
        for d in (raw_dsn, store_dsn):
            await migrate(d)
        print(f"loading {rows} rows of {D}-d vectors into the HNSW-indexed table ...", flush=True)
        # Mode queries take the first query vectors (the text leg ignores them).
        qtexts = [t for t, _ in mode_queries]
        embedder = Precomputed(texts + qtexts, np.vstack([x, np.resize(q, (len(qtexts), D))]))
        async with (
            MemoryStore(store_dsn, embedder, ef_search=ef) as store,
            MemoryStore(store_dsn, embedder, ef_search=ef, access_log_mode="sync") as sync_store,
        ):
            t_raw, t_store = await compare_loads(raw_dsn, store, texts, x)
            print(f"  raw COPY, 1 connection: {t_raw:.1f} s; add_many: {t_store:.1f} s", flush=True)
            # The steady state a store is searched in, reached now rather than by autovacuum
            # in the middle of the timings: the loaded copy is dropped (its autovacuum would
            # compete for the CPU), the searched table vacuumed (GIN pending list merged,
            # visibility map set) and analyzed (the text leg reads its statistics).
            await admin(dsn, f"DROP DATABASE {quote_ident(names[0])} WITH (FORCE)")
            async with _Conn(store_dsn) as conn:
                await conn.execute("VACUUM (ANALYZE) memory_entries")

            table: list[tuple[str, float, float, float, int]] = []
            raw = await asyncpg.connect(store_dsn)
            try:
                await register_vector(raw)
                await raw.execute(RAW_SETTINGS.format(ef=int(ef)))
                for filtered in (False, True):
                    tr = ftruth if filtered else truth
                    label = "filtered 5%" if filtered else "unfiltered"
                    for name, (times, res) in (
                        await compare_searches(raw, store, sync_store, q, filtered)
                    ).items():
                        table.append((f"{name}, {label}", *_stats(times), *recall(res, tr, texts)))
                modes = await compare_modes(store, mode_queries)
            finally:
                await raw.close()
    finally:
        for n in names:
            await admin(dsn, f"DROP DATABASE IF EXISTS {quote_ident(n)} WITH (FORCE)")

    print()
    print(f"{'bulk load (' + str(rows) + ' rows)':<34} {'seconds':>8} {'rows/s':>8} {'ratio':>6}")
    print(f"{'raw COPY, 1 connection':<34} {t_raw:>8.1f} {rows / t_raw:>8.0f} {1.0:>6.2f}")
    print(
        f"{'MemoryStore.add_many':<34} {t_store:>8.1f} {rows / t_store:>8.0f} "
        f"{t_raw / t_store:>6.2f}"
    )
    print()
    print(
        f"{'search k=10, ef_search=' + str(ef):<34} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p50 ratio':>9} {'recall':>7} {'min hits':>8}"
    )
    group = len(table) // 2  # rows per group (unfiltered, filtered)
    base = {False: table[0][1], True: table[group][1]}
    for i, (name, p50, p95, rec, shortest) in enumerate(table):
        ratio = p50 / base[i >= group]
        print(f"{name:<34} {p50:>8.2f} {p95:>8.2f} {ratio:>9.2f} {rec:>7.3f} {shortest:>8}")
    print()
    print(f"{'search modes k=10, docstrings':<34} {'p50 ms':>8} {'p95 ms':>8} {'p50 ratio':>9}")
    for kind in ("identifier", "ordinary"):
        for mode in ("vector", "text", "hybrid"):
            p50, p95 = _stats(modes[(mode, kind)])
            ratio = p50 / _stats(modes[("vector", kind)])[0]
            print(f"{mode + ', ' + kind:<34} {p50:>8.2f} {p95:>8.2f} {ratio:>9.2f}")


async def compare_modes(
    store: MemoryStore, queries: list[tuple[str, str]]
) -> dict[tuple[str, str], list[float]]:
    """Search latency per (mode, query kind); modes take turns in blocks, in rotating order."""
    modes = ["vector", "text", "hybrid"]
    out: dict[tuple[str, str], list[float]] = {
        (m, k): [] for m in modes for k in ("identifier", "ordinary")
    }
    for m in modes:  # warm-up
        for text, _ in queries[:BLOCK]:
            await store.search(text, k=K, mode=m, log=False)
    for b, first in enumerate(range(0, len(queries), BLOCK)):
        for m in modes[b % len(modes) :] + modes[: b % len(modes)]:
            for text, kind in queries[first : first + BLOCK]:
                start = time.perf_counter()
                await store.search(text, k=K, mode=m, log=False)
                out[(m, kind)].append(time.perf_counter() - start)
    return out


class _Conn:
    """``async with`` a plain connection."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    async def __aenter__(self) -> asyncpg.Connection[Any]:
        self.conn = await asyncpg.connect(self.dsn)
        return self.conn

    async def __aexit__(self, *exc: object) -> None:
        await self.conn.close()


def _stats(times: list[float]) -> tuple[float, float]:
    ms = [t * 1000 for t in times]
    return statistics.median(ms), pct(ms, 95)


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
