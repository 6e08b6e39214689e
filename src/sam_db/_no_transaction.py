"""Files that opt out of a transaction: sent one statement at a time, their indexes checked.

``CREATE INDEX CONCURRENTLY`` cannot run in a transaction, so such a file runs statement by
statement: on a second connection while the first keeps the migration lock in an open
transaction, or, when there is only one connection, under a session lock instead. A failed or
killed concurrent build leaves an INVALID index behind: it is settled before the file runs and
checked after, and the file is recorded only once every index it builds is valid.
"""

from __future__ import annotations

import time

import asyncpg

from . import _diagnose, _indexes, _lock, _tracking
from ._run import Run, Step, apply_settings, record
from ._sqlsplit import SqlSyntaxError, Statement, split_statements
from ._stall import statement_timeout_outside_tx

_INVALID_INDEXES = """
SELECT format('%I.%I', n.nspname, c.relname) AS name
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid
"""

#: Undoes the session settings of :func:`run_statements` (the connection may be the caller's).
RESET_SQL = "RESET search_path; RESET lock_timeout; RESET statement_timeout"

#: Sets one statement's ``statement_timeout`` when a ``stall_timeout`` is given.
STATEMENT_TIMEOUT_SQL = "SELECT set_config('statement_timeout', $1, false)"


def statements_of(step: Step, *, standard_conforming_strings: bool = True) -> list[Statement]:
    """The statements of ``step``'s file, as they are sent one by one."""
    try:
        return split_statements(
            step.script.sql, standard_conforming_strings=standard_conforming_strings
        )
    except SqlSyntaxError as exc:
        raise _diagnose.unsplittable(step.script.origin, exc) from None


async def run_statements(run: Run, work: asyncpg.Connection, step: Step) -> None:
    """Send each statement of ``step``'s file alone on ``work``, with the run's session settings."""
    # The server reads each statement with the session's standard_conforming_strings (which a
    # database or role may set off): the splitter must start from the same value.
    standard = getattr(work.get_settings(), "standard_conforming_strings", "on") != "off"
    statements = statements_of(step, standard_conforming_strings=standard)
    origin = step.script.origin
    # Indexes it builds concurrently (only when applying: a rollback drops them).
    built = _indexes.built_indexes(step.script.sql) if step.direction == "apply" else []
    # Session-level (not transaction-local) settings: there is no transaction. Reset afterwards
    # since the connection may be the caller's, or go back to their pool.
    await apply_settings(run, work, local=False)
    try:
        # An INVALID index left by an earlier run that failed or was killed: wait for a build still
        # going on, drop what is left for the file to build again.
        await _indexes.settle(work, built, run.schema, origin, wait=run.settings.lock_wait)
        await _send_each(work, origin, statements, run.settings.stall_timeout)
        await _indexes.verify(work, built, run.schema, origin)
    finally:
        await work.execute(RESET_SQL)


async def _send_each(
    work: asyncpg.Connection, origin: str, statements: list[Statement], stall: float | None
) -> None:
    """Run ``statements`` one by one; a failure names the statement and any INVALID index left."""
    before = {r["name"] for r in await work.fetch(_INVALID_INDEXES)}
    for index, st in enumerate(statements, 1):
        try:
            if stall is not None:
                await work.execute(
                    STATEMENT_TIMEOUT_SQL, statement_timeout_outside_tx(st.sql, stall)
                )
            await work.execute(st.sql)
        except asyncpg.PostgresError as exc:
            after = {r["name"] for r in await work.fetch(_INVALID_INDEXES)}
            left = sorted(after - before)
            raise _diagnose.failed_outside_tx(
                origin, st, index, len(statements), exc, left
            ) from None


async def run_beside_lock(run: Run, step: Step) -> None:
    """Run ``step``'s file on a second connection while the run's own holds the lock."""
    link = run.link
    assert link.acquire_extra is not None and link.release_extra is not None
    # The lock transaction stays open while the script runs. After an extended-protocol query it
    # keeps a snapshot (its xmin shows in pg_stat_activity) while idle, and CREATE INDEX
    # CONCURRENTLY waits for every transaction with an older snapshot: it would wait for us. A
    # simple-protocol query drops that snapshot.
    await link.conn.execute("SELECT")
    work = await link.acquire_extra()
    try:
        await run_statements(run, work, step)
    finally:
        await link.release_extra(work)


async def run_under_session_lock(run: Run, step: Step) -> float | None:
    """No second connection (a lone asyncpg.Connection, or a pool of one): use a session lock.

    Returns how long the script took, or None when another process did the step meanwhile.
    """
    conn = run.link.conn
    await _lock.acquire_session(conn, run.key, wait=run.settings.lock_wait)
    try:
        rows = _tracking.rows(await conn.fetch(run.sql.select))
        applied = {r.number for r in rows}
        if (step.migration.number in applied) == (step.direction == "apply"):
            return None  # another process did it meanwhile
        started = time.perf_counter()
        await run_statements(run, conn, step)
        elapsed = (time.perf_counter() - started) * 1000
        await record(run, conn, step, elapsed)
    finally:
        await _lock.release_session(conn, run.key)
    return elapsed
