"""MMR's picks against a reference greedy computed in numpy from the stored vectors, and where a
vector search's MMR statement reads the candidates' vectors (its own scan, each once)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import numpy as np
import pytest

from sam_db import migrate
from sam_db.memory import MemoryStore, embedder_from_function
from sam_db.memory._connections import register_codec

D = 1536
ROWS = 80
rng = np.random.default_rng(11)
# Clusters in a low-dimensional subspace, so that near neighbours are alike (MMR has work to do).
_BASIS = rng.standard_normal((8, D))
_LATENT = rng.standard_normal((ROWS, 8)) + 3 * rng.standard_normal((5, 8))[rng.integers(0, 5, ROWS)]
X = (_LATENT @ _BASIS + 0.3 * rng.standard_normal((ROWS, D))).astype(np.float32)
QUERIES = (rng.standard_normal((4, 8)) @ _BASIS).astype(np.float32)
TEXTS = [f"entry {i}" for i in range(ROWS)]


def _embed(texts: Sequence[str]) -> list[list[float]]:
    return [X[int(t.split()[1])].tolist() for t in texts]


@pytest.fixture
async def store(migrated_dsn: str) -> AsyncIterator[MemoryStore]:
    embedder = embedder_from_function(_embed, dimensions=D, model="clusters")
    async with MemoryStore(migrated_dsn, embedder, access_log=False) as s:
        await s.add_many(TEXTS, metadata=[{"half": i % 2} for i in range(ROWS)])
        yield s


def _reference(query: np.ndarray[Any, Any], candidates: list[int], lam: float, k: int) -> list[int]:
    """The greedy of Carbonell and Goldstein over ``candidates`` (best first), in float64."""
    v = X[candidates].astype(np.float64)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    q = query.astype(np.float64) / np.linalg.norm(query)
    relevance, sims = v @ q, v @ v.T
    picked: list[int] = []
    for _ in range(min(k, len(candidates))):
        scores = [
            -np.inf
            if i in picked
            else lam * relevance[i] - (1 - lam) * max((sims[i, j] for j in picked), default=0.0)
            for i in range(len(candidates))
        ]
        picked.append(int(np.argmax(scores)))  # the first of equal scores: the better-ranked
    return [candidates[i] for i in picked]


def _rows(hits: Sequence[Any]) -> list[int]:
    return [int(h.entry.content.split()[1]) for h in hits]


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("filtered", [False, True])
async def test_mmr_picks_equal_a_reference_greedy(
    store: MemoryStore, exact: bool, filtered: bool
) -> None:
    where = {"half": 1} if filtered else None
    diverse = 0  # cases where MMR's picks are not simply the k best
    for query in QUERIES:
        for lam, k, fetch_k in ((0.5, 10, 40), (0.2, 5, 30), (0.8, 8, 20), (0.0, 4, 12)):
            plain = await store.search_by_vector(query, k=fetch_k, filter=where, exact=exact)
            candidates = _rows(plain)
            hits = await store.search_by_vector(
                query, k=k, filter=where, exact=exact, mmr_lambda=lam, fetch_k=fetch_k
            )
            assert _rows(hits) == _reference(query, candidates, lam, k), (lam, k, fetch_k)
            diverse += _rows(hits) != candidates[:k]
            # Each hit keeps the plain search's similarity and its place among the candidates.
            by_row = {r: h for r, h in zip(candidates, plain, strict=True)}
            assert [h.similarity for h in hits] == [by_row[r].similarity for r in _rows(hits)]
            assert [h.vector_rank for h in hits] == [by_row[r].rank for r in _rows(hits)]
    assert diverse >= len(QUERIES)


async def _plan(store: MemoryStore, dsn: str, exact: bool, monkeypatch: Any) -> str:
    """EXPLAIN VERBOSE of the statement an MMR vector search runs (index or exact)."""
    sent: list[tuple[str, tuple[Any, ...]]] = []
    fetch = asyncpg.connection.Connection.fetch

    async def recording(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        sent.append((query, args))
        return await fetch(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.connection.Connection, "fetch", recording)
    await store.search_by_vector(QUERIES[0], k=5, exact=exact, mmr_lambda=0.5, fetch_k=20)
    monkeypatch.undo()
    [(text, args)] = [s for s in sent if "mmr_sims" in s[0]]
    conn = await asyncpg.connect(dsn)
    try:
        await register_codec(conn, "public")
        rows = await conn.fetch("EXPLAIN (VERBOSE) " + text, *args)
    finally:
        await conn.close()
    return "\n".join(r[0] for r in rows)


@pytest.mark.parametrize("exact", [False, True])
async def test_an_mmr_vector_search_reads_each_candidates_vector_in_its_own_scan(
    store: MemoryStore, migrated_dsn: str, exact: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = await _plan(store, migrated_dsn, exact, monkeypatch)
    # No second look-up of the candidates by primary key ...
    assert "memory_entries_pkey" not in plan, plan
    # ... and only the candidates are normalized: not every row the scan (or its sort) reads.
    nodes = re.split(r"\n\s*->\s*", plan)
    below = [n for n in nodes if re.match(r"(Seq Scan|Index Scan|Sort|Limit|Result)\b", n)]
    assert below and not any("l2_normalize" in n for n in below), plan


@pytest.mark.slow
@pytest.mark.parametrize("exact", [False, True])
async def test_mmr_picks_equal_the_reference_on_pgvector_0_6(old_server: str, exact: bool) -> None:
    # pgvector 0.6 has no l2_normalize: the candidates' vectors are cast through real[] and
    # compared by cosine distance (old_server skips the test when pgserver is missing).
    await migrate(old_server)
    embedder = embedder_from_function(_embed, dimensions=D, model="clusters")
    async with MemoryStore(old_server, embedder, access_log=False) as store:
        assert store.iterative_scans is False
        if not await store.count():
            await store.add_many(TEXTS)
        for query in QUERIES[:2]:
            plain = await store.search_by_vector(query, k=30, exact=exact)
            hits = await store.search_by_vector(query, k=6, exact=exact, mmr_lambda=0.4, fetch_k=30)
            assert _rows(hits) == _reference(query, _rows(plain), 0.4, 6)
