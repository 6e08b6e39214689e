"""Reading the access log: which entries searches returned, how often, and the raw rows.

Searches write the log themselves, in their own statement (see ``_search``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from . import _inputs as inp
from ._checked import CheckedConnection
from ._models import AccessLogRecord, AccessStat
from ._rows import access_record_from_row, access_stat_from_row
from ._sql import Statements

Connect = Callable[..., CheckedConnection]  # the store's connect(read_only=False)

MAX_ROWS = 100_000  # the largest ``limit`` a read takes


async def most_accessed(
    connect: Connect, sql: Statements, collection: str, since: datetime | None, limit: int
) -> list[AccessStat]:
    """The live entries of ``collection`` searches returned most often (since ``since``)."""
    collection = inp.check_collection(collection)
    if since is not None:
        since = inp.check_aware(since, "since")
    limit = inp.check_int(limit, "limit", 1, MAX_ROWS)
    async with connect(read_only=True) as conn:
        rows = await conn.fetch(sql.most_accessed, collection, since, limit)
    return [access_stat_from_row(r, collection) for r in rows]


async def records(
    connect: Connect,
    sql: Statements,
    entry_id: uuid.UUID | str | None,
    collection: str | None,
    session_id: str | None,
    since: datetime | None,
    limit: int,
) -> list[AccessLogRecord]:
    """Raw log rows, newest first, optionally for one entry, collection or session."""
    eid = None if entry_id is None else inp.to_uuid(entry_id)
    if collection is not None:
        collection = inp.check_collection(collection)
    session_id = inp.check_link(session_id, "session_id")
    if since is not None:
        since = inp.check_aware(since, "since")
    limit = inp.check_int(limit, "limit", 1, MAX_ROWS)
    async with connect(read_only=True) as conn:
        rows = await conn.fetch(sql.access_records, eid, collection, session_id, since, limit)
    return [access_record_from_row(r) for r in rows]
