"""Writing entries: add/add_many's rows in transactions whose outcome is known when they end.

Every write is an explicit transaction. A transaction whose COMMIT was not sent never commits,
whatever happens to the caller; a COMMIT once sent is waited for even if the caller is cancelled
meanwhile (the cancellation is passed on afterwards). So when an error or a cancellation reaches
the caller, what is stored is final: nothing more is written after it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from . import _inputs
from ._models import MemoryEntry
from ._rows import entry_from_row
from ._sql import Statements

T = TypeVar("T")


class Shared(NamedTuple):
    """What every row written by one add/add_many call has in common."""

    sql: Statements
    collection: str
    model: str
    session_id: str | None
    workflow_id: str | None
    expiry: datetime | None


class Unit(NamedTuple):
    """One transaction's work: new rows (one INSERT) and expired entries to renew."""

    texts: list[str]
    hashes: list[bytes]
    vectors: list[Any]
    metas: list[str]
    renew_ids: list[Any]
    renew_metas: list[str]
    positions: list[int]  # the input positions of the unit's texts, for error messages


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


def plan_units(
    texts: list[str],
    metas: list[str],
    first: dict[bytes, int],
    missing: list[bytes],
    vectors: list[Any],
    expired: dict[bytes, Any],
    batch_size: int,
) -> list[Unit]:
    """The transactions of one add/add_many: the ``missing`` texts (hashes; ``first`` maps a
    hash to its first input position, ``vectors`` follow ``missing``) in batches of at most
    ``batch_size`` rows and MAX_BATCH_CHARS characters (a statement far below PostgreSQL's
    message limit), in input order; the ``expired`` entries (hash -> id) are renewed with the
    first batch."""
    sizes = [len(texts[first[h]]) + len(metas[first[h]]) for h in missing]
    runs = batches(sizes, batch_size, _inputs.MAX_BATCH_CHARS) or [[]]
    units = []
    for n, run in enumerate(runs):
        run = sorted(run, key=lambda i: missing[i])  # see write_unit: lock order
        renew = list(expired) if n == 0 else []
        units.append(
            Unit(
                texts=[texts[first[missing[i]]] for i in run],
                hashes=[missing[i] for i in run],
                vectors=[vectors[i] for i in run],
                metas=[metas[first[missing[i]]] for i in run],
                renew_ids=[expired[h] for h in renew],
                renew_metas=[metas[first[h]] for h in renew],
                positions=sorted([first[missing[i]] for i in run] + [first[h] for h in renew]),
            )
        )
    return [u for u in units if u.texts or u.renew_ids]


async def in_transaction(conn: Any, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` in a transaction on ``conn`` and commit it, so that its outcome is known
    when the caller is cancelled: cancelled before the COMMIT is sent, the transaction is rolled
    back; cancelled while the COMMIT runs, its outcome is awaited. Either way the cancellation
    is then passed on, and nothing of the transaction commits after it."""
    committing = False

    async def body() -> T:
        nonlocal committing
        async with conn.transaction():
            result = await work()
            committing = True  # leaving the block sends COMMIT
        return result

    task = asyncio.ensure_future(body())
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if not committing:
            task.cancel()  # interrupts the statement: no COMMIT will be sent
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):  # cancelled again: still waiting
                await asyncio.wait((task,))
        if not task.cancelled():
            task.exception()  # retrieved: the caller's cancellation is what goes on
        raise


async def create_collection_id(conn: Any, sql: Statements, name: str) -> int:
    """The collection's id, inserting the collection if needed (inside the caller's
    transaction: a failed write leaves no empty collection behind)."""
    cid = await conn.fetchval(sql.collection_insert, name)
    if cid is None:  # it exists, or a concurrent writer just committed it
        cid = await conn.fetchval(sql.collection_id, name)
    return int(cid)


async def write_unit(
    conn: Any, shared: Shared, cid: int | None, unit: Unit
) -> tuple[int, dict[bytes, MemoryEntry]]:
    """One transaction: create the collection (``cid`` None), renew, insert; then COMMIT.

    Returns the collection id and the entries by content hash. Rows another writer stored
    meanwhile (ON CONFLICT) are read back.
    """
    sql, name = shared.sql, shared.collection
    out: dict[bytes, MemoryEntry] = {}

    async def work() -> int:
        collection_id = cid
        if collection_id is None:
            collection_id = await create_collection_id(conn, sql, name)
        if unit.renew_ids:
            for r in await conn.fetch(
                sql.renew,
                unit.renew_ids,
                unit.renew_metas,
                shared.session_id,
                shared.workflow_id,
                shared.expiry,
            ):
                out[bytes(r["content_hash"])] = entry_from_row(r, name)
        if unit.texts:
            # Rows sorted by hash (the caller's doing): every transaction then takes
            # unique-index locks in one global order, so overlapping writers cannot deadlock.
            rows = await conn.fetch(
                sql.insert_batch,
                collection_id,
                unit.texts,
                unit.hashes,
                unit.vectors,
                shared.model,
                shared.session_id,
                shared.workflow_id,
                shared.expiry,
                unit.metas,
            )
            for r in rows:
                out[bytes(r["content_hash"])] = entry_from_row(r, name)
            lost = [h for h in unit.hashes if h not in out]
            if lost:  # another writer stored the same content meanwhile
                for r in await conn.fetch(sql.existing_by_hash, collection_id, lost):
                    out[bytes(r["content_hash"])] = entry_from_row(r, name)
        return collection_id

    return await in_transaction(conn, work), out


async def write_units(
    connect: Callable[[], AbstractAsyncContextManager[Any]],
    shared: Shared,
    cid: int | None,
    units: list[Unit],
    concurrency: int,
) -> tuple[dict[bytes, MemoryEntry], dict[int, Exception]]:
    """Write ``units``, ``concurrency`` at a time on separate connections; no new unit starts
    once one has failed. A new collection (``cid`` None) is created by the first unit, which
    then runs alone. Returns what was stored by hash and the failures by unit index."""
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
                    cid, written = await write_unit(conn, shared, cid, units[n])
            except Exception as exc:
                failures[n] = exc
                return
            stored.update(written)

    start = 0
    if cid is None and units:
        await one(0)
        start = 1
    await asyncio.gather(*(one(n) for n in range(start, len(units))))
    return stored, failures
