"""A bound on how long application queries can wait for one migration (``stall_timeout``).

``lock_timeout`` bounds each lock wait of each statement, but a transaction keeps every lock it took
until it ends: with two statements that each wait, an application query queued behind the first
waits for both. A deadline across the file's statements bounds the whole attempt instead: each
statement runs with ``lock_timeout`` and ``statement_timeout`` set to what is left of it, and when
it runs out the transaction rolls back, releasing every lock, and the migration is retried.
"""

from __future__ import annotations

import re
import time

import asyncpg

from ._sqlsplit import Statement, split_statements

_CONCURRENTLY = re.compile(r"\bCONCURRENTLY\b", re.I)


class StallTimeout(Exception):
    """An attempt ran out of its ``stall_timeout``; it was rolled back and may be retried."""

    def __init__(self, statement: Statement, limit: float) -> None:
        super().__init__(f"stall_timeout={limit:g}s ran out at line {statement.line}")
        self.statement = statement
        self.limit = limit


class StatementFailed(Exception):
    """Statement ``index`` (1-based) of ``total`` failed with ``error`` (not a deadline)."""

    def __init__(
        self, statement: Statement, index: int, total: int, error: asyncpg.PostgresError
    ) -> None:
        super().__init__(str(error))
        self.statement = statement
        self.index = index
        self.total = total
        self.error = error


#: Each statement's limits under a deadline: ``$1`` lock_timeout, ``$2`` statement_timeout.
DEADLINE_SQL = (
    "SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)"
)


def ms(seconds: float) -> str:
    return f"{max(int(seconds * 1000), 1)}ms"


async def run_in_tx(
    conn: asyncpg.Connection, sql: str, *, stall_timeout: float, lock_timeout: float
) -> None:
    """Run ``sql`` statement by statement in the open transaction, all within ``stall_timeout``.

    Raises :class:`StallTimeout` when the deadline passes (the caller rolls back and retries) and
    :class:`StatementFailed` for any other error. ``SqlSyntaxError`` when it cannot be split.
    """
    statements = split_statements(sql)
    # Restored at the end: inside a caller's transaction the setting would outlive the migration.
    before = await conn.fetchval("SELECT current_setting('statement_timeout')")
    ends = time.monotonic() + stall_timeout
    for index, st in enumerate(statements, 1):
        left = ends - time.monotonic()
        if left <= 0:
            raise StallTimeout(st, stall_timeout)
        await conn.execute(DEADLINE_SQL, ms(min(left, lock_timeout)), ms(left))
        try:
            await conn.execute(st.sql)
        except (asyncpg.LockNotAvailableError, asyncpg.QueryCanceledError) as exc:
            if isinstance(exc, asyncpg.LockNotAvailableError) and left > lock_timeout:
                raise  # lock_timeout itself, not the deadline: the usual retry
            if time.monotonic() >= ends - 0.05:
                raise StallTimeout(st, stall_timeout) from None
            raise StatementFailed(st, index, len(statements), exc) from None
        except asyncpg.PostgresError as exc:
            raise StatementFailed(st, index, len(statements), exc) from None
    await conn.execute("SELECT set_config('statement_timeout', $1, true)", before)


def statement_timeout_outside_tx(sql: str, stall_timeout: float | None) -> str:
    """The ``statement_timeout`` for one statement of a no-transaction file.

    Each such statement is its own transaction, so the bound applies to it alone. Concurrent
    operations (``CREATE INDEX CONCURRENTLY`` and the like) take no lock that blocks application
    reads or writes and may rightly run for hours: they are not cut.
    """
    if stall_timeout is None or _CONCURRENTLY.search(sql):
        return "0"
    return ms(stall_timeout)
