"""Entries by id: read one, delete some, and purge the expired ones."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

from . import _inputs as inp
from ._checked import CheckedConnection
from ._models import MemoryEntry
from ._rows import entry_from_row
from ._sql import Statements

Connect = Callable[..., CheckedConnection]  # the store's connect(read_only=False)


async def get(connect: Connect, sql: Statements, entry_id: uuid.UUID | str) -> MemoryEntry | None:
    """The entry with this id, or None when there is none or it has expired."""
    eid = inp.to_uuid(entry_id)
    async with connect(read_only=True) as conn:
        row = await conn.fetchrow(sql.get, eid)
    return None if row is None else entry_from_row(row, row["collection"])


async def delete(
    connect: Connect, sql: Statements, entry_id_or_ids: uuid.UUID | str | Sequence[uuid.UUID | str]
) -> int:
    """Delete one entry or several; returns how many existed (their access log goes too)."""
    ids = inp.to_uuids(entry_id_or_ids)
    if not ids:
        return 0
    async with connect() as conn:
        return int(await conn.fetchval(sql.delete, ids))


async def purge_expired(connect: Connect, sql: Statements, collection: str | None) -> int:
    """Delete expired entries (of one collection, or all) in SQL; returns how many."""
    async with connect() as conn:
        if collection is None:
            return int(await conn.fetchval(sql.purge_all))
        return int(await conn.fetchval(sql.purge_collection, inp.check_collection(collection)))
