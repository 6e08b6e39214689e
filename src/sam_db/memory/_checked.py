"""The connection one store operation runs on: checked before each statement, replaced if dropped.

PostgreSQL drops connections (``pg_terminate_backend``, ``idle_session_timeout``, a restart).
asyncpg notices only when its event loop reads the socket; it then gives the connection back to
its pool and the proxy the store still holds refuses every call. So before each statement the
connection is checked: still open, and nothing unread on its socket (an idle connection is sent
data unasked only as the server ends the session). A dropped connection is replaced and the
statement sent on the new one: nothing of it had been sent. When the connection is lost while a
statement runs, the statement is sent once more on a new connection only if the operation only
reads and no transaction is open; otherwise ConnectionLostError says whether a write may have been
applied.

asyncpg reads its sockets whenever the event loop runs, so the message that ends an idle session
may already be read, the socket not yet closed: the connection then looks usable, but asyncpg
refuses the next statement before sending it (``refused``); it is sent on another connection.
"""

from __future__ import annotations

import select
from contextlib import suppress
from typing import Any, Protocol

import asyncpg

from .._driver_errors import CONNECT_FAILED, SESSION_ENDED
from .._redact import redact
from ..errors import ConnectionLostError

_poll = getattr(select, "poll", None)


class Source(Protocol):
    """Where an operation's connections come from: the store's leases or a borrowed pool."""

    server: str  # where the connections go, for messages (no password)
    size: int  # the most connections it holds: how many can be found dropped in a row

    async def take(self) -> Any: ...

    async def give_back(self, conn: Any, failed: bool) -> None: ...

    async def discard(self, conn: Any) -> None: ...


def is_open(conn: Any) -> bool:
    """Whether asyncpg still considers ``conn`` open."""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:  # asyncpg saw it close and took it back into its pool
        return False


def usable(conn: Any) -> bool:
    """Whether a statement can be sent on the idle ``conn``: open, and nothing arrived unasked."""
    return is_open(conn) and not _unread(conn)


def _unread(conn: Any) -> bool:
    # asyncpg's transport is private: without it this check is skipped (is_open still holds).
    transport = getattr(conn, "_transport", None)
    sock = None if transport is None else transport.get_extra_info("socket")
    fd = -1 if sock is None else sock.fileno()
    if fd < 0:
        return False
    if _poll is not None:
        poller = _poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])


def refused(exc: BaseException) -> bool:
    """Whether asyncpg refused to start a statement (and closed its connection): the server had
    ended the session and asyncpg had read its message, the socket not yet closed.

    PostgreSQL ends a session with a FATAL message and closes the socket a moment later (after the
    backend has left pg_stat_activity). asyncpg, reading the message while no statement runs,
    waits from then on for a reply that never comes; the connection looks open and its socket
    holds nothing unread, so ``usable`` cannot tell. asyncpg checks its state before it writes a
    statement: this refusal means nothing that could apply was sent.
    """
    return isinstance(exc, asyncpg.InternalClientError) and str(exc).startswith(
        "cannot switch to state"
    )


def end(conn: Any) -> None:
    """Close a dropped connection on this side too; asyncpg then frees its pool slot at once."""
    with suppress(asyncpg.InterfaceError):  # already taken back by its pool
        conn.terminate()


def is_lost(conn: Any, exc: BaseException) -> bool:
    """Whether ``exc``, raised by a statement on ``conn``, means the connection is gone."""
    return isinstance(exc, SESSION_ENDED) or not is_open(conn)


