"""add / add_many / update: new texts embedded once, written in batches, failures reported.

A call validates everything first (texts, metadata, links, expiry, then every new vector), so bad
input writes nothing. Texts the collection already holds are neither embedded nor written again
(deduplication by content hash, per collection); expired ones are renewed. The rest is written in
batches (``_write_batches``); a failing batch raises BatchWriteError naming it and what is stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, NoReturn

import asyncpg

from .._driver_errors import write_error
from ..errors import (
    BatchWriteError,
    EntryNotFoundError,
    InvalidInputError,
    MemoryStoreError,
)
from . import _inputs as inp
from ._checked import CheckedConnection
from ._embedder import Embedder
from ._models import MemoryEntry
from ._rows import entry_from_row
from ._sql import Statements
from ._transaction import in_transaction
from ._vectors import embed_texts
from ._write_batches import Batch, CallValues, NewText, Renewal, plan_batches, write_batches


class WriteContext(NamedTuple):
    """What writing needs from an open store."""

    sql: Statements
    dimensions: int
    embedder: Embedder
    connect: Callable[..., CheckedConnection]  # the store's: connect(read_only=False)
    batch_size: int
    concurrency: int  # batches written at once, on separate connections
    half: bool = False  # the embedding column is halfvec: vectors are packed as float16


# The store's write context, fetched by each call where it first needs the open store (add and
# add_many after checking their texts and metadata); it raises when the store is not open.
ContextOf = Callable[[], WriteContext]


async def add(
    context: ContextOf,
    text: str,
    collection: str,
    metadata: Mapping[str, Any] | None,
    session_id: str | None,
    workflow_id: str | None,
    *,
    ttl: timedelta | None,
    expires_at: datetime | None,
) -> MemoryEntry:
    """MemoryStore.add: one text; a failure raises as itself, not as a batch error."""
    inp.check_text(text)
    entries = await _store_texts(
        context,
        [text],
        collection,
        [inp.metadata_json(metadata)],
        session_id=session_id,
        workflow_id=workflow_id,
        ttl=ttl,
        expires_at=expires_at,
        single=True,
    )
    return entries[0]


async def add_many(
    context: ContextOf,
    texts: Sequence[str],
    collection: str,
    metadata: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None,
    *,
    session_id: str | None,
    workflow_id: str | None,
    ttl: timedelta | None,
    expires_at: datetime | None,
    batch_size: int | None,
) -> list[MemoryEntry]:
    """MemoryStore.add_many: one entry per input text, in input order."""
    items, metas = inp.check_batch(texts, metadata, batch_size)
    return await _store_texts(
        context,
        items,
        collection,
        metas,
        session_id=session_id,
        workflow_id=workflow_id,
        ttl=ttl,
        expires_at=expires_at,
        single=False,
        batch_size=batch_size,
    )


class _Stored(NamedTuple):
    """What the collection already holds of a call's texts, by content hash."""

    collection_id: int | None  # None: the collection does not exist yet
    live: dict[bytes, MemoryEntry]
    expired: dict[bytes, Any]  # the ids of expired entries, which the call renews


async def _store_texts(
    context: ContextOf,
    texts: list[str],
    collection: str,
    metas: list[str],
    *,
    session_id: str | None,
    workflow_id: str | None,
    ttl: timedelta | None,
    expires_at: datetime | None,
    single: bool,
    batch_size: int | None = None,
) -> list[MemoryEntry]:
    """Store validated ``texts`` (``metas`` their metadata JSON); one entry per text, in order."""
    ctx = context()
    collection = inp.check_collection(collection)
    session_id = inp.check_link(session_id, "session_id")
    workflow_id = inp.check_link(workflow_id, "workflow_id")
    expiry = inp.expiry(ttl, expires_at)
    if not texts:
        return []
    hashes = [inp.content_hash(t) for t in texts]
    first = _first_positions(hashes)
    stored = await _find_stored(ctx, collection, list(first))
    new = [
        NewText(h, i, texts[i], metas[i])
        for h, i in first.items()
        if h not in stored.live and h not in stored.expired
    ]
    renewals = [Renewal(eid, first[h], metas[first[h]]) for h, eid in stored.expired.items()]
    # An embedding failure or a bad vector raises here, before anything is written.
    vectors = await embed_texts(ctx.embedder, [t.text for t in new], ctx.dimensions, ctx.half)
    planned = plan_batches(new, vectors, renewals, batch_size or ctx.batch_size)
    values = CallValues(ctx.sql, collection, ctx.embedder.model, session_id, workflow_id, expiry)
    written, failures = await write_batches(
        ctx.connect, values, stored.collection_id, planned, ctx.concurrency
    )
    entries = {**stored.live, **written}
    if failures:
        _raise_failure(failures, planned, single, hashes, entries)
    return _in_input_order(hashes, first, entries)


