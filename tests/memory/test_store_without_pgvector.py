"""A store on a server without pgvector: open() raises ExtensionMissingError, not a plain
MemoryStoreError, and says what to do.

Uses the private PostgreSQL 15 cluster (Debian's ``postgresql-15``, no pgvector package) of
tests/test_no_pgvector.py.
"""

from __future__ import annotations

import pytest

import sam_db
from sam_db.errors import ExtensionMissingError, MemoryStoreError
from sam_db.memory import MemoryStore
from sam_db.testing import HashEmbedder
from tests.test_no_pgvector import (  # noqa: F401 -- the cluster's fixtures and its skip rule
    pg15_dsn,
    pg15_socket_dir,
    pytestmark,
)


async def test_opening_a_store_without_pgvector_raises_extension_missing_error(
    pg15_dsn: str,  # noqa: F811 -- the imported fixture, requested by name
) -> None:
    store = MemoryStore(pg15_dsn, HashEmbedder())
    with pytest.raises(ExtensionMissingError) as info:
        await store.open()
    assert info.value.extension == "vector"
    assert not isinstance(info.value, MemoryStoreError)
    message = str(info.value)
    assert "install pgvector" in message
    assert "sam_db.migrate" in message


async def test_a_store_after_the_failed_migration_raises_extension_missing_error(
    pg15_dsn: str,  # noqa: F811 -- the imported fixture, requested by name
) -> None:
    with pytest.raises(ExtensionMissingError):
        await sam_db.migrate(pg15_dsn)  # 001-003 stay applied, 004 needs pgvector
    with pytest.raises(ExtensionMissingError):
        async with MemoryStore(pg15_dsn, HashEmbedder()):
            pass
