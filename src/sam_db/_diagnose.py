"""Diagnosing a failed step: typed errors that name the file, line and statement, and say what to do.

A transactional file is sent as one query, and PostgreSQL reports no statement index for it: the
failing statement is found from the error's position, or by replaying the statements one by one
in a transaction rolled back after. A missing extension gets install advice of its own.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import asyncpg

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
        return DDLLockTimeoutError(
            f"{step.verb} {step.script.origin} could not finish within stall_timeout={s.stall_timeout:g}s "
            f"(lock waits and execution of all its statements), {attempts} times; the last attempt "
            f"ran out at line {exc.statement.line}. Each attempt was rolled back, releasing its locks. "
            "A long transaction may hold a lock it needs (find it in pg_stat_activity / pg_locks), "
            "or the migration itself runs longer: raise stall_timeout or split the file.",
            file=step.script.origin,
            statement=exc.statement.sql,
            line=exc.statement.line,
        )
    return DDLLockTimeoutError(
        f"{step.verb} {step.script.origin} waited more than lock_timeout="
        f"{s.ddl_lock_timeout:g}s for a table lock, {attempts} times: {exc}. "
        "A long transaction holds a lock on a table it changes; find it in pg_stat_activity "
        "or pg_locks and end it, or raise lock_timeout / lock_retries.",
        file=step.script.origin,
        sqlstate=exc.sqlstate,
    )


_EXTENSION_RE = re.compile(r'extension "([^"]+)"')


def _message(exc: asyncpg.PostgresError) -> str:
    """The primary message only: ``str(exc)`` adds DETAIL and HINT lines of its own."""
    return str(getattr(exc, "message", None) or exc).rstrip(".")


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
    message = _message(exc)
    m = _EXTENSION_RE.search(message)
    if (
        exc.sqlstate not in ("0A000", "58P01")
        or m is None
        or (
            "control file" not in (message + str(getattr(exc, "detail", "") or ""))
            and "not available" not in message
        )
    ):
        return None
    name = m.group(1)
    how = (
        "pgvector is not installed on this PostgreSQL server. Install it on the server (Debian/Ubuntu "
        "with the PGDG repository: apt install postgresql-<major>-pgvector; macOS: brew install "
        "pgvector; or build it: https://github.com/pgvector/pgvector#installation), or use the "
        "embedded server, which has it: pip install 'sam-db[embedded]' and run without a DSN."
        if name == "vector"
        else f"Install the {name} extension on the PostgreSQL server."
    )
    return ExtensionMissingError(
        f"{step.script.origin} needs the PostgreSQL extension {name!r}, which this server does not "
        f"have ({message}). {how} The migration was rolled back; earlier migrations stay applied.",
        extension=name,
    )


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
        return InvalidIndexError(
            msg + f" It left INVALID index(es) behind: {', '.join(left)}. The next migrate "
            "drops an INVALID index this file builds (DROP INDEX CONCURRENTLY) and builds it "
            "again; fix the cause first (e.g. duplicate keys for a UNIQUE index). The file "
            "was not recorded as applied.",
            file=origin,
            indexes=left,
            statement=st.sql,
            line=st.line,
            sqlstate=exc.sqlstate,
        )
    return MigrationFailedError(
        msg, file=origin, statement=st.sql, line=st.line, sqlstate=exc.sqlstate
    )
