"""pgvector before 0.8 (no iterative index scans): the schema, and the filtered-search fallback.

Runs against ``pgserver`` (PostgreSQL 16.2 + pgvector 0.6.2), where even naming
``hnsw.iterative_scan`` is an error: the store must notice at open and over-fetch instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from sam_db import migrate, status
from sam_db.memory import MemoryStore
from sam_db.testing import HashEmbedder

pytestmark = pytest.mark.slow


@pytest.fixture
async def old_store(old_server: str) -> AsyncIterator[MemoryStore]:
    await migrate(old_server)
    async with MemoryStore(old_server, HashEmbedder()) as store:
        yield store
    # Leave the module's server empty for the next test.
    conn = await asyncpg.connect(old_server)
    try:
        await conn.execute("TRUNCATE memory_collections CASCADE")
    finally:
        await conn.close()


async def test_the_bundled_migrations_apply_on_postgresql_16_with_pgvector_0_6(
    old_server: str,
) -> None:
    await migrate(old_server)
    assert {row.state for row in await status(old_server)} == {"applied"}


async def test_the_store_sees_no_iterative_scans_there(old_store: MemoryStore) -> None:
    assert old_store.iterative_scans is False


async def _analyze(dsn: str) -> None:
    """Gather memory_entries' statistics, as autovacuum does after inserts like the tests'.

    A table never analyzed has its row count guessed from its pages and its columns' assumed
    widths (32 bytes for each text, tsvector or jsonb column), a guess that moves whenever a
    column is added (migration 005's content_tsv and key took it from 270 to 242 rows for the
    400 below); at a few hundred rows that guess alone tips the plan between the index and a
    scan + sort (there the cheaper plan, and exact).
    """
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ANALYZE memory_entries")
    finally:
        await conn.close()


async def test_an_unfiltered_search_there_goes_through_the_index(
    old_server: str, old_store: MemoryStore
) -> None:
    await old_store.add_many([f"note {i}" for i in range(400)])
    await _analyze(old_server)
    plan = await old_store.explain_search("note 5", k=10)
    assert "Index Scan using memory_entries_embedding_hnsw_idx" in plan, plan
    hits = await old_store.search("note 5", k=10)
    assert len(hits) == 10
    assert hits[0].entry.content == "note 5"


async def test_a_filtered_search_there_still_returns_k_hits_through_the_index(
    old_server: str, old_store: MemoryStore
) -> None:
    texts = [f"note {i}" for i in range(400)]
    await old_store.add_many(texts, metadata=[{"bucket": i % 20} for i in range(400)])
    await _analyze(old_server)
    plan = await old_store.explain_search("note 5", k=10, filter={"bucket": 5})
    assert "Index Scan using memory_entries_embedding_hnsw_idx" in plan, plan
    hits = await old_store.search("note 5", k=10, filter={"bucket": 5})
    assert len(hits) == 10
    assert all(h.entry.metadata == {"bucket": 5} for h in hits)
    assert hits[0].entry.content == "note 5"


async def test_a_filter_with_fewer_matches_than_k_returns_all_of_them_there(
    old_store: MemoryStore,
) -> None:
    await old_store.add_many([f"row {i}" for i in range(200)], metadata={"kind": "bulk"})
    await old_store.add_many(["rare one", "rare two"], metadata={"kind": "rare"})
    hits = await old_store.search("rare", k=10, filter={"kind": "rare"})
    assert sorted(h.entry.content for h in hits) == ["rare one", "rare two"]
