"""The batches of one add/add_many call: planned in input order, each written in one transaction.

A batch inserts new rows with one statement and renews expired entries; batches run a few at a
time on separate connections (HNSW inserts are CPU-bound on the server). Each is a transaction
whose outcome is known when it ends (see ``_transaction``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, NamedTuple

from . import _inputs
from ._models import MemoryEntry
from ._rows import entry_from_row
from ._sql import Statements
from ._transaction import in_transaction


class CallValues(NamedTuple):
    """What every row written by one add/add_many call has in common."""

    sql: Statements
    collection: str
    model: str
    session_id: str | None
    workflow_id: str | None
    expiry: datetime | None


class NewText(NamedTuple):
    """An input text the collection does not hold: embedded, then inserted."""

    content_hash: bytes
    position: int  # its first position in the input
    text: str
    metadata: str  # JSON


class Renewal(NamedTuple):
    """An expired entry holding an input text: renewed with the call's metadata, links, expiry."""

    entry_id: Any
    position: int  # the text's first position in the input
    metadata: str  # JSON


class Batch(NamedTuple):
    """One transaction's work: new rows (one INSERT) and expired entries to renew."""

    texts: list[str]
    hashes: list[bytes]
    vectors: list[Any]
    metas: list[str]
    renew_ids: list[Any]
    renew_metas: list[str]
    positions: list[int]  # the input positions of the batch's texts, for error messages


def batches(sizes: Sequence[int], count: int, budget: int) -> list[list[int]]:
    """Indexes of ``sizes`` cut in order into runs of at most ``count`` items whose sizes sum
    to at most ``budget`` (an item larger than the budget gets a run of its own)."""
    runs: list[list[int]] = []
    run: list[int] = []
    used = 0
    for i, size in enumerate(sizes):
        if run and (len(run) >= count or used + size > budget):
            runs.append(run)
            run, used = [], 0
        run.append(i)
        used += size
    if run:
        runs.append(run)
    return runs


def plan_batches(
    new: list[NewText], vectors: list[Any], renewals: list[Renewal], batch_size: int
) -> list[Batch]:
    """The transactions of one call: the ``new`` texts (``vectors`` follow them) in batches of
    at most ``batch_size`` rows and MAX_BATCH_CHARS characters (a statement far below
    PostgreSQL's message limit), in input order; the ``renewals`` go with the first batch."""
    sizes = [len(t.text) + len(t.metadata) for t in new]
    runs = batches(sizes, batch_size, _inputs.MAX_BATCH_CHARS) or [[]]
    planned = []
    for n, run in enumerate(runs):
        rows = sorted(run, key=lambda i: new[i].content_hash)  # see _insert: lock order
        renew = renewals if n == 0 else []
        planned.append(
            Batch(
                texts=[new[i].text for i in rows],
                hashes=[new[i].content_hash for i in rows],
                vectors=[vectors[i] for i in rows],
                metas=[new[i].metadata for i in rows],
                renew_ids=[r.entry_id for r in renew],
                renew_metas=[r.metadata for r in renew],
                positions=sorted([new[i].position for i in rows] + [r.position for r in renew]),
            )
        )
    return [b for b in planned if b.texts or b.renew_ids]


async def create_collection_id(conn: Any, sql: Statements, name: str) -> int:
    """The collection's id, inserting the collection if needed (inside the caller's
    transaction: a failed write leaves no empty collection behind)."""
    cid = await conn.fetchval(sql.collection_insert, name)
    if cid is None:  # it exists, or a concurrent writer just committed it
        cid = await conn.fetchval(sql.collection_id, name)
    return int(cid)


async def _renew(
    conn: Any, values: CallValues, batch: Batch, out: dict[bytes, MemoryEntry]
) -> None:
    for r in await conn.fetch(
        values.sql.renew,
        batch.renew_ids,
        batch.renew_metas,
        values.session_id,
        values.workflow_id,
        values.expiry,
    ):
        out[bytes(r["content_hash"])] = entry_from_row(r, values.collection)


async def _insert(
    conn: Any, values: CallValues, cid: int, batch: Batch, out: dict[bytes, MemoryEntry]
) -> None:
    sql, name = values.sql, values.collection
    # Rows sorted by hash (plan_batches' doing): every transaction then takes unique-index
    # locks in one global order, so overlapping writers cannot deadlock.
    rows = await conn.fetch(
        sql.insert_batch,
        cid,
        batch.texts,
        batch.hashes,
        batch.vectors,
        values.model,
        values.session_id,
        values.workflow_id,
        values.expiry,
        batch.metas,
    )
    for r in rows:
        out[bytes(r["content_hash"])] = entry_from_row(r, name)
    lost = [h for h in batch.hashes if h not in out]
    if lost:  # another writer stored the same content meanwhile (ON CONFLICT): read it back
        for r in await conn.fetch(sql.existing_by_hash, cid, lost):
            out[bytes(r["content_hash"])] = entry_from_row(r, name)


async def write_batch(
    conn: Any, values: CallValues, cid: int | None, batch: Batch
) -> tuple[int, dict[bytes, MemoryEntry]]:
    """One transaction: create the collection (``cid`` None), renew, insert; then COMMIT.

    Returns the collection id and the entries by content hash.
    """
    out: dict[bytes, MemoryEntry] = {}

    async def work() -> int:
        collection_id = cid
        if collection_id is None:
            collection_id = await create_collection_id(conn, values.sql, values.collection)
        if batch.renew_ids:
            await _renew(conn, values, batch, out)
        if batch.texts:
            await _insert(conn, values, collection_id, batch, out)
        return collection_id

    return await in_transaction(conn, work), out


async def write_batches(
    connect: Callable[[], AbstractAsyncContextManager[Any]],
    values: CallValues,
    cid: int | None,
    planned: list[Batch],
    concurrency: int,
) -> tuple[dict[bytes, MemoryEntry], dict[int, Exception]]:
    """Write the ``planned`` batches, ``concurrency`` at a time on separate connections; no new
    batch starts once one has failed. A new collection (``cid`` None) is created by the first
    batch, which then runs alone. Returns what was stored by hash and the failures by batch
    index."""
    stored: dict[bytes, MemoryEntry] = {}
    failures: dict[int, Exception] = {}
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int) -> None:
        nonlocal cid
        async with gate:
            if failures:
                return
            try:
                async with connect() as conn:
                    cid, written = await write_batch(conn, values, cid, planned[n])
            except Exception as exc:
                failures[n] = exc
                return
            stored.update(written)

    start = 0
    if cid is None and planned:
        await one(0)
        start = 1
    await asyncio.gather(*(one(n) for n in range(start, len(planned))))
    return stored, failures
