"""One attempt at a keyed write (see ``_keys``): read what the keys and texts hold, embed only
the texts no entry holds, then write batches, one transaction each.

A batch's transaction, rows sorted by key so that overlapping writers lock in one order:
1. delete expired entries that hold one of its texts under another key (or none);
2. give live keyless entries holding one of its texts their key, where that key is new;
3. ``INSERT ... ON CONFLICT (collection_id, key) DO UPDATE``: new keys inserted, stored keys
   replaced. A text sent without a vector (its entry already holds it) takes the vector of the
   entry of the collection that holds it; when that entry is gone meanwhile, the NOT NULL
   violation sends the call back to a fresh read (``_keys``).
"""

# ruff: noqa: S608 -- SQL here is built from quote_ident()-quoted names and placeholders only
from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

import asyncpg

from .._driver_errors import write_error
from ..errors import BatchWriteError, InvalidInputError
from ._inputs import MAX_BATCH_CHARS
from ._models import MemoryEntry
from ._rows import entry_from_row
from ._sql import LIVE, Statements
from ._transaction import in_transaction
from ._vectors import embed_texts
from ._write import WriteContext
from ._write_batches import batches, create_collection_id

# Lost races, after which ``_keys`` plans the call again from a fresh read: a unique violation
# on the constraint that was not the arbiter, a NOT NULL violation (the vector to reuse was
# gone), a deadlock between overlapping batches.
RETRIED = (
    asyncpg.UniqueViolationError,
    asyncpg.NotNullViolationError,
    asyncpg.DeadlockDetectedError,
)


class KeyedRow(NamedTuple):
    """One keyed text of a call."""

    position: int  # in the input
    key: str
    text: str
    content_hash: bytes
    metadata: str  # JSON


class KeyedCall(NamedTuple):
    """What every row of one keyed call has in common."""

    collection: str
    session_id: str | None
    workflow_id: str | None
    expiry: datetime | None
    single: bool  # add(): failures raise as themselves, not as BatchWriteError
    batch_size: int


class _Holder(NamedTuple):
    """A stored entry holding a key or a text of the call."""

    id: Any
    key: str | None
    content_hash: bytes
    expired: bool


def _read_sql(sql: Statements) -> str:
    return (
        f"SELECT e.id, e.key, e.content_hash, NOT {LIVE} AS expired FROM {sql.entries} e "
        "WHERE e.collection_id = $1 AND (e.key = ANY($2::text[]) OR e.content_hash = ANY($3))"
    )


async def _read(
    ctx: WriteContext, call: KeyedCall, rows: list[KeyedRow]
) -> tuple[int | None, dict[str, _Holder], dict[bytes, _Holder]]:
    """The collection's id and the entries holding the rows' keys and texts (reads only)."""
    async with ctx.connect(read_only=True) as conn:
        cid = await conn.fetchval(ctx.sql.collection_id, call.collection)
        found = []
        if cid is not None:
            keys, hashes = [r.key for r in rows], [r.content_hash for r in rows]
            found = await conn.fetch(_read_sql(ctx.sql), cid, keys, hashes)
    holders = [_Holder(f["id"], f["key"], bytes(f["content_hash"]), f["expired"]) for f in found]
    by_key = {h.key: h for h in holders if h.key is not None}
    by_hash = {h.content_hash: h for h in holders}
    return cid, by_key, by_hash


def _needs_vector(
    row: KeyedRow, single: bool, by_key: dict[str, _Holder], by_hash: dict[bytes, _Holder]
) -> bool:
    """Whether ``row``'s text must be embedded; raises when another entry holds it."""
    holder = by_hash.get(row.content_hash)
    if holder is None or holder.key == row.key:
        return holder is None
    if holder.expired:
        return True  # deleted by the write: an expired entry is as good as gone
    what = "text" if single else f"texts[{row.position}]"
    if holder.key is not None:
        raise InvalidInputError(
            f"{what} is already stored as entry {holder.id} under key {holder.key!r}: a "
            "collection stores a text once; change that key's text first, or delete it"
        )
    if row.key in by_key:
        raise InvalidInputError(
            f"{what} is already stored as entry {holder.id}, without a key, and key "
            f"{row.key!r} names another entry: delete one of the two first"
        )
    return False  # the keyless entry takes the key


async def write_attempt(
    ctx: WriteContext, call: KeyedCall, rows: list[KeyedRow], done: dict[str, MemoryEntry]
) -> None:
    """Read, embed what is new, write every batch of ``rows``; stored entries go to ``done``."""
    cid, by_key, by_hash = await _read(ctx, call, rows)
    embed = [r for r in rows if _needs_vector(r, call.single, by_key, by_hash)]
    # An embedding failure or a bad vector raises here, before anything is written.
    vectors = await embed_texts(ctx.embedder, [r.text for r in embed], ctx.dimensions, ctx.half)
    vector_of = {r.key: v for r, v in zip(embed, vectors, strict=True)}
    sizes = [len(r.text) + len(r.metadata) for r in rows]
    runs = batches(sizes, call.batch_size, MAX_BATCH_CHARS)
    for n, run in enumerate(runs):
        batch = sorted((rows[i] for i in run), key=lambda r: r.key)
        try:
            async with ctx.connect() as conn:
                cid = await _write(conn, ctx, call, cid, batch, vector_of, done)
        except RETRIED:
            raise
        except Exception as exc:
            raise _batch_failure(exc, call, n, len(runs), batch, rows, done) from exc


