"""Collections: create (or describe), list, and delete one with its entries and their log."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import CollectionNotFoundError
from . import _inputs as inp
from ._checked import CheckedConnection
from ._models import Collection
from ._rows import collection_from_row
from ._sql import Statements

Connect = Callable[..., CheckedConnection]  # the store's connect(read_only=False)


async def create(
    connect: Connect,
    sql: Statements,
    name: str,
    description: str | None,
    metadata: Mapping[str, Any] | None,
) -> Collection:
    """Create a collection, or update the description/metadata given for an existing one."""
    name = inp.check_collection(name)
    if description is not None:
        inp.check_text(description, what="description")
    meta = None if metadata is None else inp.metadata_json(metadata)
    async with connect() as conn:
        row = await conn.fetchrow(sql.collection_upsert, name, description, meta)
    assert row is not None
    return collection_from_row(row)


async def list_all(connect: Connect, sql: Statements) -> list[Collection]:
    """All collections by name, each with its number of live entries."""
    async with connect(read_only=True) as conn:
        rows = await conn.fetch(sql.collection_list)
    return [collection_from_row(r) for r in rows]


async def delete(connect: Connect, sql: Statements, name: str) -> int:
    """Delete a collection; returns how many entries it had (CollectionNotFoundError if none)."""
    name = inp.check_collection(name)
    async with connect() as conn, conn.transaction():
        row = await conn.fetchrow(sql.collection_delete, name)
    if row is None or not row["deleted"]:
        raise CollectionNotFoundError.named(name)
    return int(row["entries"] or 0)
