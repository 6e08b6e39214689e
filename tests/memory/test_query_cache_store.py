"""MemoryStore(query_cache_size=N): a repeated query skips the embedding call."""

from __future__ import annotations

import pytest

from sam_db.errors import ConfigurationError
from sam_db.memory import MemoryStore
from sam_db.testing import HashEmbedder


async def test_a_repeated_query_skips_the_embedding_call(migrated_dsn: str) -> None:
    embedder = HashEmbedder()
    async with MemoryStore(migrated_dsn, embedder, query_cache_size=8) as store:
        await store.add("remembered")
        first = await store.search("what was remembered?")
        before = embedder.texts_embedded
        again = await store.search("what was remembered?", mode="hybrid")
        assert embedder.texts_embedded == before
        assert again[0].similarity == pytest.approx(first[0].similarity)


async def test_without_a_cache_every_query_is_embedded(migrated_dsn: str) -> None:
    embedder = HashEmbedder()
    async with MemoryStore(migrated_dsn, embedder) as store:
        await store.search("q")
        await store.search("q")
        assert embedder.texts_embedded == 2


async def test_the_cache_keeps_the_last_queries_only(migrated_dsn: str) -> None:
    embedder = HashEmbedder()
    async with MemoryStore(migrated_dsn, embedder, query_cache_size=2) as store:
        for q in ("a", "b", "c", "a"):  # "a" was evicted by "c"
            await store.search(q)
        assert embedder.texts_embedded == 4


def test_a_bad_cache_size_is_a_configuration_error(migrated_dsn: str) -> None:
    with pytest.raises(ConfigurationError, match="query_cache_size"):
        MemoryStore(migrated_dsn, HashEmbedder(), query_cache_size=-1)
