"""Turning what callers pass (a DSN, a connection, a pool) into connections, with clear errors.

Connections sam_db opens itself use ``statement_cache_size=0`` so they work through PgBouncer in
transaction-pooling mode (named prepared statements do not survive a server-connection switch), and
carry an ``application_name`` so a waiting migrator can tell who holds the lock.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Union, cast

import asyncpg

from ._driver_errors import connect_error
from ._redact import redact_dsn
from .errors import ConfigurationError

#: What the migration API accepts as its database.
Target = Union[str, asyncpg.Connection, "asyncpg.Pool[Any]"]


def application_name(purpose: str) -> str:
    """``sam_db <purpose> <host>:<pid>`` — shown in pg_stat_activity and in lock-wait logs."""
    return f"sam_db {purpose} {socket.gethostname()}:{os.getpid()}"[:63]


_BRACKETED = re.compile(r"\[([^\]]*)\]")


def _check_bracketed_hosts(dsn: str) -> None:
    """Refuse a ``[...]`` host that is no IPv6 address before the driver sees it.

    Python 3.11+'s URL parser rejects one (a ``ValueError``, see ``connect_error``); 3.10's passes it
    on as a host name, which would surface as an unreachable host instead of a malformed DSN.
    """
    hosts = dsn.split("://", 1)[-1].rsplit("@", 1)[-1].split("/", 1)[0]
    for match in _BRACKETED.finditer(hosts):
        try:
            ipaddress.IPv6Address(match.group(1).split("%", 1)[0])
        except ValueError:
            pass
        else:
            continue
        # Raised outside the except block: no __context__ quoting the DSN.
        raise ConfigurationError.invalid_dsn(
            redact_dsn(dsn), "a host in [brackets] must be an IPv6 address"
        )


async def connect(dsn: str, *, purpose: str, timeout: float = 10.0) -> asyncpg.Connection:
    """Open a connection to ``dsn``, turning every failure into a typed :class:`SamDbError`."""
    if not isinstance(dsn, str) or not dsn.strip():
        raise ConfigurationError.empty_dsn()
    _check_bracketed_hosts(dsn)
    try:
        conn: asyncpg.Connection = await asyncpg.connect(
            dsn,
            timeout=timeout,
            statement_cache_size=0,
            server_settings={"application_name": application_name(purpose)},
        )
        return conn
    except Exception as exc:  # every failure is translated; cancellation passes through
        error = connect_error(exc, dsn)
    raise error  # outside the except block: no __context__ holding the driver's error


async def create_pool(dsn: str, **options: Any) -> asyncpg.Pool[Any]:
    """``asyncpg.create_pool(dsn, **options)`` with its failures translated by :func:`connect_error`."""
    _check_bracketed_hosts(dsn)
    try:
        return await asyncpg.create_pool(dsn, **options)
    except Exception as exc:
        error = connect_error(exc, dsn)
    raise error


class Link:
    """The connection the engine works on, plus a way to get an extra one when possible.

    An extra connection is what lets a no-transaction migration run while the first one keeps the
    migration lock inside an open transaction. ``acquire_extra`` opens (or borrows from the pool)
    one; ``release_extra`` closes (or gives back) it. Both are None when there is no extra one.
    """

    __slots__ = ("acquire_extra", "conn", "release_extra")

    def __init__(
        self,
        conn: asyncpg.Connection,
        acquire_extra: Callable[[], Awaitable[asyncpg.Connection]] | None = None,
        release_extra: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    ) -> None:
        self.conn = conn
        self.acquire_extra = acquire_extra
        self.release_extra = release_extra


@asynccontextmanager
async def open_link(target: Target, *, purpose: str) -> AsyncIterator[Link]:
    """Yield a :class:`Link` on ``target``; connections opened here are closed on exit."""
    if isinstance(target, str):
        conn = await connect(target, purpose=purpose)

        async def second() -> asyncpg.Connection:
            return await connect(target, purpose=purpose)

        async def close(c: asyncpg.Connection) -> None:
            await c.close()

        try:
            yield Link(conn, second, close)
        finally:
            await conn.close()
    elif isinstance(target, asyncpg.Pool):
        pool = target
        async with pool.acquire() as proxy:
            # A pool hands out proxies that behave as connections; the engine only uses that.
            pooled = cast(asyncpg.Connection, proxy)
            if pool.get_max_size() < 2:
                yield Link(pooled)
                return

            async def acquire() -> asyncpg.Connection:
                return cast(asyncpg.Connection, await pool.acquire())

            async def release(c: asyncpg.Connection) -> None:
                await pool.release(cast(Any, c))

            yield Link(pooled, acquire, release)
    elif isinstance(target, asyncpg.Connection):
        yield Link(target)
    elif target is None:  # e.g. sam_db.config() found no DSN
        raise ConfigurationError.no_database()
    else:
        raise ConfigurationError(
            f"cannot migrate {type(target).__name__}: pass a DSN string, an asyncpg.Connection "
            "or an asyncpg.Pool"
        )
