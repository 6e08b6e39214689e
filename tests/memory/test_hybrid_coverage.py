"""Hybrid search weights the text leg's RRF term by the share of the query's lexemes an entry
holds (cubed): an entry holding all of them counts fully, one that shares a few words of a
longer question cannot push the vector leg's finds out of the top k; and its text leg matches
only entries holding two of the query's lexemes when it has three or more."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from sam_db.memory import MemoryStore, SearchHit

D = 1536
QUERY = "ancient river bridge stone"
FULL = "The ancient stone bridge over the river."  # every lexeme of the query
PARTIAL = "A river bridge."  # two of its four lexemes
ONE = "A stone."  # one of them, and near the query's vector
FILLERS = [f"filler note number {i}" for i in range(25)]


def _unit(axis: int, lean: float = 0.0) -> list[float]:
    """The unit vector along ``axis``, leaning ``lean`` towards axis 0 (the query's)."""
    v = [0.0] * D
    v[0] = lean
    v[axis] = 1.0
    norm = sum(x * x for x in v) ** 0.5
    return [x / norm for x in v]


class ChosenVectors:
    """An embedder with a chosen vector per text: the fillers are the query's nearest
    neighbours, FULL and PARTIAL are far from it (the vector leg does not find them)."""

    dimensions = D
    model = "chosen"

    def __init__(self) -> None:
        self.vectors = {QUERY: _unit(0), FULL: _unit(1), PARTIAL: _unit(2), ONE: _unit(3, 20.0)}
        for i, text in enumerate(FILLERS):
            self.vectors[text] = _unit(10 + i, lean=10.0 - i * 0.1)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.vectors[t] for t in texts]


async def _store_with_entries(dsn: str) -> MemoryStore:
    store = await MemoryStore(dsn, ChosenVectors()).open()
    await store.add_many([FULL, PARTIAL, ONE, *FILLERS])
    return store


async def _text_and_hybrid_hits(dsn: str) -> tuple[list[SearchHit], list[SearchHit]]:
    """The query's text search hits and its hybrid search hits over the entries."""
    store = await _store_with_entries(dsn)
    try:
        text_hits = await store.search(QUERY, k=10, mode="text")
        return text_hits, await store.search(QUERY, k=10, mode="hybrid")
    finally:
        await store.close()


async def test_an_entry_holding_every_query_lexeme_counts_fully(migrated_dsn: str) -> None:
    store = await _store_with_entries(migrated_dsn)
    try:
        hits = await store.search(QUERY, k=10, mode="hybrid")
    finally:
        await store.close()
    full = next(h for h in hits if h.entry.content == FULL)
    assert full.vector_rank is None and full.text_rank == 1 and full.rank <= 2
    assert full.similarity == pytest.approx(0.0, abs=1e-6)  # orthogonal to the query


async def test_hybrid_hits_found_by_the_vector_leg_keep_its_similarity(migrated_dsn: str) -> None:
    store = await _store_with_entries(migrated_dsn)
    try:
        vector = {h.entry.id: h.similarity for h in await store.search(QUERY, k=20)}
        hits = await store.search(QUERY, k=10, mode="hybrid")
    finally:
        await store.close()
    found = [h for h in hits if h.vector_rank is not None]
    assert found and all(h.similarity == pytest.approx(vector[h.entry.id], abs=1e-9) for h in found)


async def test_an_entry_holding_half_the_query_words_stays_below_the_vector_finds(
    migrated_dsn: str,
) -> None:
    text_hits, hits = await _text_and_hybrid_hits(migrated_dsn)
    assert [h.entry.content for h in text_hits][:2] == [FULL, PARTIAL]  # found second by text
    assert PARTIAL not in {h.entry.content for h in hits}
    assert sum(h.vector_rank is not None for h in hits) == 9


async def test_the_hybrid_text_leg_leaves_out_entries_holding_one_of_three_or_more_words(
    migrated_dsn: str,
) -> None:
    text_hits, hits = await _text_and_hybrid_hits(migrated_dsn)
    assert ONE in {h.entry.content for h in text_hits}  # a text search matches any word
    one = next(h for h in hits if h.entry.content == ONE)
    assert one.vector_rank == 1 and one.text_rank is None
