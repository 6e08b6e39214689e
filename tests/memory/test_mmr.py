"""Maximal Marginal Relevance: search(..., mmr_lambda=, fetch_k=) on a corpus of near-duplicate
clusters, in every mode, with filters, and its argument checks."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import AsyncIterator, Sequence

import pytest

from sam_db.errors import InvalidInputError
from sam_db.memory import MemoryStore, SearchHit, embedder_from_function

D = 1536
CLUSTERS, MEMBERS = 4, 5
QUERY = "needle query"
# The query leans to cluster 0, then 1, 2, 3: plain search returns cluster 0's near-duplicates.
QUERY_WEIGHTS = (1.0, 0.6, 0.4, 0.3)


def _unit(values: dict[int, float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values.values()))
    out = [0.0] * D
    for i, v in values.items():
        out[i] = v / norm
    return out


def _text(c: int, j: int) -> str:
    # Every entry matches the query's text; cluster 0's match both its words, the others one.
    return f"needle {'query ' if c == 0 else ''}cluster{c} member{j}"


VECTORS = {
    _text(c, j): _unit({c: 1.0, 100 + 10 * c + j: 0.08 + 0.01 * j})
    for c in range(CLUSTERS)
    for j in range(MEMBERS)
}
VECTORS[QUERY] = _unit(dict(enumerate(QUERY_WEIGHTS)))
CLUSTER_OF = {_text(c, j): c for c in range(CLUSTERS) for j in range(MEMBERS)}


def _embed(texts: Sequence[str]) -> list[list[float]]:
    return [VECTORS[t] for t in texts]


@pytest.fixture
async def corpus(migrated_dsn: str) -> AsyncIterator[MemoryStore]:
    embedder = embedder_from_function(_embed, dimensions=D, model="clusters")
    async with MemoryStore(migrated_dsn, embedder, access_log=False) as store:
        texts = [t for t in VECTORS if t != QUERY]
        await store.add_many(texts, metadata=[{"cluster": CLUSTER_OF[t]} for t in texts])
        yield store


def _mean_pairwise_similarity(hits: list[SearchHit]) -> float:
    vs = [VECTORS[h.entry.content] for h in hits]
    sims = [
        sum(a * b for a, b in zip(vs[i], vs[j], strict=True))
        for i in range(len(vs))
        for j in range(i + 1, len(vs))
    ]
    return sum(sims) / len(sims)


def _ids(hits: list[SearchHit]) -> list[object]:
    return [h.entry.id for h in hits]


@pytest.mark.parametrize("mode", ["vector", "text", "hybrid"])
async def test_mmr_hits_are_less_alike_than_plain_hits(corpus: MemoryStore, mode: str) -> None:
    plain = await corpus.search(QUERY, k=4, mode=mode)
    diverse = await corpus.search(QUERY, k=4, mode=mode, mmr_lambda=0.5)
    assert {CLUSTER_OF[h.entry.content] for h in plain} == {0}
    assert len(diverse) == 4
    assert {CLUSTER_OF[h.entry.content] for h in diverse} == {0, 1, 2, 3}
    assert _mean_pairwise_similarity(diverse) < _mean_pairwise_similarity(plain)


@pytest.mark.parametrize("mode", ["vector", "text", "hybrid"])
async def test_mmr_keeps_the_first_hit(corpus: MemoryStore, mode: str) -> None:
    plain = await corpus.search(QUERY, k=4, mode=mode)
    for lam in (0.0, 0.3, 0.7):
        diverse = await corpus.search(QUERY, k=4, mode=mode, mmr_lambda=lam)
        assert diverse[0].entry.id == plain[0].entry.id


@pytest.mark.parametrize("mode", ["vector", "text", "hybrid"])
async def test_mmr_lambda_one_equals_plain_search(corpus: MemoryStore, mode: str) -> None:
    plain = await corpus.search(QUERY, k=6, mode=mode)
    same = await corpus.search(QUERY, k=6, mode=mode, mmr_lambda=1.0, fetch_k=20)
    assert _ids(same) == _ids(plain)
    assert [h.rank for h in same] == [1, 2, 3, 4, 5, 6]
    assert [h.similarity for h in same] == [h.similarity for h in plain]


async def test_mmr_hits_carry_their_place_among_the_candidates(corpus: MemoryStore) -> None:
    diverse = await corpus.search(QUERY, k=2, mmr_lambda=0.5)
    # The second pick is cluster 1's best: behind cluster 0's five by similarity.
    assert [h.rank for h in diverse] == [1, 2]
    assert [h.vector_rank for h in diverse] == [1, MEMBERS + 1]


async def test_mmr_keeps_to_the_filter(corpus: MemoryStore) -> None:
    hits = await corpus.search(
        QUERY, k=3, filter={"cluster": {"$in": [2, 3]}}, mmr_lambda=0.5, mode="hybrid"
    )
    assert {CLUSTER_OF[h.entry.content] for h in hits} == {2, 3}
    vector_hits = await corpus.search(QUERY, k=3, filter={"cluster": 1}, mmr_lambda=0.2)
    assert {CLUSTER_OF[h.entry.content] for h in vector_hits} == {1}
    assert len(vector_hits) == 3


async def test_mmr_respects_min_similarity(corpus: MemoryStore) -> None:
    hits = await corpus.search(QUERY, k=4, mmr_lambda=0.5, min_similarity=0.4)
    assert hits and all(h.similarity is not None and h.similarity >= 0.4 for h in hits)
    assert {CLUSTER_OF[h.entry.content] for h in hits} == {0, 1}


async def test_mmr_search_by_vector(corpus: MemoryStore) -> None:
    hits = await corpus.search_by_vector(VECTORS[QUERY], k=4, mmr_lambda=0.5)
    assert {CLUSTER_OF[h.entry.content] for h in hits} == {0, 1, 2, 3}


@pytest.mark.parametrize("access_log_mode", ["sync", "buffered"])
async def test_an_mmr_search_logs_the_hits_it_returns(
    migrated_dsn: str, access_log_mode: str
) -> None:
    embedder = embedder_from_function(_embed, dimensions=D, model="clusters")
    async with MemoryStore(migrated_dsn, embedder, access_log_mode=access_log_mode) as store:
        await store.add_many([t for t in VECTORS if t != QUERY])
        hits = await store.search(QUERY, k=3, mmr_lambda=0.5)
        records = sorted(await store.access_records(), key=lambda r: r.rank)
    assert [(r.entry_id, r.rank) for r in records] == [(h.entry.id, h.rank) for h in hits]
    assert [r.similarity for r in records] == pytest.approx([h.similarity for h in hits], abs=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mmr_lambda": 1.5}, "mmr_lambda"),
        ({"mmr_lambda": -0.1}, "mmr_lambda"),
        ({"mmr_lambda": float("nan")}, "mmr_lambda"),
        ({"mmr_lambda": True}, "mmr_lambda"),
        ({"mmr_lambda": "0.5"}, "mmr_lambda"),
        ({"mmr_lambda": 0.5, "fetch_k": 3}, "fetch_k"),  # below k=4
        ({"mmr_lambda": 0.5, "fetch_k": 1001}, "fetch_k"),
        ({"mmr_lambda": 0.5, "fetch_k": True}, "fetch_k"),
        ({"mmr_lambda": 0.5, "fetch_k": 10.0}, "fetch_k"),
        ({"fetch_k": 20}, "mmr_lambda"),  # fetch_k alone
    ],
)
async def test_bad_mmr_arguments_are_refused(
    corpus: MemoryStore, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(InvalidInputError, match=match):
        await corpus.search(QUERY, k=4, **kwargs)  # type: ignore[arg-type]


async def test_mmr_on_pgvector_without_l2_normalize_picks_the_same_hits(
    corpus: MemoryStore,
) -> None:
    # pgvector before 0.7 has no l2_normalize: the candidates' similarities come from cosine
    # distance instead (the store tells such a server by its lack of iterative scans).
    modern = await corpus.search(QUERY, k=4, mmr_lambda=0.5)
    found = corpus._opened()
    corpus._found = dataclasses.replace(found, iterative_scans=False)
    try:
        old = await corpus.search(QUERY, k=4, mmr_lambda=0.5)
    finally:
        corpus._found = found
    assert _ids(old) == _ids(modern)
