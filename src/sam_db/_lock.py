"""The migration lock: a transaction-level advisory lock, polled for in short transactions.

Why transaction-level: it is released by COMMIT/ROLLBACK or by the backend dying, so a killed
process never leaves a stale lock, and it works through PgBouncer in transaction-pooling mode (a
transaction stays on one server connection; a session lock would stick to a pooled server connection
after the client left). The key is two int4s: a constant class id and a hash of the schema name, so
two schemas in one database migrate independently.

Why polled: a backend blocked inside ``SELECT pg_advisory_xact_lock(...)`` holds a snapshot for the
whole wait, and ``CREATE INDEX CONCURRENTLY`` waits for every transaction holding an older snapshot,
so a concurrent index build run by the lock holder would wait for the waiters while they wait for
it. A waiter therefore tries the lock (``pg_try_advisory_xact_lock``) in a short transaction, ends
that transaction when the lock is taken elsewhere, and sleeps between tries holding nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg

from .errors import MigrationLockTimeoutError

log = logging.getLogger("sam_db")

LOCK_CLASS = 0x53414D44  # "SAMD"
#: When a waiter first logs who holds the lock (a short wait logs nothing), then how often.
FIRST_LOG = 0.25
LOG_SECONDS = 2.0
#: The pause between tries is a fraction of the time waited so far, between FIRST_PAUSE and
#: MAX_PAUSE (seconds): a release is noticed within a small share of the wait it ends, and a long
#: wait costs a few one-row queries a second.
FIRST_PAUSE = 0.01
PAUSE_SHARE = 0.25
MAX_PAUSE = 0.25


async def _try(conn: asyncpg.Connection, key: tuple[int, int]) -> bool:
    """``pg_try_advisory_xact_lock(key)`` in one round trip.

    A parameterised query costs two round trips on connections without a statement cache (which
    sam_db's own are, for PgBouncer); a simple query reports its row count in the command tag.
    The key is two integers computed by :func:`lock_key`, written as integers: no outside text
    reaches this statement.
    """
    tag = await conn.execute(try_sql(key))
    return bool(tag == "SELECT 1")


def try_sql(key: tuple[int, int]) -> str:
    """The statement that tries the transaction-level lock ``key`` (one row when taken)."""
    a, b = (int(k) for k in key)
    return f"SELECT 1 WHERE pg_try_advisory_xact_lock({a}, {b})"


#: Try, and release, ``($1, $2)`` as a session lock.
TRY_SESSION_SQL = "SELECT pg_try_advisory_lock($1, $2)"
UNLOCK_SESSION_SQL = "SELECT pg_advisory_unlock($1, $2)"


_HOLDER_SQL = """
SELECT a.pid, a.application_name, a.state,
       extract(epoch FROM (clock_timestamp() - coalesce(a.xact_start, a.backend_start)))::float8 AS held_s
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted
  AND l.classid = $1::int8::oid AND l.objid = $2::int8::oid AND l.objsubid = 2
"""


def lock_key(schema: str) -> tuple[int, int]:
    """The advisory-lock key of ``schema``'s migrations."""
    return LOCK_CLASS, zlib.crc32(schema.encode("utf-8")) & 0x7FFFFFFF


async def describe_holder(conn: asyncpg.Connection, key: tuple[int, int]) -> str:
    """A one-line description of who holds ``key`` (for the waiting log line)."""
    try:
        row = await conn.fetchrow(_HOLDER_SQL, *key)
    except asyncpg.PostgresError:  # pg_stat_activity may be restricted; the wait goes on anyway
        return "another session"
    if row is None:
        return "another session (just released)"
    app = row["application_name"] or "no application_name"
    return f"backend pid {row['pid']} ({app}, {row['state']}, for {row['held_s']:.1f} s)"


class Pauses:
    """Growing, jittered pauses between tries, until a deadline; logs the holder now and then.

    ``what`` names the lock in the log and the error (the migration lock unless told otherwise).
    """

    __slots__ = ("deadline", "next_log", "started", "wait", "what")

    def __init__(self, wait: float, what: str = "the migration lock") -> None:
        now = time.monotonic()
        self.wait = wait
        self.what = what
        self.started = now
        self.deadline = now + wait
        self.next_log = now + FIRST_LOG

    async def sleep(self, conn: asyncpg.Connection, key: tuple[int, int]) -> None:
        """Sleep before the next try; raise :class:`MigrationLockTimeoutError` past the deadline."""
        now = time.monotonic()
        remaining = self.deadline - now
        if remaining <= 0:
            holder = await describe_holder(conn, key)
            raise MigrationLockTimeoutError.gave_up(self.wait, holder, self.what)
        # Who holds the lock costs a pg_locks query: only asked when it will be logged.
        if now >= self.next_log and log.isEnabledFor(logging.INFO):
            holder = await describe_holder(conn, key)
            log.info("waiting for %s held by %s (%.0f s left)", self.what, holder, remaining)
            self.next_log = now + LOG_SECONDS
        pause = min(max(FIRST_PAUSE, (now - self.started) * PAUSE_SHARE), MAX_PAUSE)
        # Jitter keeps replicas that started together from trying in lockstep.
        await asyncio.sleep(min(pause * random.uniform(0.5, 1.0), remaining))


@asynccontextmanager
async def transaction(
    conn: asyncpg.Connection,
    key: tuple[int, int],
    *,
    wait: float,
    pointless: Callable[[], Awaitable[bool]] | None = None,
) -> AsyncIterator[bool]:
    """A transaction on ``conn`` holding ``key``: yields True inside it, committed on exit.

    Waits at most ``wait`` seconds (then :class:`MigrationLockTimeoutError`), holding no
    transaction between tries. While the lock is taken a try is one statement on its own; once it
    is free, ``pointless`` is asked whether waiting still serves a purpose (another process may
    have done the work meanwhile): when it says so, this yields False with no transaction open.
    Inside a caller's transaction the tries are savepoints.
    """
    pauses: Pauses | None = None
    while True:
        if pauses is not None:
            await pauses.sleep(conn, key)
            # On its own the statement takes and releases the lock at once: it only tells
            # whether the lock is free now, in one round trip.
            if not await _try(conn, key):
                continue
            if pointless is not None and await pointless():
                yield False
                return
        tx = conn.transaction()
        await tx.start()
        try:
            got = await _try(conn, key)
        except BaseException as exc:
            await tx.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        if got:
            break
        await tx.rollback()
        pauses = pauses or Pauses(wait)
    try:
        yield True
    except BaseException as exc:
        await tx.__aexit__(type(exc), exc, exc.__traceback__)
        raise
    await tx.commit()


async def acquire_session(
    conn: asyncpg.Connection,
    key: tuple[int, int],
    *,
    wait: float,
    what: str = "the migration lock",
) -> None:
    """Take ``key`` as a session lock, waiting at most ``wait`` seconds, polled like the others.

    For work that cannot run in a transaction: no-transaction migrations on a single connection,
    and the pytest plugin's template and first-schema builds.
    """
    pauses = Pauses(wait, what)
    while not await conn.fetchval(TRY_SESSION_SQL, *key):
        await pauses.sleep(conn, key)


async def release_session(conn: asyncpg.Connection, key: tuple[int, int]) -> None:
    await conn.execute(UNLOCK_SESSION_SQL, *key)


@asynccontextmanager
async def session(
    conn: asyncpg.Connection, key: tuple[int, int], *, wait: float, what: str
) -> AsyncIterator[None]:
    """Hold ``key`` as a session lock for the block (see :func:`acquire_session`)."""
    await acquire_session(conn, key, wait=wait, what=what)
    try:
        yield
    finally:
        await release_session(conn, key)
