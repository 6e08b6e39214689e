"""The indexes a no-transaction migration builds concurrently, and whether they are INVALID.

A ``CREATE INDEX CONCURRENTLY`` that fails, or whose client dies, leaves an INVALID index behind
(its build may even go on in an orphaned backend), and ``IF NOT EXISTS`` skips an INVALID index as
if it were fine. So a no-transaction file is recorded only once every index it names is valid, and
``status`` reports a file whose index is INVALID as failed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import asyncpg

from ._ident import quote_ident
from ._sqlsplit import SqlSyntaxError, split_statements
from .errors import InvalidIndexError

if TYPE_CHECKING:
    from ._migration import MigrationFile

log = logging.getLogger("sam_db")

#: Seconds between looks at a build in progress, and between log lines about it.
BUILD_POLL = 0.1
BUILD_LOG = 2.0

_IDENT = r'(?:"(?:[^"]|"")+"|[^\W\d][\w$]*)'
_LEADING_NOISE = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*(?:[^*]|\*(?!/))*\*/)*")
_CREATE_INDEX = re.compile(
    r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    rf"(?!ON\b)(?P<name>{_IDENT})\s+ON\s+(?:ONLY\s+)?"
    rf"(?P<table>{_IDENT}(?:\s*\.\s*{_IDENT})?)",
    re.I,
)

_STATE_SQL = """
SELECT w.ord, n.nspname, c.relname, format('%I.%I', n.nspname, c.relname) AS shown,
       i.indisvalid AS valid,
       (SELECT p.pid FROM pg_stat_progress_create_index p WHERE p.index_relid = c.oid LIMIT 1)
         AS builder
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS w(tbl, idx, ord)
JOIN pg_class t ON t.oid = to_regclass(w.tbl)
JOIN pg_class c ON c.relnamespace = t.relnamespace AND c.relname = w.idx
JOIN pg_index i ON i.indexrelid = c.oid
JOIN pg_namespace n ON n.oid = c.relnamespace
"""


class BuiltIndex(NamedTuple):
    """An index a statement builds concurrently: its name (unquoted) and its table as written."""

    name: str
    table: str


class IndexState(NamedTuple):
    """Where a named index stands: its ``shown`` name (``schema.name``), validity, who builds it."""

    built: BuiltIndex
    shown: str
    schema: str
    valid: bool
    builder: int | None

    @property
    def drop_sql(self) -> str:
        name = f"{quote_ident(self.schema)}.{quote_ident(self.built.name)}"
        return f"DROP INDEX CONCURRENTLY IF EXISTS {name}"


class Broken(NamedTuple):
    """A no-transaction file's INVALID indexes, and whether one of them is being built right now."""

    indexes: tuple[str, ...]
    building: bool


def _unquote(ident: str) -> str:
    return ident[1:-1].replace('""', '"') if ident.startswith('"') else ident.lower()


def built_indexes(sql: str) -> list[BuiltIndex]:
    """The indexes that ``sql``'s statements create concurrently, by name (unnamed ones are not)."""
    try:
        statements = split_statements(sql)
    except SqlSyntaxError:
        return []
    out: list[BuiltIndex] = []
    for st in statements:
        text = st.sql
        start = _LEADING_NOISE.match(text)
        m = _CREATE_INDEX.match(text, start.end() if start else 0)
        if m:
            out.append(BuiltIndex(_unquote(m["name"]), " ".join(m["table"].split())))
    return out


def _in_schema(table: str, schema: str | None) -> str:
    """``table`` qualified with ``schema`` when written unqualified (and a schema is given)."""
    if schema is None or re.fullmatch(rf"{_IDENT}\s*\.\s*{_IDENT}", table):
        return table
    return f"{quote_ident(schema)}.{table}"


async def states(
    conn: asyncpg.Connection, indexes: Sequence[BuiltIndex], schema: str | None
) -> list[IndexState]:
    """The existing ones of ``indexes``, with validity and the pid of a build in progress."""
    if not indexes:
        return []
    rows = await conn.fetch(
        _STATE_SQL, [_in_schema(i.table, schema) for i in indexes], [i.name for i in indexes]
    )
    return [
        IndexState(
            built=indexes[r["ord"] - 1],
            shown=r["shown"],
            schema=r["nspname"],
            valid=r["valid"],
            builder=r["builder"],
        )
        for r in sorted(rows, key=lambda r: r["ord"])
    ]


async def settle(
    conn: asyncpg.Connection,
    indexes: Sequence[BuiltIndex],
    schema: str | None,
    origin: str,
    *,
    wait: float,
) -> None:
    """Before a file runs: wait for builds of its INVALID indexes, then drop those still INVALID.

    A build still going on belongs to an orphaned backend (a migrator that died mid-build: only
    the lock holder builds, and we hold the lock now); when it finishes the index is valid. One
    that is INVALID with no build is a leftover the file's own statement builds again once dropped.
    """
    ends = time.monotonic() + wait
    next_log = 0.0
    while True:
        bad = [s for s in await states(conn, indexes, schema) if not s.valid]
        busy = [s for s in bad if s.builder is not None]
        if not busy:
            break
        now = time.monotonic()
        names = ", ".join(f"{s.shown} (backend pid {s.builder})" for s in busy)
        if now >= ends:
            raise InvalidIndexError.still_building(
                file=origin,
                indexes=[s.shown for s in busy],
                builders=[s.builder for s in busy if s.builder is not None],
                wait=wait,
            )
        if now >= next_log:
            log.info("%s: waiting for the build of INVALID index %s to end", origin, names)
            next_log = now + BUILD_LOG
        await asyncio.sleep(min(BUILD_POLL, ends - now))
    for s in bad:
        log.warning(
            "%s: dropping INVALID index %s left by an earlier run that failed or was killed; "
            "this file builds it again",
            origin,
            s.shown,
        )
        try:
            await conn.execute(s.drop_sql)
        except asyncpg.PostgresError as exc:
            raise InvalidIndexError.cannot_drop(
                file=origin,
                index=s.shown,
                said=f"{exc.__class__.__name__}: {exc}",
                sqlstate=exc.sqlstate,
            ) from None


async def verify(
    conn: asyncpg.Connection, indexes: Sequence[BuiltIndex], schema: str | None, origin: str
) -> None:
    """After a file ran: raise :class:`InvalidIndexError` if an index it builds is INVALID."""
    bad = [s.shown for s in await states(conn, indexes, schema) if not s.valid]
    if bad:
        raise InvalidIndexError.invalid_after_run(file=origin, indexes=bad)


async def broken_files(
    conn: asyncpg.Connection, files: Sequence[MigrationFile], schema: str | None
) -> dict[int, Broken]:
    """The no-transaction files whose concurrently built indexes exist INVALID, by version number.

    One query. Where the catalogs or progress views are restricted there is nothing to report.
    """
    named = [(f.number, i) for f in files if not f.transactional for i in built_indexes(f.sql)]
    if not named:
        return {}
    try:
        found = await states(conn, [i for _, i in named], schema)
    except asyncpg.PostgresError:
        return {}
    owner = {id(i): number for number, i in named}
    out: dict[int, Broken] = {}
    for st in found:
        if not st.valid:
            number = owner[id(st.built)]
            was = out.get(number, Broken((), False))
            out[number] = Broken((*was.indexes, st.shown), was.building or st.builder is not None)
    return out
