"""Reading the access log: which entries searches returned, how often, and the raw rows.

Searches write the log themselves, in their own statement (see ``_search``), or hand their rows
to the store's buffer (see ``_log_buffer``). ``purge`` deletes old rows (retention).
"""

# ruff: noqa: S608 -- SQL here is built from quote_ident()-quoted names and placeholders only

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ..errors import InvalidInputError
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


def cutoff(
    older_than: object, collection: object
) -> tuple[datetime | None, timedelta | None, str | None]:
    """``purge``'s arguments checked: (an aware datetime or None, an age or None, collection)."""
    if collection is not None:
        collection = inp.check_collection(collection)
    if isinstance(older_than, timedelta):
        if older_than < timedelta(0):
            raise InvalidInputError(
                f"older_than must be an age of zero or more, got {older_than!r}: "
                "e.g. timedelta(days=30)"
            )
        return None, older_than, collection
    if isinstance(older_than, datetime):
        return inp.check_aware(older_than, "older_than"), None, collection
    raise InvalidInputError(
        "older_than must be a timedelta (an age, e.g. timedelta(days=30)) or a timezone-aware "
        f"datetime, got {older_than!r}"
    )


async def purge(
    connect: Connect,
    sql: Statements,
    before: datetime | None,
    age: timedelta | None,
    collection: str | None,
) -> int:
    """Delete log rows written before ``before`` (or older than ``age`` by the server's clock),
    of ``collection`` or all; returns how many."""
    statement = (
        f"WITH d AS (DELETE FROM {sql.access_log} l "
        "WHERE l.accessed_at < COALESCE($1::timestamptz, now() - $2::interval) "
        f"AND ($3::text IS NULL OR l.collection_id = (SELECT c.id FROM {sql.collections} c "
        "WHERE c.name = $3)) RETURNING 1) SELECT count(*) FROM d"
    )
    args: tuple[Any, ...] = (before, age, collection)
    async with connect() as conn:
        return int(await conn.fetchval(statement, *args))
