"""The migration lock: a transaction-level advisory lock, waited for with a bound.

Why transaction-level: it is released by COMMIT/ROLLBACK or by the backend dying, so a killed
process never leaves a stale lock, and it works through PgBouncer in transaction-pooling mode (a
transaction stays on one server connection; a session lock would stick to a pooled server connection
after the client left). The key is two int4s: a constant class id and a hash of the schema name, so
two schemas in one database migrate independently.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib

import asyncpg

from .errors import MigrationLockTimeoutError

log = logging.getLogger("sam_db")

LOCK_CLASS = 0x53414D44  # "SAMD"
# How long one blocking wait lasts before we look at who holds the lock and log it.
POLL_SECONDS = 2.0

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


async def acquire_xact(conn: asyncpg.Connection, key: tuple[int, int], *, wait: float) -> None:
    """Take ``key`` for the current transaction, waiting at most ``wait`` seconds.

    Must be called inside a transaction. Each wait is a ``pg_advisory_xact_lock`` under a short
    ``lock_timeout`` inside a savepoint, so the waiter is woken as soon as the lock is free and can
    log who holds it between waits without losing its transaction.
    """
    if await conn.fetchval("SELECT pg_try_advisory_xact_lock($1, $2)", *key):
        return
    deadline = time.monotonic() + wait
    while True:
        holder = await describe_holder(conn, key)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise MigrationLockTimeoutError(
                f"gave up waiting {wait:.0f} s for the migration lock held by {holder}; "
                "if that process is stuck, cancel it (pg_cancel_backend) or raise lock_wait"
            )
        log.info("waiting for the migration lock held by %s (%.0f s left)", holder, remaining)
        step = min(POLL_SECONDS, remaining)
        try:
            async with conn.transaction():  # a savepoint: a lock timeout must not abort the caller
                await conn.execute(
                    "SELECT set_config('lock_timeout', $1, true)", f"{int(step * 1000)}ms"
                )
                await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *key)
            # Released savepoint: the lock now belongs to the outer transaction. Its lock_timeout
            # stays set too, which is why the caller sets its own before running DDL.
            return
        except asyncpg.LockNotAvailableError:
            continue


async def acquire_session(conn: asyncpg.Connection, key: tuple[int, int], *, wait: float) -> None:
    """Take ``key`` as a session lock (single-connection mode for no-transaction migrations)."""
    deadline = time.monotonic() + wait
    while not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *key):
        holder = await describe_holder(conn, key)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise MigrationLockTimeoutError(
                f"gave up waiting {wait:.0f} s for the migration lock held by {holder}"
            )
        log.info("waiting for the migration lock held by %s (%.0f s left)", holder, remaining)
        await asyncio.sleep(min(0.2, remaining))


async def release_session(conn: asyncpg.Connection, key: tuple[int, int]) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1, $2)", *key)
