"""Fixtures of the memory tests: a migrated database, a store on it, the fake OpenAI server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from sam_db.memory import MemoryStore
from sam_db.testing import HashEmbedder

from .fake_openai import FakeOpenAI


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture
async def store(migrated_dsn: str, embedder: HashEmbedder) -> AsyncIterator[MemoryStore]:
    """A MemoryStore with its own pool on a fresh, migrated database, using HashEmbedder."""
    async with MemoryStore(migrated_dsn, embedder) as s:
        yield s


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    try:
        yield server
    finally:
        server.stop()
