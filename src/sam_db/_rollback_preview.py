"""``sam-db rollback``: say what it will undo, and ask before it drops tables that hold rows.

A rollback file drops what its migration made, data included. The command first prints the
migrations it will undo and the tables their rollback files drop, with how many rows each holds;
when any holds rows it asks on a terminal, and elsewhere (CI, a script) needs ``--yes``. The
embedded default (no DSN given: a developer's local database) is not asked about.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from typing import NamedTuple

import asyncpg

from . import _engine, _tracking
from ._connect import connect
from ._engine import Settings
from ._ident import quote_ident
from ._migration import MigrationFile
from ._plan import Backward, resolve_target
from ._sqlsplit import SqlSyntaxError, split_statements
from ._tracking import TrackingSql
from .errors import ConfigurationError

#: Rows counted per table at most (the count is shown, not needed exactly beyond it).
COUNT_CAP = 1_000_000

_NAME = r'(?:"(?:[^"]|"")+"|[^\s.,;"]+)'
_QUALIFIED = rf"{_NAME}(?:\s*\.\s*{_NAME})?"
_DROP_TABLE = re.compile(
    rf"DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?P<names>{_QUALIFIED}(?:\s*,\s*{_QUALIFIED})*)", re.I
)


class Undo(NamedTuple):
    """One migration a rollback will undo, and the tables its rollback file drops."""

    migration: MigrationFile
    tables: list[tuple[str, int]]  # (table as shown, rows it holds, up to COUNT_CAP)


def dropped_tables(sql: str) -> list[str]:
    """The table names ``DROP TABLE`` statements in ``sql`` name, as written."""
    try:
        statements = split_statements(sql)
    except SqlSyntaxError:
        return []
    names: list[str] = []
    for stmt in statements:
        m = _DROP_TABLE.match(sql[stmt.start : stmt.end])
        if m:
            names += re.findall(_QUALIFIED, m["names"])
    return names


async def preview(
    dsn: str, settings: Settings, *, steps: int, target: str | int | None
) -> list[Undo]:
    """What ``rollback`` with these arguments would undo now, newest first; changes nothing.

    Raises what ``rollback`` would raise before undoing anything (an unknown target, a migration
    with no rollback file).
    """
    settings = settings.validated()
    files = settings.files()
    limit = resolve_target(files, target, allow_zero=True)
    conn = await connect(dsn, purpose="rollback")
    try:
        applied = await _tracking.read(conn, TrackingSql.for_schema(settings.schema)) or []
        chosen = Backward(files, applied, steps=steps, limit=limit)
        undo = []
        for number in chosen.wanted:
            mig = chosen.by_number[number]
            tables = [
                counted
                for name in dropped_tables(mig.rollback_sql or "")
                if (counted := await _rows(conn, name, settings.schema)) is not None
            ]
            undo.append(Undo(mig, tables))
        return undo
    finally:
        await conn.close()


async def _rows(conn: asyncpg.Connection, name: str, schema: str | None) -> tuple[str, int] | None:
    """``name`` (resolved as the rollback would, in ``schema``) and its rows; None if absent."""
    qualified = name if schema is None or "." in name else f"{quote_ident(schema)}.{name}"
    found = await conn.fetchrow(
        "SELECT n.nspname, c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
        qualified,
    )
    if found is None:
        return None
    table = f"{quote_ident(found['nspname'])}.{quote_ident(found['relname'])}"
    rows = await conn.fetchval(
        f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT {COUNT_CAP}) AS t"  # noqa: S608
    )
    return f"{found['nspname']}.{found['relname']}", int(rows)


def describe(undo: list[Undo]) -> str:
    """The plan as printed: each migration, then each table it drops and its rows."""
    lines = ["rollback will undo, newest first:"]
    for u in undo:
        lines.append(
            f"  {u.migration.filename} (runs {u.migration.version}_{u.migration.name}.rollback.sql)"
        )
        for table, rows in u.tables:
            held = "empty" if rows == 0 else _count(rows)
            lines.append(f"    drops table {table} ({held})")
    return "\n".join(lines)


def _count(rows: int) -> str:
    more = "+" if rows >= COUNT_CAP else ""
    return f"{rows:,}{more} row{'' if rows == 1 else 's'}"


def _confirmed(holding: list[tuple[str, int]], yes: bool) -> bool:
    """Whether the user agrees to drop ``holding``: ``--yes``, else asked on a terminal."""
    if yes:
        return True
    if not sys.stdin.isatty():
        names = ", ".join(f"{t} ({_count(n)})" for t, n in holding)
        raise ConfigurationError(
            f"rollback would drop tables that hold rows: {names}. Nothing was rolled back; "
            "pass --yes to confirm (or run it on a terminal to be asked)"
        )
    print("These tables hold rows that the rollback deletes for good.", file=sys.stderr)
    print("Roll back? Type 'yes' to go on: ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def cmd_rollback(args: argparse.Namespace) -> int:
    """``sam-db rollback [--steps N | --target V] [--yes]``."""
    from ._cli_context import given_dsn, resolve_dsn, settings

    chosen = settings(args)
    embedded = given_dsn(args) is None  # the default local database: no question asked
    dsn = resolve_dsn(args)
    undo = asyncio.run(preview(dsn, chosen, steps=args.steps, target=args.target))
    if not undo:
        print("nothing to roll back")
        return 0
    print(describe(undo), flush=True)
    holding = [(t, n) for u in undo for t, n in u.tables if n > 0]
    if holding and not embedded and not _confirmed(holding, args.yes):
        print("nothing was rolled back", file=sys.stderr)
        return 1
    done = asyncio.run(_engine.rollback(dsn, chosen, steps=args.steps, to=args.target))
    for d in done:
        print(f"rolled back {d.migration.filename} ({d.execution_ms:.1f} ms)")
    if not done:
        print("nothing to roll back")
    return 0
