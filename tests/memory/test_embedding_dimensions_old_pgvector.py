"""The generated embedding-size migration on pgvector 0.6.2 (``pgserver``), which has no halfvec:
a ``vector(N)`` migration works, a ``halfvec`` one refuses with a hint (upgrade pgvector)."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest

import sam_db
from sam_db._ident import quote_ident
from sam_db.errors import MigrationError
from sam_db.memory import MemoryStore
from sam_db.testing import HashEmbedder
from sam_db.testing._server import with_database

pytestmark = pytest.mark.slow


@pytest.fixture
async def old_db(old_server: str) -> str:
    """A fresh database on the old server."""
    name = f"dims_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(old_server)
    try:
        await conn.execute(f"CREATE DATABASE {quote_ident(name)}")
    finally:
        await conn.close()
    return with_database(old_server, name)


async def test_halfvec_migration_asks_for_a_newer_pgvector(old_db: str, tmp_path: Path) -> None:
    sam_db.memory_dimensions_migration(3072, half=True, folder=tmp_path)
    with pytest.raises(MigrationError, match=r"pgvector 0\.7 or later"):
        await sam_db.migrate(old_db, sources=[tmp_path])


async def test_vector_migration_works_on_old_pgvector(old_db: str, tmp_path: Path) -> None:
    sam_db.memory_dimensions_migration(384, folder=tmp_path)
    await sam_db.migrate(old_db, sources=[tmp_path])
    async with MemoryStore(old_db, HashEmbedder(384)) as store:
        e = await store.add("a 384-dimensional memory on pgvector 0.6")
        assert (await store.search("a 384-dimensional memory on pgvector 0.6", k=1))[0].entry == e
        await store.delete(e.id)
    await sam_db.rollback(old_db, sources=[tmp_path])
    async with MemoryStore(old_db, HashEmbedder()) as store:
        assert await store.search("anything") == []