def _batch_failure(
    exc: Exception,
    call: KeyedCall,
    n: int,
    count: int,
    batch: list[KeyedRow],
    rows: list[KeyedRow],
    done: dict[str, MemoryEntry],
) -> BaseException:
    if call.single:
        return write_error(exc)
    committed = [done[r.key] for r in rows if r.key in done]
    positions = sorted(r.position for r in batch)
    return BatchWriteError.failed(
        n, count, (positions[0], positions[-1]), exc, committed, len(rows)
    )


async def _write(
    conn: Any,
    ctx: WriteContext,
    call: KeyedCall,
    cid: int | None,
    batch: list[KeyedRow],
    vector_of: dict[str, Any],
    done: dict[str, MemoryEntry],
) -> int:
    sql = ctx.sql
    keys, hashes = [r.key for r in batch], [r.content_hash for r in batch]

    async def work() -> tuple[int, list[Any]]:
        collection_id = cid
        if collection_id is None:
            collection_id = await create_collection_id(conn, sql, call.collection)
        await conn.execute(_clear_sql(sql), collection_id, keys, hashes)
        await conn.execute(_adopt_sql(sql), collection_id, keys, hashes)
        upserted = await conn.fetch(
            _upsert_sql(sql),
            collection_id,
            keys,
            [r.text for r in batch],
            hashes,
            [vector_of.get(r.key) for r in batch],
            ctx.embedder.model,
            call.session_id,
            call.workflow_id,
            call.expiry,
            [r.metadata for r in batch],
        )
        return collection_id, upserted

    collection_id, upserted = await in_transaction(conn, work)
    for r in upserted:
        done[r["key"]] = entry_from_row(r, call.collection)
    return collection_id


def _clear_sql(sql: Statements) -> str:
    """Delete expired entries holding a text of the batch under another key, or none."""
    return (
        f"DELETE FROM {sql.entries} e USING unnest($2::text[], $3::bytea[]) AS u(key, hash) "
        f"WHERE e.collection_id = $1 AND e.content_hash = u.hash AND e.key IS DISTINCT FROM u.key "
        f"AND NOT {LIVE}"
    )


def _adopt_sql(sql: Statements) -> str:
    """Give live keyless entries holding a text of the batch its key, when that key is new."""
    return (
        f"UPDATE {sql.entries} e SET key = u.key "
        "FROM unnest($2::text[], $3::bytea[]) AS u(key, hash) "
        f"WHERE e.collection_id = $1 AND e.content_hash = u.hash AND e.key IS NULL AND {LIVE} "
        f"AND NOT EXISTS (SELECT 1 FROM {sql.entries} x "
        "WHERE x.collection_id = $1 AND x.key = u.key)"
    )


def _upsert_sql(sql: Statements) -> str:
    """Insert new keys, replace stored ones; a text sent without a vector takes the stored one."""
    same = "e.content_hash = excluded.content_hash"
    return (
        f"INSERT INTO {sql.entries} AS e (collection_id, key, content, content_hash, embedding, "
        "embedding_model, metadata, session_id, workflow_id, expires_at) "
        "SELECT $1, u.key, u.content, u.hash, COALESCE(u.embedding, s.embedding), "
        "CASE WHEN u.embedding IS NULL THEN s.embedding_model ELSE $6 END, "
        "u.metadata::jsonb, $7, $8, $9 "
        f"FROM unnest($2::text[], $3::text[], $4::bytea[], $5::{sql.vector}[], $10::text[]) "
        "AS u(key, content, hash, embedding, metadata) "
        "LEFT JOIN LATERAL (SELECT x.embedding, x.embedding_model "
        f"FROM {sql.entries} x WHERE x.collection_id = $1 AND x.content_hash = u.hash "
        "AND u.embedding IS NULL) s ON true "
        "ORDER BY u.key "
        "ON CONFLICT (collection_id, key) DO UPDATE SET content = excluded.content, "
        "content_hash = excluded.content_hash, "
        f"embedding = CASE WHEN {same} THEN e.embedding ELSE excluded.embedding END, "
        f"embedding_model = CASE WHEN {same} THEN e.embedding_model "
        "ELSE excluded.embedding_model END, "
        "metadata = excluded.metadata, session_id = excluded.session_id, "
        "workflow_id = excluded.workflow_id, expires_at = excluded.expires_at, updated_at = now() "
        f"RETURNING {sql.entry_columns}"
    )
