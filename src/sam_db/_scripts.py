"""Running migration scripts: settings, the tracking row, and no-transaction files.

A no-transaction file is sent one statement at a time (``CREATE INDEX CONCURRENTLY`` cannot run in
a transaction) on a second connection while the first keeps the migration lock in an open
transaction, or under a session lock when there is only one connection.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import asyncpg

from . import _indexes, _lock, _tracking
from ._checksum import ALGORITHM
from ._failures import describe, excerpt
from ._sqlsplit import SqlSyntaxError, Statement, split_statements
from ._stall import ms, statement_timeout_outside_tx
from .errors import InvalidIndexError, MigrationFailedError

if TYPE_CHECKING:
    from ._engine import _Ctx, _Script, _Step


async def apply_settings(ctx: _Ctx, conn: asyncpg.Connection, *, local: bool) -> None:
    """Set the run's search_path and DDL lock_timeout: transaction-local, or for the session."""
    await conn.execute(
        "SELECT set_config('search_path', $1, $3), set_config('lock_timeout', $2, $3)",
        ctx.search_path,
        ms(ctx.settings.ddl_lock_timeout),
        local,
    )


async def record(ctx: _Ctx, conn: asyncpg.Connection, step: _Step, elapsed: float) -> None:
    m = step.migration
    if step.record == "insert":
        await conn.execute(ctx.sql.insert, m.version, m.name, m.checksum, ALGORITHM, elapsed)
    else:
        await conn.execute(ctx.sql.delete, m.version)


_INVALID_INDEXES = """
SELECT format('%I.%I', n.nspname, c.relname) AS name
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid
"""


async def _statements_outside_tx(ctx: _Ctx, work: asyncpg.Connection, step: _Step) -> None:
    """Send each statement of a no-transaction script alone, with the run's session settings."""
    script = step.script
    # The server reads each statement with the session's standard_conforming_strings (which a
    # database or role may set off): the splitter must start from the same value.
    standard = getattr(work.get_settings(), "standard_conforming_strings", "on") != "off"
    try:
        statements = split_statements(script.sql, standard_conforming_strings=standard)
    except SqlSyntaxError as exc:
        raise MigrationFailedError(
            f"{script.origin}: {exc}", file=script.origin, line=exc.line
        ) from None
    # Indexes it builds concurrently (only when applying: a rollback drops them).
    built = _indexes.built_indexes(script.sql) if step.record == "insert" else []
    # Session-level (not transaction-local) settings: there is no transaction. Reset afterwards
    # since the connection may be the caller's, or go back to their pool.
    await apply_settings(ctx, work, local=False)
    try:
        # An INVALID index left by an earlier run that failed or was killed: wait for a build still
        # going on, drop what is left for the file to build again.
        await _indexes.settle(work, built, ctx.schema, script.origin, wait=ctx.settings.lock_wait)
        await _send_each(work, script, statements, ctx.settings.stall_timeout)
        await _indexes.verify(work, built, ctx.schema, script.origin)
    finally:
        await work.execute("RESET search_path; RESET lock_timeout; RESET statement_timeout")


async def _send_each(
    work: asyncpg.Connection, script: _Script, statements: list[Statement], stall: float | None
) -> None:
    """Run ``statements`` one by one; a failure names the statement and any INVALID index left."""
    before = {r["name"] for r in await work.fetch(_INVALID_INDEXES)}
    for index, st in enumerate(statements, 1):
        try:
            if stall is not None:
                await work.execute(
                    "SELECT set_config('statement_timeout', $1, false)",
                    statement_timeout_outside_tx(st.sql, stall),
                )
            await work.execute(st.sql)
        except asyncpg.PostgresError as exc:
            after = {r["name"] for r in await work.fetch(_INVALID_INDEXES)}
            left = sorted(after - before)
            msg = (
                f"{script.origin} failed at line {st.line} (statement {index} of {len(statements)}): "
                f"{describe(exc)}\n  {excerpt(st.sql)}\n"
                f"This file runs outside a transaction: its first {index - 1} statement(s) stayed applied."
            )
            if left:
                raise InvalidIndexError(
                    msg + f" It left INVALID index(es) behind: {', '.join(left)}. The next migrate "
                    "drops an INVALID index this file builds (DROP INDEX CONCURRENTLY) and builds it "
                    "again; fix the cause first (e.g. duplicate keys for a UNIQUE index). The file "
                    "was not recorded as applied.",
                    file=script.origin,
                    indexes=left,
                    statement=st.sql,
                    line=st.line,
                    sqlstate=exc.sqlstate,
                ) from None
            raise MigrationFailedError(
                msg, file=script.origin, statement=st.sql, line=st.line, sqlstate=exc.sqlstate
            ) from None


async def run_on_second_connection(ctx: _Ctx, step: _Step) -> None:
    """Run a no-transaction script on a second connection while ours holds the lock."""
    assert ctx.link.second is not None and ctx.link.release_second is not None
    # The lock transaction stays open while the script runs. After an extended-protocol query it
    # keeps a snapshot (its xmin shows in pg_stat_activity) while idle, and CREATE INDEX
    # CONCURRENTLY waits for every transaction with an older snapshot: it would wait for us. A
    # simple-protocol query drops that snapshot.
    await ctx.link.conn.execute("SELECT")
    work = await ctx.link.second()
    try:
        await _statements_outside_tx(ctx, work, step)
    finally:
        await ctx.link.release_second(work)


async def run_with_session_lock(ctx: _Ctx, step: _Step) -> float | None:
    """No second connection (a lone asyncpg.Connection, or a pool of one): use a session lock.

    Returns how long the script took, or None when another process did the step meanwhile.
    """
    conn = ctx.link.conn
    await _lock.acquire_session(conn, ctx.key, wait=ctx.settings.lock_wait)
    try:
        rows = _tracking.rows(await conn.fetch(ctx.sql.select))
        applied = {r.number for r in rows}
        wanted = step.record == "insert"
        if (step.migration.number in applied) == wanted:  # another process did it meanwhile
            return None
        started = time.perf_counter()
        await _statements_outside_tx(ctx, conn, step)
        elapsed = (time.perf_counter() - started) * 1000
        await record(ctx, conn, step, elapsed)
    finally:
        await _lock.release_session(conn, ctx.key)
    return elapsed
