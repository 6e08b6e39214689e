"""search(mode="text" | "hybrid"): full-text search over content, and RRF fusion with the vector
ranking in one statement (migration 005). HashEmbedder's vectors carry no meaning, so what the
text leg finds is the text leg's doing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sam_db.errors import ConfigurationError, InvalidInputError
from sam_db.memory import MemoryStore

PASSAGES = [
    "json.JSONDecoder.raw_decode(s): decode a JSON document from the start of a string.",
    "Seek to the start of the file with os.SEEK_SET, the default whence value.",
    "ipaddress.IPv4Interface represents an address on a network, like 192.0.2.5/24.",
    "pylint reports E0401 when an import cannot be resolved.",
    "The loader reads settings from config/decoder.py at start-up.",
    "Version v3.12.1 fixed the decoder's handling of surrogates.",
    "Decoding text means turning bytes into characters with a codec.",
    "The weather was pleasant and nobody wrote any code that day.",
]


async def _load(store: MemoryStore, **kw: object) -> None:
    await store.add_many(PASSAGES, metadata=[{"i": i} for i in range(len(PASSAGES))], **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "target"),
    [
        ("how do I use raw_decode?", 0),
        ("what does os.SEEK_SET mean for seek", 1),
        ("is there an IPv4Interface example", 2),
        ("why do I get E0401 from the linter", 3),
        ("where is decoder.py read", 4),
        ("what changed in v3.12.1", 5),
    ],
)
async def test_text_search_finds_identifiers_in_questions_with_ordinary_words(
    store: MemoryStore, query: str, target: int
) -> None:
    await _load(store)
    hits = await store.search(query, k=3, mode="text")
    assert hits[0].entry.metadata == {"i": target}


async def test_text_search_makes_no_embedding_call(store: MemoryStore) -> None:
    await _load(store)
    before = store.embedder.texts_embedded  # type: ignore[attr-defined]
    await store.search("raw_decode", mode="text")
    assert store.embedder.texts_embedded == before  # type: ignore[attr-defined]


async def test_text_hits_have_a_text_rank_and_no_similarity(store: MemoryStore) -> None:
    await _load(store)
    hits = await store.search("decoder decode", k=10, mode="text")
    assert [h.text_rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(h.vector_rank is None and h.similarity is None for h in hits)


async def test_a_query_matches_entries_with_any_of_its_words(store: MemoryStore) -> None:
    await _load(store)
    hits = await store.search("pleasant zebra xylophone", mode="text")
    assert [h.entry.metadata["i"] for h in hits] == [7]


async def test_stemming_lets_a_word_find_its_other_forms(store: MemoryStore) -> None:
    await _load(store)
    hits = await store.search("decoded", k=10, mode="text")
    assert {0, 6} <= {h.entry.metadata["i"] for h in hits}


async def test_a_query_of_stop_words_only_finds_nothing(store: MemoryStore) -> None:
    await _load(store)
    assert await store.search("how do I", mode="text") == []


async def test_vector_hits_carry_their_vector_rank(store: MemoryStore) -> None:
    await _load(store)
    hits = await store.search("anything", k=3)
    assert [(h.vector_rank, h.text_rank) for h in hits] == [(1, None), (2, None), (3, None)]


async def test_hybrid_hits_keep_the_cosine_similarity(store: MemoryStore) -> None:
    await _load(store)
    vector = {h.entry.id: h.similarity for h in await store.search("raw_decode", k=8)}
    hybrid = await store.search("raw_decode", k=8, mode="hybrid")
    assert len(hybrid) == 8
    for h in hybrid:
        assert h.similarity == pytest.approx(vector[h.entry.id], abs=1e-6)


async def test_hybrid_ranks_an_entry_both_legs_found_first(store: MemoryStore) -> None:
    await _load(store)
    # HashEmbedder gives identical texts identical vectors: the vector leg's first hit is the
    # passage itself, which the text leg also ranks first.
    hits = await store.search(PASSAGES[3], k=3, mode="hybrid")
    assert hits[0].entry.metadata == {"i": 3}
    assert (hits[0].vector_rank, hits[0].text_rank) == (1, 1)


async def test_hybrid_finds_what_only_the_text_leg_finds(store: MemoryStore) -> None:
    await _load(store)
    hits = await store.search("raw_decode", k=3, mode="hybrid")
    found = {h.entry.metadata["i"]: h for h in hits}
    assert 0 in found and found[0].text_rank == 1


async def test_hybrid_returns_k_hits_whenever_k_match(store: MemoryStore) -> None:
    await store.add_many(
        [f"note {i} about nothing in particular" for i in range(300)],
        metadata=[{"g": i % 50} for i in range(300)],
    )
    hits = await store.search("raw_decode", k=6, filter={"g": 7}, mode="hybrid")
    assert len(hits) == 6 and all(h.entry.metadata == {"g": 7} for h in hits)


async def test_both_legs_obey_collection_filter_session_and_expiry(store: MemoryStore) -> None:
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    await store.add("raw_decode in another collection", collection="other")
    await store.add("raw_decode of another session", session_id="s2")
    await store.add("raw_decode expired", expires_at=past)
    await store.add("raw_decode with the wrong tag", metadata={"tag": "b"})
    await store.add("raw_decode wanted", metadata={"tag": "a"}, session_id="s1")
    for mode in ("text", "hybrid"):
        hits = await store.search(
            "raw_decode", k=10, filter={"tag": "a"}, session_id="s1", mode=mode
        )
        assert [h.entry.content for h in hits] == ["raw_decode wanted"], mode


async def test_the_text_leg_obeys_new_filter_operators(store: MemoryStore) -> None:
    await _load(store)
    hits = await store.search("decode", k=10, filter={"i": {"$between": [5, 6]}}, mode="text")
    assert {h.entry.metadata["i"] for h in hits} == {5, 6}


async def test_the_hybrid_vector_leg_uses_the_hnsw_index(store: MemoryStore) -> None:
    await _load(store)
    plan = await store.explain_search("raw_decode", filter={"i": 1}, mode="hybrid")
    assert "memory_entries_embedding_hnsw_idx" in plan
    assert "memory_entries_content_tsv_idx" in plan or "content_tsv @@" in plan


async def test_hybrid_search_is_one_statement(store: MemoryStore) -> None:
    from sam_db.memory._search import prepare, statement

    request = prepare(
        store._opened(), store, "default", 5, None, None, None, None, False, None, "hybrid"
    )
    text, _ = statement(request, None, False, None, "q")
    assert text.count(";") == 0 and "FULL JOIN" in text


async def test_a_bad_mode_raises_before_any_work(store: MemoryStore) -> None:
    with pytest.raises(InvalidInputError, match="mode must be one of"):
        await store.search("q", mode="keyword")
    assert store.embedder.texts_embedded == 0  # type: ignore[attr-defined]


async def test_text_mode_refuses_min_similarity(store: MemoryStore) -> None:
    with pytest.raises(InvalidInputError, match="min_similarity"):
        await store.search("q", mode="text", min_similarity=0.5)


async def test_text_and_hybrid_modes_refuse_log_true(store: MemoryStore) -> None:
    for mode in ("text", "hybrid"):
        with pytest.raises(InvalidInputError, match="log=True"):
            await store.search("q", mode=mode, log=True)


async def test_text_and_hybrid_searches_write_no_access_log(store: MemoryStore) -> None:
    await _load(store)
    await store.search("raw_decode", mode="text")
    await store.search("raw_decode", mode="hybrid")
    assert await store.access_records() == []


async def test_text_search_without_migration_005_is_a_configuration_error(db_dsn: str) -> None:
    from sam_db import migrate
    from sam_db.testing import HashEmbedder

    await migrate(db_dsn, target="004")
    async with MemoryStore(db_dsn, HashEmbedder()) as store:
        await store.add("raw_decode")
        with pytest.raises(ConfigurationError, match="migration 005"):
            await store.search("raw_decode", mode="text")
        assert len(await store.search("raw_decode")) == 1  # vector search is unaffected
