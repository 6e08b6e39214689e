"""Where a store's operations get their connections: leases on its own pool, or a borrowed pool.

Why leases: asyncpg's ``Pool.acquire`` / ``release`` cost a noticeable share of a search (the
release runs in a shielded task, one more event-loop pass; figures in docs/memory.md). A store
that owns its pool is the pool's only user, so it can keep the connections it has used and hand
them out again itself, synchronously. Anything unusual sends a connection back to asyncpg, which
resets or replaces it: an operation on it failed or was cancelled, it was closed, or it was left
inside a transaction. A connection the server dropped is ended and its lease freed (see
``_checked``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from ._checked import CheckedConnection, end, is_lost, is_open, refused, usable


class Leases:
    """At most ``size`` connections leased from ``pool``; idle ones are reused last-in first-out.

    ``server`` says where the pool connects (no password), for error messages.
    """

    def __init__(self, pool: Any, size: int, server: str = "the store's server") -> None:
        self._pool = pool
        self._size = self.size = size
        self.server = server
        self._leased = 0
        self._idle: list[Any] = []
        # Operations waiting for a connection while all ``size`` are in use. A finishing
        # operation hands its connection straight to the first (or None: "lease one anew").
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._closed = False

    def connection(self, read_only: bool = False) -> CheckedConnection:
        """A connection for one operation (``async with``); returned for reuse unless something
        went wrong. ``read_only`` operations are re-run once when their connection is lost."""
        return CheckedConnection(self, read_only)

    async def give_back(self, conn: Any, failed: bool) -> None:
        """Keep ``conn`` for the next operation, or give it back to asyncpg if anything is off."""
        if not is_open(conn):
            await self.discard(conn)
        elif failed or self._closed or conn.is_in_transaction():
            await self._drop(conn)
        else:
            self._give(conn)

    async def discard(self, conn: Any) -> None:
        """Free the lease of a connection the server dropped."""
        end(conn)
        await self._drop(conn)

    async def close(self) -> None:
        """Give every idle connection back to the pool; later returns go straight back too."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await (self._drop(conn) if is_open(conn) else self.discard(conn))
        while self._waiters:
            self._wake_one()

    async def take(self) -> Any:
        """A usable connection: an idle one, a new one while under ``size``, else wait for one."""
        # Every idle connection may have been dropped (a restart), and a new one gets one more
        # chance; the last is handed out unchecked, so that this loop always ends.
        for _ in range(self._size + 2):
            conn = await self._lease()
            if usable(conn):
                return conn
            await self.discard(conn)  # dropped by the server while idle: try the next one
        return await self._lease()

    async def _lease(self) -> Any:
        while True:
            if self._idle:
                return self._idle.pop()
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
            await self._pool.release(conn)  # a connection asyncpg already took back: no-op
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


class Borrowed:
    """A pool the store was handed: a connection per operation, acquired and released each time.

    ``prepare`` readies a connection for the store (pgvector's codec) before its first use.
    """

    def __init__(
        self,
        pool: Any,
        prepare: Callable[[Any], Awaitable[None]],
        server: str = "the borrowed pool's server",
    ) -> None:
        self._pool = pool
        self._prepare = prepare
        self.server = server
        self.size = pool.get_max_size()

    def connection(self, read_only: bool = False) -> CheckedConnection:
        """A connection for one operation (``async with``), as :meth:`Leases.connection`."""
        return CheckedConnection(self, read_only)

    async def take(self) -> Any:
        # The pool may keep connections the server has dropped: each is ended (asyncpg reconnects
        # it) and the next tried; the last is handed out unchecked, so that this loop always ends.
        for last in [False] * (self.size + 1) + [True]:
            conn = await self._pool.acquire()
            if not last and not usable(conn):
                await self.discard(conn)
                continue
            try:
                await self._prepare(conn)
            except BaseException as exc:
                if is_lost(conn, exc):
                    end(conn)
                await self._pool.release(conn)
                if last or not refused(exc):
                    raise
                continue
            return conn
        raise AssertionError("unreachable: the last connection is returned or raises")

    async def give_back(self, conn: Any, failed: bool) -> None:
        if not is_open(conn):
            end(conn)
        await self._pool.release(conn)

    async def discard(self, conn: Any) -> None:
        end(conn)
        await self._pool.release(conn)
