"""Error reporting of the migration engine: typed errors that name the file, line and statement."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import asyncpg

from ._sqlsplit import SqlSyntaxError, Statement, line_and_column, split_statements
from ._stall import StallTimeout
from .errors import DDLLockTimeoutError, ExtensionMissingError, MigrationFailedError

if TYPE_CHECKING:
    from ._engine import _Ctx, _Step


def timed_out(
    ctx: _Ctx, step: _Step, exc: asyncpg.LockNotAvailableError | StallTimeout, attempts: int
) -> DDLLockTimeoutError:
    """The error once every attempt of ``step`` hit ``lock_timeout`` or ``stall_timeout``."""
    s = ctx.settings
    if isinstance(exc, StallTimeout):
        return DDLLockTimeoutError(
            f"{verb(step)} {step.script.origin} could not finish within stall_timeout={s.stall_timeout:g}s "
            f"(lock waits and execution of all its statements), {attempts} times; the last attempt "
            f"ran out at line {exc.statement.line}. Each attempt was rolled back, releasing its locks. "
            "A long transaction may hold a lock it needs (find it in pg_stat_activity / pg_locks), "
            "or the migration itself runs longer: raise stall_timeout or split the file.",
            file=step.script.origin,
            statement=exc.statement.sql,
            line=exc.statement.line,
        )
    return DDLLockTimeoutError(
        f"{verb(step)} {step.script.origin} waited more than lock_timeout="
        f"{s.ddl_lock_timeout:g}s for a table lock, {attempts} times: {exc}. "
        "A long transaction holds a lock on a table it changes; find it in pg_stat_activity "
        "or pg_locks and end it, or raise lock_timeout / lock_retries.",
        file=step.script.origin,
        sqlstate=exc.sqlstate,
    )


def verb(step: _Step) -> str:
    return "migration" if step.record == "insert" else "rollback of"


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


def missing_extension(step: _Step, exc: asyncpg.PostgresError) -> ExtensionMissingError | None:
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


async def failure(ctx: _Ctx, step: _Step, exc: asyncpg.PostgresError) -> Exception:
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
        found = await _locate(ctx, statements)
        if found is not None:
            where, located = found
            cause = located or exc
        loc = f"line {where.line}" if where else "an unknown statement"
    index = f" (statement {statements.index(where) + 1} of {len(statements)})" if where else ""
    text = (
        f"{verb(step)} {script.origin} failed at {loc}{index}: {describe(cause)}"
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
    ctx: _Ctx, statements: list[Statement]
) -> tuple[Statement, asyncpg.PostgresError | None] | None:
    """Find which statement fails by replaying them one by one in a transaction rolled back after.

    PostgreSQL reports no statement index for a multi-statement query, and a runtime error (unlike a
    syntax error) carries no position, so this replay is how the error can name the statement.
    """
    if len(statements) == 1:
        return statements[0], None
    conn = ctx.link.conn
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute(
            "SELECT set_config('search_path', $1, true), set_config('lock_timeout', '1s', true)",
            ctx.search_path,
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
