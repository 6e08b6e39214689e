"""Running steps: each in its own transaction holding the migration lock, retried on lock timeouts.

Before every step the tracking rows are read again under the lock and the next step is chosen
from them, so that many processes can run the same migrations at once: each step happens exactly
once, and a process that waited for the lock sees it done and moves on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from . import _diagnose, _lock, _tracking
from ._ident import quote_ident
from ._migration import MigrationFile
from ._no_transaction import run_beside_lock, run_under_session_lock
from ._run import Executed, Run, Step, apply_settings, insert_args, record
from ._sqlsplit import SqlSyntaxError, has_statements
from ._stall import StallTimeout, StatementFailed, run_in_tx
from ._tracking import AppliedRow

log = logging.getLogger("sam_db")

#: Chooses the next step from the tracking rows read under the lock (None: nothing left).
Chooser = Callable[[list[AppliedRow]], Step | None]
#: Tells a process waiting for the lock that others have done everything meanwhile.
Finished = Callable[[], Awaitable[bool]]

#: Seconds before the first retry of a step that timed out (doubling, at most MAX_BACKOFF).
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 10.0


async def run_steps(run: Run, choose: Chooser, finished: Finished) -> list[Executed]:
    """Run the steps ``choose`` picks, one locked transaction each, until it picks none."""
    while await _run_step(run, choose, finished):
        pass
    return run.executed


async def prepare_transaction(run: Run, conn: asyncpg.Connection) -> None:
    """Inside a transaction: the run's settings, then (once per run) its schema and tracking table."""
    await apply_settings(run, conn, local=True)
    if not run.ensured:
        if not run.schema_exists:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(run.schema)}")
        await conn.execute(run.sql.create)
        run.ensured = True


async def execute_script(conn: asyncpg.Connection, sql: str) -> None:
    """Send a transactional file as one simple query (asyncpg refuses an empty one)."""
    if has_statements(sql):
        await conn.execute(sql)


async def _run_step(run: Run, choose: Chooser, finished: Finished) -> bool:
    """Run one step, retrying it after a lock timeout; False when there was nothing left to do."""
    attempt = 0
    while True:
        run.current = None
        try:
            return await _attempt(run, choose, finished)
        except (asyncpg.LockNotAvailableError, StallTimeout) as exc:
            assert run.current is not None
            attempt += 1
            await _back_off(run, run.current, exc, attempt)
        except asyncpg.PostgresError as exc:
            step = run.current
            if step is None:
                raise _diagnose.not_prepared(run, exc) from None
            if not step.script.transactional:
                raise
            raise await _diagnose.failure(run, step, exc) from None


async def _attempt(run: Run, choose: Chooser, finished: Finished) -> bool:
    """One attempt of one step: lock, choose, run, record, commit."""
    conn = run.link.conn
    async with _lock.transaction(
        conn, run.key, wait=run.settings.lock_wait, pointless=finished
    ) as locked:
        if not locked:
            return False
        await prepare_transaction(run, conn)
        step = run.current = choose(_tracking.rows(await conn.fetch(run.sql.select)))
        if step is None:
            return False
        # A no-transaction file with no extra connection to run it on runs after this
        # transaction ends, under a session lock instead.
        needs_session_lock = not step.script.transactional and run.link.acquire_extra is None
        if not needs_session_lock:
            started = time.perf_counter()
            if step.script.transactional:
                await _run_transactional(run, conn, step)
            else:
                await run_beside_lock(run, step)
            elapsed = (time.perf_counter() - started) * 1000
            await record(run, conn, step, elapsed)
    if needs_session_lock:
        took = await run_under_session_lock(run, step)
        if took is None:  # another process did it meanwhile
            return True
        elapsed = took
    _count(run, step, elapsed)
    return True


async def _run_transactional(run: Run, conn: asyncpg.Connection, step: Step) -> None:
    """Run a transactional file: one simple query, or statement by statement under a deadline."""
    script = step.script
    stall = run.settings.stall_timeout
    if stall is None:
        await execute_script(conn, script.sql)
        return
    try:
        await run_in_tx(
            conn, script.sql, stall_timeout=stall, lock_timeout=run.settings.lock_timeout
        )
    except SqlSyntaxError as exc:
        raise _diagnose.unsplittable(script.origin, exc) from None
    except StatementFailed as failed:
        raise _diagnose.statement_failed(step, failed) from None


async def _back_off(
    run: Run, step: Step, exc: asyncpg.LockNotAvailableError | StallTimeout, attempt: int
) -> None:
    """Wait before retrying a step that timed out; raise once ``lock_retries`` are spent."""
    if attempt > run.settings.lock_retries:
        raise _diagnose.timed_out(run, step, exc, attempt) from None
    delay = min(FIRST_BACKOFF * 2 ** (attempt - 1), MAX_BACKOFF)
    log.warning(
        "%s %s timed out (%s); retry %d/%d in %.1f s",
        step.verb,
        step.migration.filename,
        exc,
        attempt,
        run.settings.lock_retries,
        delay,
    )
    await asyncio.sleep(delay)


def _count(run: Run, step: Step, elapsed: float) -> None:
    """Count ``step`` as executed by this run and log it."""
    run.executed.append(Executed(step.migration, elapsed))
    what = "applied" if step.direction == "apply" else "rolled back"
    log.info("%s %s in %.1f ms", what, step.migration.filename, elapsed)


async def apply_in_one_transaction(
    run: Run, files: Sequence[MigrationFile]
) -> list[Executed] | None:
    """Apply every file and record them in ONE transaction, taking no lock.

    Only for a schema that nobody else can see before the commit (see
    ``_engine.migrate_new_schema``). Returns None when a file failed: everything was rolled back.
    """
    conn = run.link.conn
    executed: list[Executed] = []
    try:
        async with conn.transaction():
            await prepare_transaction(run, conn)
            for m in files:
                started = time.perf_counter()
                await execute_script(conn, m.sql)
                executed.append(Executed(m, (time.perf_counter() - started) * 1000))
            await conn.executemany(
                run.sql.insert, [insert_args(e.migration, e.execution_ms) for e in executed]
            )
    except asyncpg.PostgresError:
        return None
    for e in executed:
        _count(run, Step.apply(e.migration), e.execution_ms)
    return executed
