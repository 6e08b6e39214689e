"""Diagnosing a failed step: typed errors that name the file, line and statement, and say what to do.

A transactional file is sent as one query, and PostgreSQL reports no statement index for it: the
failing statement is found from the error's position, or by replaying the statements one by one
in a transaction rolled back after. A missing extension gets install advice of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg

from . import _driver_errors as driver_errors
from ._driver_errors import primary_message as _message
from ._sqlsplit import SqlSyntaxError, Statement, line_and_column, split_statements
from ._stall import StallTimeout, StatementFailed
from .errors import (
    DDLLockTimeoutError,
    ExtensionMissingError,
    InvalidIndexError,
    MigrationError,
    MigrationFailedError,
)

if TYPE_CHECKING:
    from ._run import Run, Step


def timed_out(
    run: Run, step: Step, exc: asyncpg.LockNotAvailableError | StallTimeout, attempts: int
) -> DDLLockTimeoutError:
    """The error once every attempt of ``step`` hit ``lock_timeout`` or ``stall_timeout``."""
    s = run.settings
    if isinstance(exc, StallTimeout):
        return DDLLockTimeoutError.stalled(
            f"{step.verb} {step.script.origin}",
            file=step.script.origin,
            stall_timeout=s.stall_timeout,
            attempts=attempts,
            line=exc.statement.line,
            statement=exc.statement.sql,
        )
    return DDLLockTimeoutError.lock_waits(
        f"{step.verb} {step.script.origin}",
        file=step.script.origin,
        lock_timeout=s.ddl_lock_timeout,
        attempts=attempts,
        said=str(exc),
        sqlstate=exc.sqlstate,
    )


def describe(exc: asyncpg.PostgresError) -> str:
    text = f"{exc.__class__.__name__}: {_message(exc)}"
    detail = getattr(exc, "detail", None)
    hint = getattr(exc, "hint", None)
    if detail:
        text += f" (detail: {detail})"
    if hint:
        text += f" (hint: {hint})"
    return f"{text} [SQLSTATE {exc.sqlstate}]"


def excerpt(sql: str, limit: int = 300) -> str:
    one = " ".join(sql.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def missing_extension(step: Step, exc: asyncpg.PostgresError) -> ExtensionMissingError | None:
    """The error when ``exc`` says the server lacks an extension the step creates, else None."""
    name = driver_errors.missing_extension(exc)
    if name is None:
        return None
    return ExtensionMissingError.for_migration(step.script.origin, name, _message(exc))


async def failure(run: Run, step: Step, exc: asyncpg.PostgresError) -> Exception:
    """The typed error for a failed transactional script, naming the failing statement."""
    missing = missing_extension(step, exc)
    if missing is not None:
        return missing
    script = step.script
    where: Statement | None = None
    cause = exc
    position = getattr(exc, "position", None)
    try:
        statements = split_statements(script.sql)
    except SqlSyntaxError:
        statements = []
    if position:
        line, col = line_and_column(script.sql, int(position))
        where = next((s for s in reversed(statements) if s.line <= line), None)
        loc = f"line {line}, column {col}"
    else:
        found = await _locate(run, statements)
        if found is not None:
            where, located = found
            cause = located or exc
        loc = f"line {where.line}" if where else "an unknown statement"
    index = f" (statement {statements.index(where) + 1} of {len(statements)})" if where else ""
    text = (
        f"{step.verb} {script.origin} failed at {loc}{index}: {describe(cause)}"
        + (f"\n  {excerpt(where.sql)}" if where else "")
        + "\nIts transaction was rolled back: nothing of it was applied."
    )
    return MigrationFailedError(
        text,
        file=script.origin,
        statement=where.sql if where else None,
        line=where.line if where else None,
        sqlstate=cause.sqlstate,
    )


async def _locate(
    run: Run, statements: list[Statement]
) -> tuple[Statement, asyncpg.PostgresError | None] | None:
    """Find which statement fails by replaying them one by one in a transaction rolled back after.

    PostgreSQL reports no statement index for a multi-statement query, and a runtime error (unlike a
    syntax error) carries no position, so this replay is how the error can name the statement.
    """
    if len(statements) == 1:
        return statements[0], None
    conn = run.link.conn
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute(
            "SELECT set_config('search_path', $1, true), set_config('lock_timeout', '1s', true)",
            run.search_path,
        )
        for st in statements:
            try:
                await conn.execute(st.sql)
            except asyncpg.PostgresError as exc:
                return st, exc
        return None
    except asyncpg.PostgresError:
        return None
    finally:
        await tx.rollback()


def not_prepared(run: Run, exc: asyncpg.PostgresError) -> MigrationError:
    """Creating the schema or the tracking table failed (before any step ran)."""
    return MigrationError(
        f"could not prepare schema {run.schema!r} for migrations: {describe(exc)}. "
        "The user needs CREATE on the database (for a new schema) or on the schema."
    )


def unsplittable(origin: str, exc: SqlSyntaxError) -> MigrationFailedError:
    """A file that cannot be split into statements (an unterminated quote or comment)."""
    return MigrationFailedError(f"{origin}: {exc}", file=origin, line=exc.line)


def statement_failed(step: Step, failed: StatementFailed) -> Exception:
    """A statement of a transactional file run statement by statement (``stall_timeout``) failed."""
    error, st = failed.error, failed.statement
    return missing_extension(step, error) or MigrationFailedError(
        f"{step.verb} {step.script.origin} failed at line {st.line} (statement {failed.index} of "
        f"{failed.total}): {describe(error)}\n  {excerpt(st.sql)}\n"
        "Its transaction was rolled back: nothing of it was applied.",
        file=step.script.origin,
        statement=st.sql,
        line=st.line,
        sqlstate=error.sqlstate,
    )


def failed_outside_tx(
    origin: str,
    st: Statement,
    index: int,
    total: int,
    exc: asyncpg.PostgresError,
    left: list[str],
) -> MigrationFailedError:
    """Statement ``index`` of a no-transaction file failed; ``left``: INVALID indexes it left."""
    msg = (
        f"{origin} failed at line {st.line} (statement {index} of {total}): "
        f"{describe(exc)}\n  {excerpt(st.sql)}\n"
        f"This file runs outside a transaction: its first {index - 1} statement(s) stayed applied."
    )
    if left:
        return InvalidIndexError.left_behind(
            msg,
            file=origin,
            indexes=left,
            statement=st.sql,
            line=st.line,
            sqlstate=exc.sqlstate,
        )
    return MigrationFailedError(
        msg, file=origin, statement=st.sql, line=st.line, sqlstate=exc.sqlstate
    )
