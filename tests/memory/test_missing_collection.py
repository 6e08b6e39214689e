"""A collection that does not exist reads like an empty one (search, count, find, get_by_key,
delete_where); delete_collection still raises CollectionNotFoundError. Nothing is created."""

from __future__ import annotations

import pytest

from sam_db.errors import CollectionNotFoundError
from sam_db.memory import MemoryStore


@pytest.mark.parametrize("mode", ["vector", "text", "hybrid"])
async def test_searching_a_missing_collection_finds_nothing(store: MemoryStore, mode: str) -> None:
    await store.add("raw_decode lives in default", collection="default")
    assert await store.search("raw_decode", collection="nowhere", mode=mode) == []


async def test_searching_a_missing_collection_by_vector_finds_nothing(store: MemoryStore) -> None:
    await store.add("something")
    vector = store.embedder.vector("something")  # type: ignore[attr-defined]
    assert await store.search_by_vector(vector, collection="nowhere") == []


async def test_counting_a_missing_collection_gives_zero(store: MemoryStore) -> None:
    assert await store.count(collection="nowhere", filter={"a": 1}) == 0


async def test_finding_in_a_missing_collection_gives_an_empty_page(store: MemoryStore) -> None:
    assert await store.find(collection="nowhere") == []


async def test_delete_where_in_a_missing_collection_deletes_nothing(store: MemoryStore) -> None:
    assert await store.delete_where(collection="nowhere", all=True) == 0


async def test_reading_a_missing_collection_does_not_create_it(store: MemoryStore) -> None:
    await store.search("q", collection="nowhere")
    await store.count(collection="nowhere")
    await store.find(collection="nowhere")
    assert await store.get_by_key("k", collection="nowhere") is None
    assert await store.list_collections() == []


async def test_deleting_a_missing_collection_still_raises(store: MemoryStore) -> None:
    with pytest.raises(CollectionNotFoundError):
        await store.delete_collection("nowhere")
