"""Where a store's operations get their connections: its own pool with leases, or a borrowed pool.

Every connection the store uses has pgvector's binary codec registered with the schema the
extension lives in (``register_codec``: the one place that registers it; the pytest plugin's
fixtures use it too). An owned pool registers it when it opens a connection; a borrowed pool's
connections get it at their first use by the store.

Why leases: asyncpg's ``Pool.acquire`` / ``release`` cost a noticeable share of a search (the
release runs in a shielded task, one more event-loop pass; bench/leases_bench.py). A store
that owns its pool is the pool's only user, so it can keep the connections it has used and hand
them out again itself, synchronously. Anything unusual sends a connection back to asyncpg, which
resets or replaces it: an operation on it failed or was cancelled, it was closed, or it was left
inside a transaction. A connection the server dropped is ended and its lease freed (see
``_checked``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from contextlib import suppress
from typing import Any

import asyncpg
from pgvector.asyncpg import register_vector

from .._connect import create_pool
from .._redact import redact_dsn
from ._checked import CheckedConnection, end, is_lost, is_open, refused, usable
from ._sql import DISCOVER_EXTENSION


async def register_codec(conn: Any, schema: str) -> None:
    """Register pgvector's binary codec on ``conn`` for the extension living in ``schema``."""
    await register_vector(conn, schema=schema)


async def _init_owned(conn: Any) -> None:
    """An owned pool's new connection: the codec, with the schema the extension lives in."""
    ext = await conn.fetchrow(DISCOVER_EXTENSION)
    if ext is not None:  # missing extension: open() reports it
        await register_codec(conn, ext["ext_schema"])


async def _keep_session(conn: Any) -> None:
    """Owned pools skip asyncpg's reset query (a round trip per release): the store never
    changes session state — its settings are transaction-local — and asyncpg still ends any
    open transaction on release."""


class Connections:
    """A store's connections: a pool it owns (``own``) or one it was handed (``borrow``)."""

    def __init__(self, pool: asyncpg.Pool[Any], source: Leases | Borrowed) -> None:
        self.pool = pool
        self._source = source

    @classmethod
    async def own(cls, dsn: str, size: int) -> Connections:
        """Open a pool of at most ``size`` connections to ``dsn``, handed out as leases."""
        # Failures come back typed, without the DSN's password (sam_db._connect).
        pool = await create_pool(
            dsn, min_size=1, max_size=size, init=_init_owned, reset=_keep_session
        )
        return cls(pool, Leases(pool, size, redact_dsn(dsn)))

    @classmethod
    def borrow(cls, pool: asyncpg.Pool[Any]) -> Connections:
        """Use the caller's ``pool``: a connection per operation, never closed by the store."""
        return cls(pool, Borrowed(pool, _CodecOnFirstUse()))

    def connection(self, read_only: bool = False) -> CheckedConnection:
        """A connection for one operation (``async with``); see ``_checked``."""
        return self._source.connection(read_only)

    def use_extension_schema(self, schema: str) -> None:
        """Where pgvector lives, as ``open()`` found it: a borrowed pool's codec needs it."""
        if isinstance(self._source, Borrowed):
            self._source.codec.schema = schema

    async def close(self) -> None:
        """Close an owned pool (idle leases first); a borrowed pool stays open."""
        if isinstance(self._source, Leases):
            await self._source.close()
            await self.pool.close()
        else:
            self._source.codec.forget()


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

    ``codec`` registers pgvector's codec on a connection before its first use by the store.
    """

    def __init__(
        self,
        pool: Any,
        codec: _CodecOnFirstUse,
        server: str = "the borrowed pool's server",
    ) -> None:
        self._pool = pool
        self.codec = codec
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
                await self.codec(conn)
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


class _CodecOnFirstUse:
    """The codec for a borrowed pool's connections, registered on each at its first use.

    Connections are told apart by their settings object, kept referenced so that its id() cannot
    be reused.
    """

    def __init__(self) -> None:
        self.schema = "public"  # until open() finds the extension
        self._ready: dict[int, Any] = {}

    async def __call__(self, conn: Any) -> None:
        settings = conn.get_settings()
        if id(settings) in self._ready:
            return
        if len(self._ready) > 10_000:  # connections come and go: forget old ones
            self._ready.clear()
        await register_codec(conn, self.schema)
        self._ready[id(settings)] = settings

    def forget(self) -> None:
        self._ready.clear()
