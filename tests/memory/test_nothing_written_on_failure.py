"""An operation that fails writes nothing: no collection row, no renewed entry, no half batch.

Server-side failures are real PostgreSQL errors, raised by a trigger installed for the test.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest

from sam_db.errors import BatchWriteError, EmbeddingError, MemoryStoreError
from sam_db.memory import MemoryStore, embedder_from_function
from sam_db.testing import HashEmbedder

D = 1536
_hash = HashEmbedder()


async def _fetch(dsn: str, sql: str) -> list[Any]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


async def _collections(dsn: str) -> list[str]:
    return [r[0] for r in await _fetch(dsn, "SELECT name FROM memory_collections ORDER BY 1")]


async def _refuse_content(dsn: str, content: str) -> None:
    """Make PostgreSQL itself fail any insert of ``content`` (a BEFORE INSERT row trigger)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            f"""
            CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.content = '{content}' THEN RAISE EXCEPTION 'refused by test'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER refuse BEFORE INSERT ON memory_entries
                FOR EACH ROW EXECUTE FUNCTION refuse();
            """
        )
    finally:
        await conn.close()


def _failing_after(ok_texts: set[str]) -> Any:
    """An embedder that embeds ``ok_texts`` and fails on anything else."""

    def embed(texts: Sequence[str]) -> list[list[float]]:
        if not set(texts) <= ok_texts:
            raise EmbeddingError("provider down")
        return [_hash.vector(t) for t in texts]

    return embedder_from_function(embed, dimensions=D, model="hash-embedder")


async def test_an_embedding_failure_does_not_create_the_collection(migrated_dsn: str) -> None:
    async with MemoryStore(migrated_dsn, _failing_after(set())) as store:
        for _ in range(3):
            with pytest.raises(EmbeddingError):
                await store.add("hello", collection="new-one")
            with pytest.raises(EmbeddingError):
                await store.add_many(["a", "b"], collection="new-two")
        assert await store.list_collections() == []
    assert await _collections(migrated_dsn) == []


async def test_an_embedding_failure_does_not_renew_expired_entries(migrated_dsn: str) -> None:
    past = datetime.now(timezone.utc) - timedelta(days=1)
    async with MemoryStore(migrated_dsn, _failing_after({"old"})) as store:
        old = await store.add("old", metadata={"v": 1}, expires_at=past)
        with pytest.raises(EmbeddingError):
            await store.add_many(["old", "new"], metadata={"v": 2})
    rows = await _fetch(
        migrated_dsn, "SELECT content, metadata::text, expires_at FROM memory_entries"
    )
    assert [(r[0], r[1], r[2]) for r in rows] == [("old", '{"v": 1}', old.expires_at)]


async def test_a_failed_insert_into_a_new_collection_leaves_no_collection(
    migrated_dsn: str,
) -> None:
    await _refuse_content(migrated_dsn, "boom")
    async with MemoryStore(migrated_dsn, HashEmbedder()) as store:
        with pytest.raises(MemoryStoreError, match="refused by test"):
            await store.add("boom", collection="fresh")
        with pytest.raises(BatchWriteError, match="refused by test") as info:
            await store.add_many(["a", "boom", "c"], collection="fresh", batch_size=2)
        assert info.value.committed == 0 and info.value.entries == []
    assert await _collections(migrated_dsn) == []
    assert await _fetch(migrated_dsn, "SELECT 1 FROM memory_entries") == []


async def test_a_failed_first_batch_does_not_renew_expired_entries(migrated_dsn: str) -> None:
    await _refuse_content(migrated_dsn, "boom")
    past = datetime.now(timezone.utc) - timedelta(days=1)
    async with MemoryStore(migrated_dsn, HashEmbedder()) as store:
        old = await store.add("old", expires_at=past)
        with pytest.raises(BatchWriteError, match="refused by test"):
            await store.add_many(["old", "boom"], metadata={"v": 2})
    rows = await _fetch(
        migrated_dsn, "SELECT content, metadata::text, expires_at FROM memory_entries"
    )
    assert [(r[0], r[1], r[2]) for r in rows] == [("old", "{}", old.expires_at)]


async def test_a_later_failed_batch_keeps_the_committed_ones_as_documented(
    migrated_dsn: str,
) -> None:
    await _refuse_content(migrated_dsn, "t5")
    async with MemoryStore(migrated_dsn, HashEmbedder(), write_concurrency=1) as store:
        with pytest.raises(BatchWriteError) as info:
            await store.add_many([f"t{i}" for i in range(8)], collection="fresh", batch_size=2)
        assert info.value.batch == 2
        stored = sorted(e.content for e in info.value.entries)  # type: ignore[attr-defined]
    assert stored == ["t0", "t1", "t2", "t3"]
    rows = await _fetch(migrated_dsn, "SELECT content FROM memory_entries ORDER BY 1")
    assert [r[0] for r in rows] == stored
    assert await _collections(migrated_dsn) == ["fresh"]
