"""Connections a store keeps checked out of its own pool between operations.

Why: asyncpg's ``Pool.acquire`` / ``release`` cost ~0.15 ms per operation here (the release runs
in a shielded task, one more event-loop pass), about 15 % of a search. A store that owns its pool
is the pool's only user, so it can keep the connections it has used and hand them out again
itself, synchronously. Anything unusual sends a connection back to asyncpg, which resets or
replaces it: an operation on it failed or was cancelled, it was closed, or it was left inside a
transaction.
"""

from __future__ import annotations

import asyncio
from collections import deque
from contextlib import suppress
from typing import Any


class Leases:
    """At most ``size`` connections leased from ``pool``; idle ones are reused last-in first-out."""

    def __init__(self, pool: Any, size: int) -> None:
        self._pool = pool
        self._size = size
        self._leased = 0
        self._idle: list[Any] = []
        # Operations waiting for a connection while all ``size`` are in use. A finishing
        # operation hands its connection straight to the first (or None: "lease one anew").
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._closed = False

    def connection(self) -> _Lease:
        """A connection for one operation (``async with``); returned for reuse unless something
        went wrong."""
        return _Lease(self)

    async def _return(self, conn: Any, failed: bool) -> None:
        if failed or self._closed or conn.is_closed() or conn.is_in_transaction():
            await self._drop(conn)
        else:
            self._give(conn)

    async def close(self) -> None:
        """Give every idle connection back to the pool; later returns go straight back too."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await self._drop(conn)
        while self._waiters:
            self._wake_one()

    async def _take(self) -> Any:
        while True:
            while self._idle:
                conn = self._idle.pop()
                if not conn.is_closed():
                    return conn
                await self._drop(conn)
            if self._leased < self._size:
                self._leased += 1
                try:
                    return await self._pool.acquire()
                except BaseException:
                    self._leased -= 1
                    self._wake_one()  # a waiter may try (and fail or succeed) in our place
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                conn = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                    self._give(waiter.result())  # handed over just as we were cancelled
                else:
                    self._forget(waiter)
                raise
            if conn is not None:
                return conn

    def _give(self, conn: Any) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    async def _drop(self, conn: Any) -> None:
        self._leased -= 1
        try:
            await self._pool.release(conn)
        finally:
            self._wake_one()

    def _wake_one(self) -> None:
        """A lease is free again: let the first waiter take a new one from the pool."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _forget(self, waiter: asyncio.Future[Any]) -> None:
        with suppress(ValueError):
            self._waiters.remove(waiter)


class _Lease:
    """``async with leases.connection() as conn``: a plain class, not a generator, because it
    wraps every operation of the store."""

    __slots__ = ("_conn", "_leases")

    def __init__(self, leases: Leases) -> None:
        self._leases = leases
        self._conn: Any = None

    async def __aenter__(self) -> Any:
        self._conn = await self._leases._take()
        return self._conn

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        await self._leases._return(self._conn, exc_type is not None)
