"""Fixtures of the memory tests: a migrated database, a store on it, the fake OpenAI server."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

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


@pytest.fixture(scope="module")
def old_server() -> Iterator[str]:
    """A PostgreSQL 16 + pgvector 0.6.2 server (pgserver), the old-pgvector target, per module.

    Tests using it are skipped, with the reason, when pgserver is not installed.
    """
    pgserver = pytest.importorskip(
        "pgserver",
        reason="pgserver (PostgreSQL 16 + pgvector 0.6.2, the old-pgvector target) is not "
        "installed; it comes with sam-db[dev] on Python 3.10-3.12",
    )
    with tempfile.TemporaryDirectory(prefix="sam_db_pg16_") as tmp:
        server: Any = pgserver.get_server(tmp, cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()