def _cause(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {redact(str(exc))}"


class CheckedConnection:
    """``async with source.connection(read_only) as conn``: what one store operation runs on.

    Offers the asyncpg calls the store makes (fetch, fetchrow, fetchval, execute, executemany,
    transaction); other attributes are the current asyncpg connection's, unchecked.
    """

    __slots__ = ("_committed", "_conn", "_depth", "_fresh", "_read_only", "_source")

    def __init__(self, source: Source, read_only: bool) -> None:
        self._source = source
        self._conn: Any = None
        self._read_only = read_only
        self._depth = 0  # open transactions: the connection cannot be replaced inside one
        self._committed = False  # a statement of this writing operation has completed
        self._fresh = False  # the connection was checked when taken; no statement sent since

    async def __aenter__(self) -> CheckedConnection:
        self._conn = await self._take()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._source.give_back(conn, exc_type is not None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def fetch(self, query: str, *args: Any, **options: Any) -> Any:
        return await self._send("fetch", query, args, options)

    async def fetchrow(self, query: str, *args: Any, **options: Any) -> Any:
        return await self._send("fetchrow", query, args, options)

    async def fetchval(self, query: str, *args: Any, **options: Any) -> Any:
        return await self._send("fetchval", query, args, options)

    async def execute(self, query: str, *args: Any, **options: Any) -> Any:
        return await self._send("execute", query, args, options)

    async def executemany(self, command: str, args: Any, **options: Any) -> Any:
        return await self._send("executemany", command, (args,), options)

    def transaction(self, **options: Any) -> _Transaction:
        return _Transaction(self, options)

    async def _send(self, method: str, query: str, args: tuple[Any, ...], options: Any) -> Any:
        retried = False
        refusals = 0
        while True:
            conn = self._conn
            if self._fresh:  # checked when taken, an instant ago: spare the hot path a second look
                self._fresh = False
            elif not usable(conn):
                conn = await self._replace()  # nothing of this statement was sent yet
            try:
                result = await getattr(conn, method)(query, *args, **options)
            except Exception as exc:
                if not is_lost(conn, exc):
                    raise
                end(conn)
                if refused(exc) and not self._depth:
                    refusals = self._count_refusal(refusals, exc)
                    continue  # nothing was sent: send it on another connection, read or write
                if self._depth or not self._read_only or retried:
                    raise self._lost_running(exc) from exc
                retried = True  # a read: send it once more, on a new connection
                continue
            if not self._read_only and not self._depth:
                self._committed = True
            return result

    async def _replace(self) -> Any:
        if self._depth:
            raise self._lost_in_transaction(None)
        dead, self._conn = self._conn, None
        await self._source.discard(dead)
        self._conn = await self._take()
        self._fresh = False
        return self._conn

    async def _take(self) -> Any:
        """A connection from the source, which checks it is usable (``usable``)."""
        try:
            conn = await self._source.take()
        except CONNECT_FAILED as exc:
            raise ConnectionLostError.cannot_connect(
                self._source.server, _cause(exc), self._committed
            ) from exc
        self._fresh = True
        return conn

    def _count_refusal(self, refusals: int, exc: BaseException) -> int:
        """One more connection found ended when a statement was to be sent on it; raises once
        more were found than the source holds (plus a new one), so that resending always ends."""
        refusals += 1
        if refusals > self._source.size + 1:
            raise ConnectionLostError.ended_in_a_row(
                refusals, _cause(exc), self._committed
            ) from exc
        return refusals

    def _lost_running(self, exc: BaseException) -> ConnectionLostError:
        if self._depth:
            return self._lost_in_transaction(exc)
        if self._read_only:
            return ConnectionLostError.lost_reading(_cause(exc))
        return ConnectionLostError.lost_writing(_cause(exc))

    def _lost_in_transaction(self, exc: BaseException | None) -> ConnectionLostError:
        cause = None if exc is None else _cause(exc)
        return ConnectionLostError.lost_in_transaction(cause, self._committed)


class _Transaction:
    """``async with conn.transaction():`` on a checked connection: asyncpg's, plus loss handling."""

    __slots__ = ("_conn", "_options", "_owner", "_tx")

    def __init__(self, owner: CheckedConnection, options: dict[str, Any]) -> None:
        self._owner = owner
        self._options = options
        self._tx: Any = None
        self._conn: Any = None

    async def __aenter__(self) -> Any:
        owner = self._owner
        refusals = 0
        while True:
            if owner._fresh:
                owner._fresh = False
            elif not owner._depth and not usable(owner._conn):
                await owner._replace()  # nothing was sent yet
            conn = self._conn = owner._conn
            self._tx = conn.transaction(**self._options)
            try:
                await self._tx.__aenter__()
                break
            except Exception as exc:
                if not is_lost(conn, exc):
                    raise
                end(conn)
                if not (refused(exc) and not owner._depth):
                    raise owner._lost_in_transaction(exc) from exc
                refusals = owner._count_refusal(refusals, exc)  # BEGIN was not sent: again
        owner._depth += 1
        return self._tx

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        owner = self._owner
        owner._depth -= 1
        conn = self._conn
        if exc_type is not None and not is_open(conn):
            return  # PostgreSQL rolled the transaction back as the connection ended
        try:
            await self._tx.__aexit__(exc_type, exc, tb)
        except Exception as err:
            if not is_lost(conn, err):
                raise
            end(conn)
            if exc_type is not None:
                return  # the rollback was lost with the connection: the first error stands
            raise ConnectionLostError.lost_committing(_cause(err)) from err
        if not owner._depth and not owner._read_only:
            owner._committed = True