def _first_positions(hashes: list[bytes]) -> dict[bytes, int]:
    """Each distinct content hash with the input position where it first occurs, in order."""
    first: dict[bytes, int] = {}
    for i, h in enumerate(hashes):
        first.setdefault(h, i)
    return first


async def _find_stored(ctx: WriteContext, collection: str, hashes: list[bytes]) -> _Stored:
    # Reads only: nothing is written until every new text's vector is in hand.
    async with ctx.connect(read_only=True) as conn:
        cid = await conn.fetchval(ctx.sql.collection_id, collection)
        rows = [] if cid is None else await conn.fetch(ctx.sql.existing_by_hash, cid, hashes)
    live: dict[bytes, MemoryEntry] = {}
    expired: dict[bytes, Any] = {}
    for r in rows:
        h = bytes(r["content_hash"])
        if r["expired"]:
            expired[h] = r["id"]
        else:
            live[h] = entry_from_row(r, collection)
    return _Stored(cid, live, expired)


def _raise_failure(
    failures: dict[int, Exception],
    planned: list[Batch],
    single: bool,
    hashes: list[bytes],
    entries: dict[bytes, MemoryEntry],
) -> NoReturn:
    """The first failed batch's error: as itself for add(), as BatchWriteError for add_many()."""
    n = min(failures)
    exc = failures[n]
    if single:
        raise write_error(exc) from exc
    committed = [entries[h] for h in hashes if h in entries]
    positions = planned[n].positions
    raise BatchWriteError.failed(
        n, len(planned), (positions[0], positions[-1]), exc, committed, len(hashes)
    ) from exc


def _in_input_order(
    hashes: list[bytes], first: dict[bytes, int], entries: dict[bytes, MemoryEntry]
) -> list[MemoryEntry]:
    lost = [h for h in hashes if h not in entries]
    if lost:  # an expired entry was purged between the read and the renewal
        raise MemoryStoreError.deleted_while_renewing(first[lost[0]])
    return [entries[h] for h in hashes]


async def update(
    context: ContextOf,
    entry_id: uuid.UUID | str,
    text: str | None,
    metadata: Mapping[str, Any] | None,
) -> MemoryEntry:
    """MemoryStore.update: a new text is re-embedded; the same text keeps its vector."""
    ctx = context()
    sql = ctx.sql
    eid = inp.to_uuid(entry_id)
    if text is not None:
        inp.check_text(text)
    meta = None if metadata is None else inp.metadata_json(metadata)
    async with ctx.connect(read_only=True) as conn:
        current = await conn.fetchrow(sql.get, eid)
    if current is None:
        raise EntryNotFoundError.named(eid)
    new_hash: bytes | None = None
    vector: Any = None
    if text is not None and text != current["content"]:
        new_hash = inp.content_hash(text)
        # Embedded with no connection held and no lock taken: nothing waits on the network.
        vector = (await embed_texts(ctx.embedder, [text], ctx.dimensions, ctx.half))[0]
    args = (eid, text if new_hash else None, new_hash, vector, ctx.embedder.model, meta)
    async with ctx.connect() as conn:
        try:
            # A transaction: cancelled, the update is rolled back or its COMMIT awaited.
            row = await in_transaction(conn, lambda: conn.fetchrow(sql.update, *args))
        except asyncpg.UniqueViolationError:
            other = await conn.fetchval(sql.find_by_hash, eid, new_hash)
            raise InvalidInputError(
                f"collection {current['collection']!r} already stores this text as entry {other}"
            ) from None
    if row is None:
        raise EntryNotFoundError.named(eid)
    return entry_from_row(row, current["collection"])
