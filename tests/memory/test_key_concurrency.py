"""Concurrent writers of one key or one text: nothing lost, nothing stored twice (the unique
constraints decide, and a writer that lost a race plans again)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from sam_db.memory import MemoryStore
from sam_db.testing import HashEmbedder

ROUNDS = 8
WRITERS = 6


@pytest.fixture
async def wide_store(migrated_dsn: str) -> MemoryStore:  # type: ignore[misc]
    async with MemoryStore(migrated_dsn, HashEmbedder(), max_connections=WRITERS + 2) as s:
        yield s


async def test_concurrent_adds_of_one_key_leave_one_entry_with_one_of_their_texts(
    wide_store: MemoryStore,
) -> None:
    for r in range(ROUNDS):
        texts = [f"round {r} writer {w}" for w in range(WRITERS)]
        out = await asyncio.gather(*(wide_store.add(t, key=f"k{r}") for t in texts))
        assert len({e.id for e in out}) == 1
        stored = await wide_store.get_by_key(f"k{r}")
        assert stored is not None and stored.content in texts
        assert await wide_store.count(filter={}) == r + 1


async def test_concurrent_adds_of_one_key_and_text_store_it_once(wide_store: MemoryStore) -> None:
    for r in range(ROUNDS):
        adds = [wide_store.add(f"same {r}", key=f"k{r}", metadata={"w": w}) for w in range(WRITERS)]
        out = await asyncio.gather(*adds)
        assert len({e.id for e in out}) == 1
    assert await wide_store.count() == ROUNDS


async def test_a_keyed_and_a_keyless_add_of_one_text_at_once_store_it_once(
    wide_store: MemoryStore,
) -> None:
    for r in range(ROUNDS):
        keyed, plain = await asyncio.gather(
            wide_store.add(f"text {r}", key=f"k{r}"), wide_store.add(f"text {r}")
        )
        assert keyed.id == plain.id
        assert (await wide_store.get_by_key(f"k{r}")) is not None
    assert await wide_store.count() == ROUNDS


async def test_overlapping_keyed_add_many_calls_finish_with_every_key_once(
    wide_store: MemoryStore,
) -> None:
    keys = [f"k{i}" for i in range(40)]

    async def writer(w: int) -> None:
        order = keys if w % 2 == 0 else list(reversed(keys))
        await wide_store.add_many([f"{k} by {w}" for k in order], keys=order, batch_size=7)

    await asyncio.gather(*(writer(w) for w in range(WRITERS)))
    found = await wide_store.find(limit=1000)
    assert sorted(e.key for e in found) == sorted(keys)  # type: ignore[type-var]


class _MeddlingEmbedder(HashEmbedder):
    """Runs ``meddle`` (another writer's change) during its first embedding call: between the
    store's read of what is stored and its write."""

    def __init__(self) -> None:
        super().__init__()
        self.meddle: Any = None

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        meddle, self.meddle = self.meddle, None
        if meddle is not None:
            await meddle()
        return await super().embed(texts)


async def test_a_key_changed_between_read_and_write_is_written_with_its_own_vector(
    migrated_dsn: str,
) -> None:
    embedder = _MeddlingEmbedder()
    async with MemoryStore(migrated_dsn, embedder) as store:
        await store.add("text b", key="b")
        # The call reads "b" as holding "text b" (no embedding needed), embeds "text a"; meanwhile
        # another writer gives "b" a new text, so the vector the call meant to reuse is gone.
        embedder.meddle = lambda: store.add("text c", key="b")
        out = await store.add_many(["text a", "text b"], keys=["a", "b"])
        assert [e.content for e in out] == ["text a", "text b"]
        (hit,) = await store.search("text b", k=1, log=False)
        assert hit.entry.key == "b" and hit.similarity == pytest.approx(1.0)
