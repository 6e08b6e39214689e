"""Search behaviour on small data: order, k, thresholds, sessions, access log, settings hygiene."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from sam_db.errors import DimensionMismatchError, InvalidInputError
from sam_db.memory import MemoryStore, SearchHit
from sam_db.testing import HashEmbedder


async def test_search_returns_hits_best_first_with_cosine_similarity(
    store: MemoryStore, embedder: HashEmbedder
) -> None:
    await store.add_many([f"fact {i}" for i in range(20)])
    hits = await store.search("fact 7", k=5)
    assert all(isinstance(h, SearchHit) for h in hits)
    assert hits[0].entry.content == "fact 7"
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    sims = [h.similarity for h in hits]
    assert sims == sorted(sims, reverse=True)
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    q = embedder.vector("fact 7")
    for h in hits[1:]:
        v = embedder.vector(h.entry.content)
        assert h.similarity == pytest.approx(
            sum(a * b for a, b in zip(q, v, strict=True)), abs=1e-4
        )


async def test_search_returns_at_most_k_and_all_when_fewer(store: MemoryStore) -> None:
    await store.add_many([f"item {i}" for i in range(12)])
    assert len(await store.search("item", k=5)) == 5
    assert len(await store.search("item", k=1000)) == 12


async def test_search_of_an_unknown_collection_is_empty_and_creates_nothing(
    store: MemoryStore,
) -> None:
    assert await store.search("anything", collection="nowhere") == []
    assert await store.list_collections() == []


async def test_search_keeps_to_its_collection(store: MemoryStore) -> None:
    await store.add("same text", collection="a")
    b = await store.add("same text", collection="b")
    hits = await store.search("same text", collection="b", k=10)
    assert [h.entry.id for h in hits] == [b.id]


async def test_min_similarity_drops_weaker_hits(store: MemoryStore) -> None:
    await store.add_many(["alpha", "beta", "gamma"])
    hits = await store.search("alpha", k=3, min_similarity=0.5)
    assert [h.entry.content for h in hits] == ["alpha"]


async def test_session_id_keeps_entries_of_that_session(store: MemoryStore) -> None:
    await store.add("mine", session_id="s1")
    await store.add("theirs", session_id="s2")
    hits = await store.search("theirs", k=10, session_id="s1")
    assert [h.entry.content for h in hits] == ["mine"]


async def test_search_by_vector_uses_the_given_vector(
    store: MemoryStore, embedder: HashEmbedder
) -> None:
    e = await store.add("by vector")
    hits = await store.search_by_vector(embedder.vector("by vector"), k=1)
    assert hits[0].entry.id == e.id
    with pytest.raises(DimensionMismatchError):
        await store.search_by_vector([1.0, 2.0])
    with pytest.raises(InvalidInputError):
        await store.search_by_vector([float("nan")] * 1536)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"k": 0},
        {"k": 1001},
        {"k": True},
        {"ef_search": 0},
        {"ef_search": 1001},
        {"min_similarity": 2},
        {"collection": ""},
        {"session_id": ""},
    ],
)
async def test_bad_search_arguments_are_refused(
    store: MemoryStore, kwargs: dict[str, object]
) -> None:
    with pytest.raises(InvalidInputError):
        await store.search("q", **kwargs)  # type: ignore[arg-type]


async def test_empty_query_is_refused(store: MemoryStore) -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        await store.search("")


# -- access log ----------------------------------------------------------------------------------


async def test_each_search_logs_one_row_per_returned_entry(store: MemoryStore) -> None:
    await store.add_many(["one", "two", "three"])
    hits = await store.search("two", k=2, session_id=None)
    records = await store.access_records()
    assert len(records) == 2
    by_rank = sorted(records, key=lambda r: r.rank)
    assert [r.entry_id for r in by_rank] == [h.entry.id for h in hits]
    assert [r.similarity for r in by_rank] == pytest.approx([h.similarity for h in hits], abs=1e-5)
    assert {r.query for r in records} == {"two"}
    assert len({r.query_hash for r in records}) == 1


async def test_access_log_records_the_session(store: MemoryStore) -> None:
    await store.add("session memory", session_id="s9")
    await store.search("session memory", session_id="s9")
    [record] = await store.access_records(session_id="s9")
    assert record.session_id == "s9"


async def test_access_log_can_be_turned_off_per_call_and_per_store(
    store: MemoryStore, migrated_dsn: str
) -> None:
    await store.add("quiet")
    await store.search("quiet", log=False)
    assert await store.access_records() == []
    async with MemoryStore(migrated_dsn, HashEmbedder(), access_log=False) as quiet:
        await quiet.search("quiet")
        assert await quiet.access_records() == []
        await quiet.search("quiet", log=True)
        assert len(await quiet.access_records()) == 1


async def test_a_logged_search_does_not_wait_for_a_writer_of_its_entries(
    store: MemoryStore, migrated_dsn: str
) -> None:
    # The log has no foreign keys: writing it takes no lock on the entries it records.
    entry = await store.add("being edited")
    conn = await asyncpg.connect(migrated_dsn)
    try:
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM memory_entries WHERE id = $1 FOR UPDATE", entry.id)
            hits = await asyncio.wait_for(store.search("being edited", k=1, log=True), 5)
    finally:
        await conn.close()
    assert [h.entry.id for h in hits] == [entry.id]
    assert [r.entry_id for r in await store.access_records(entry_id=entry.id)] == [entry.id]


async def test_deleting_an_entry_deletes_its_log_rows(store: MemoryStore) -> None:
    entry = await store.add("forget me")
    await store.search("forget me", k=1)
    assert len(await store.access_records(entry_id=entry.id)) == 1
    await store.delete(entry.id)
    assert await store.access_records(entry_id=entry.id) == []


async def test_query_text_can_be_kept_out_of_the_log(migrated_dsn: str) -> None:
    async with MemoryStore(migrated_dsn, HashEmbedder(), log_query_text=False) as store:
        await store.add("private")
        await store.search("private")
        [record] = await store.access_records()
    assert record.query is None
    assert len(record.query_hash) == 32


async def test_most_accessed_counts_returns_per_entry(store: MemoryStore) -> None:
    a, b, _ = await store.add_many(["apple", "banana", "cherry"])
    for _ in range(3):
        await store.search("apple", k=1)
    await store.search("banana", k=1)
    stats = await store.most_accessed("default", limit=2)
    assert [(s.entry.id, s.access_count) for s in stats] == [(a.id, 3), (b.id, 1)]
    assert stats[0].mean_similarity == pytest.approx(1.0, abs=1e-5)
    later = datetime.now(timezone.utc) + timedelta(seconds=5)
    assert await store.most_accessed("default", since=later) == []


# -- settings hygiene ----------------------------------------------------------------------------


async def test_search_settings_do_not_leak_to_the_pooled_connection(migrated_dsn: str) -> None:
    pool = await asyncpg.create_pool(migrated_dsn, min_size=1, max_size=1)
    try:
        async with MemoryStore(pool, HashEmbedder(), ef_search=77) as store:
            await store.add("leak check")
            await store.search("leak check", filter={"a": 1})
            await store.search("leak check", exact=True)
        settings = await pool.fetchrow(
            "SELECT current_setting('enable_seqscan') AS seqscan, "
            "current_setting('enable_indexscan') AS indexscan, "
            "current_setting('enable_sort') AS sort, "
            "current_setting('hnsw.ef_search') AS ef, "
            "current_setting('hnsw.iterative_scan', true) AS iterative"
        )
    finally:
        await pool.close()
    assert settings is not None
    assert (settings["seqscan"], settings["indexscan"], settings["sort"]) == ("on", "on", "on")
    assert settings["ef"] == "40"
    assert settings["iterative"] in (None, "off")


async def test_a_search_is_one_statement_outside_any_transaction(migrated_dsn: str) -> None:
    queries: list[str] = []

    async def init(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(lambda record: queries.append(record.query))

    pool = await asyncpg.create_pool(migrated_dsn, min_size=1, max_size=1, init=init)
    try:
        async with MemoryStore(pool, HashEmbedder()) as store:
            await store.add("one trip", metadata={"a": 1})
            await store.search("one trip", k=1, filter={"a": 1}, log=True)
            queries.clear()
            # k hits found by the index: no exact re-run, so one statement each.
            assert len(await store.search("one trip", k=1, filter={"a": 1}, log=True)) == 1
            assert len(await store.search("one trip", k=1, log=False)) == 1
    finally:
        await pool.close()
    # What the store sent, without the borrowed pool's own reset query on each release.
    sent = [q for q in queries if not q.startswith("SELECT pg_advisory_unlock_all()")]
    assert len(sent) == 2, sent
    assert all(q.startswith("/* sam_db hnsw search */") for q in sent), sent


async def test_explain_of_exact_mode_shows_no_hnsw_index(store: MemoryStore) -> None:
    await store.add("plan")
    plan = await store.explain_search("plan", exact=True)
    assert "hnsw" not in plan
    assert "memory_entries" in plan
