"""Small helpers shared by the engine tests."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg

from sam_db._ident import quote_ident
from sam_db.testing._server import with_database


def write_migrations(folder: Path, files: dict[str, str]) -> Path:
    """Write ``{filename: sql}`` into ``folder`` (created) and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (folder / name).write_text(sql, encoding="utf-8")
    return folder


async def execute(dsn: str, *statements: str) -> None:
    """Run ``statements`` one after another on a short-lived connection to ``dsn``."""
    conn = await asyncpg.connect(dsn)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def fresh_database(
    pg_admin_dsn: str, prefix: str = "t", template: str | None = None
) -> Iterator[str]:
    """DSN of a brand-new database on the test server (empty, or a copy of ``template``),
    dropped on exit."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    copy = f" TEMPLATE {quote_ident(template)}" if template else ""
    asyncio.run(execute(pg_admin_dsn, f"CREATE DATABASE {quote_ident(name)}{copy}"))
    try:
        yield with_database(pg_admin_dsn, name)
    finally:
        asyncio.run(
            execute(pg_admin_dsn, f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
        )


async def fetchval(dsn: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def table_exists(dsn: str, qualified: str) -> bool:
    return bool(await fetchval(dsn, "SELECT to_regclass($1) IS NOT NULL", qualified))


# A catalog snapshot of one schema: tables, columns, constraints, indexes, functions, triggers,
# views and sequences with their definitions (extension members left out). Two equal snapshots
# mean an identical schema.
SNAPSHOT_SQL = """
SELECT 'rel' AS k, c.relname || ':' || c.relkind::text AS v FROM pg_class c
  WHERE c.relnamespace = $1::regnamespace
UNION ALL
SELECT 'col', c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE c.relnamespace = $1::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'con', conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = $1::regnamespace
UNION ALL
SELECT 'idx', indexrelid::regclass::text || ' ' || pg_get_indexdef(indexrelid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = $1::regnamespace
UNION ALL
SELECT 'fn', p.oid::regprocedure::text || ' ' || md5(pg_get_functiondef(p.oid))
  FROM pg_proc p WHERE p.pronamespace = $1::regnamespace AND p.prokind IN ('f', 'p')
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT 'trg', tgrelid::regclass::text || ' ' || pg_get_triggerdef(t.oid)
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
  WHERE c.relnamespace = $1::regnamespace AND NOT t.tgisinternal
UNION ALL
SELECT 'view', c.relname || ' ' || pg_get_viewdef(c.oid)
  FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('v', 'm')
UNION ALL
SELECT 'type', t.typname FROM pg_type t
  WHERE t.typnamespace = $1::regnamespace AND t.typtype IN ('e', 'c', 'd')
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""


async def snapshot(dsn: str, schema: str = "public") -> list[tuple[str, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [(r["k"], r["v"]) for r in await conn.fetch(SNAPSHOT_SQL, schema)]
    finally:
        await conn.close()
