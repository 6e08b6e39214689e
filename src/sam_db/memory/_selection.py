"""Operations over a filter: count, find (keyset pages by id) and delete_where.

They select entries with the conditions a search applies: the collection, the metadata filter
compiled by ``_filters`` (the one compiler search uses) and the session. ``count`` and ``find``
see live entries only, as search does; ``delete_where`` also deletes expired entries that match,
which still hold their text until purged (deleting "everything of user X" must not leave any).
A collection that does not exist selects nothing: 0, ``[]``, 0.
"""

# ruff: noqa: S608 -- SQL here is built from quote_ident()-quoted names and placeholders only
from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from ..errors import InvalidInputError
from . import _inputs as inp
from ._checked import CheckedConnection
from ._filters import Params, compile_filter
from ._models import MemoryEntry
from ._rows import entry_from_row
from ._sql import LIVE, Statements

Connect = Callable[..., CheckedConnection]  # the store's connect(read_only=False)

MAX_FIND_LIMIT = 10_000  # entries in one page of find()


class Selection(NamedTuple):
    """The WHERE clause over ``e`` of one operation and its arguments (``$1`` is the
    collection's name)."""

    where: str
    args: list[Any]
    collection: str


def select(
    sql: Statements,
    collection: str,
    filter: Mapping[str, Any] | None,
    session_id: str | None,
    *,
    live: bool = True,
    start: int = 2,
) -> Selection:
    """The conditions of a search over ``collection``: filter, session and (``live``) expiry.

    Raises InvalidInputError / FilterError before anything is sent. Placeholders after ``$1``
    (the collection) are numbered from ``start``.
    """
    name = inp.check_collection(collection)
    session_id = inp.check_link(session_id, "session_id")
    params = Params(start=start)
    parts = [compile_filter(filter, params)]
    if session_id is not None:
        parts.append(f"e.session_id = {params.add(session_id)}")
    if live:
        parts.append(LIVE)
    collection_id = f"e.collection_id = (SELECT c.id FROM {sql.collections} c WHERE c.name = $1)"
    return Selection(" AND ".join([collection_id, *parts]), [name, *params.values], name)


async def count(
    connect: Connect,
    sql: Statements,
    collection: str,
    filter: Mapping[str, Any] | None,
    session_id: str | None,
) -> int:
    """How many live entries of ``collection`` match ``filter`` and ``session_id``."""
    selection = select(sql, collection, filter, session_id)
    text = f"SELECT count(*) FROM {sql.entries} e WHERE {selection.where}"
    async with connect(read_only=True) as conn:
        return int(await conn.fetchval(text, *selection.args))


def _after(after: object) -> uuid.UUID | None:
    if after is None:
        return None
    if isinstance(after, (uuid.UUID, str)):
        try:
            return inp.to_uuid(after)
        except InvalidInputError:
            pass
    raise InvalidInputError(
        f"after must be an entry id (a UUID or its str), e.g. page[-1].id, got {after!r}"
    )


async def find(
    connect: Connect,
    sql: Statements,
    collection: str,
    filter: Mapping[str, Any] | None,
    session_id: str | None,
    *,
    limit: int,
    after: uuid.UUID | str | None,
) -> list[MemoryEntry]:
    """Up to ``limit`` live matching entries ordered by id, those after the id ``after``.

    Keyset pagination: each page is an index range scan from ``after``, so every page costs
    the same however deep, and entries added or deleted meanwhile never shift a page.
    """
    limit = inp.check_int(limit, "limit", 1, MAX_FIND_LIMIT)
    start = _after(after)
    # Two statement texts, not `$2 IS NULL OR e.id > $2`: a generic plan of that OR could not
    # start the primary key's index scan at `after`.
    page = "" if start is None else " AND e.id > $2::uuid"
    selection = select(sql, collection, filter, session_id, start=2 if start is None else 3)
    text = (
        f"SELECT {sql.entry_columns} FROM {sql.entries} e "
        f"WHERE {selection.where}{page} ORDER BY e.id LIMIT {limit:d}"
    )
    name, *rest = selection.args
    args = [name, *rest] if start is None else [name, start, *rest]
    async with connect(read_only=True) as conn:
        rows = await conn.fetch(text, *args)
    return [entry_from_row(r, selection.collection) for r in rows]


async def delete_where(
    connect: Connect,
    sql: Statements,
    collection: str,
    filter: Mapping[str, Any] | None,
    session_id: str | None,
    *,
    all: bool,
) -> int:
    """Delete the entries of ``collection`` matching ``filter`` and ``session_id`` (expired
    ones too); returns how many. Without a filter or a session, ``all=True`` is required."""
    _check_scope(filter, session_id, all)
    selection = select(sql, collection, filter, session_id, live=False)
    text = (
        f"WITH d AS (DELETE FROM {sql.entries} e WHERE {selection.where} RETURNING 1) "
        "SELECT count(*) FROM d"
    )
    async with connect() as conn:
        return int(await conn.fetchval(text, *selection.args))


def _check_scope(filter: object, session_id: object, all: object) -> None:
    if not isinstance(all, bool):
        raise InvalidInputError(f"all must be True or False, got {all!r}")
    narrowed = bool(filter) or session_id is not None
    if all and narrowed:
        raise InvalidInputError(
            "all=True deletes every entry of the collection: pass a filter / session_id, "
            "or all=True, not both"
        )
    if not all and not narrowed:
        raise InvalidInputError(
            "delete_where needs a filter or a session_id; to delete every entry of the "
            "collection pass all=True (or use delete_collection to drop it)"
        )
