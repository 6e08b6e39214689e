"""One run of the engine: what it works on, the steps it takes, and what it records.

A *run* is one call of ``migrate``, ``rollback`` or ``repair`` on one database: its connection(s),
its settings, the schema it works in (with that schema's search_path, lock key and tracking
statements) and the steps it has executed so far. A *step* is one migration file applied, or one
rollback file run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NamedTuple

import asyncpg

from . import _lock, _pgvector
from ._checksum import ALGORITHM
from ._migration import MigrationFile
from ._search_path import search_path
from ._stall import ms
from ._tracking import TrackingSql
from .errors import ConfigurationError

if TYPE_CHECKING:
    from ._connect import Link
    from ._engine import Settings

# Records are NamedTuples, not dataclasses: dataclasses cost import time, and the CLI's start-up
# time is part of every `sam-db status` in CI.

#: ``apply``: run the migration file and add its tracking row; ``rollback``: run its
#: ``.rollback.sql`` and delete the row.
Direction = Literal["apply", "rollback"]

#: The run's search_path and DDL lock_timeout; ``$3``: transaction-local (true) or session (false).
SETTINGS_SQL = "SELECT set_config('search_path', $1, $3), set_config('lock_timeout', $2, $3)"

#: Which schema a run works in, whether it exists, and where pgvector lives: one query.
_WHERE_SQL = f"""SELECT coalesce($1::text, current_schema()) AS schema,
       to_regnamespace(quote_ident(coalesce($1::text, current_schema()))) IS NOT NULL AS present,
       {_pgvector.SCHEMA_SUBQUERY} AS vector_schema"""


class Script(NamedTuple):
    """The SQL a step runs, where it comes from, and whether it runs in a transaction."""

    sql: str
    origin: str
    transactional: bool


class Step(NamedTuple):
    """One migration applied or rolled back."""

    migration: MigrationFile
    script: Script
    direction: Direction

    @classmethod
    def apply(cls, m: MigrationFile) -> Step:
        return cls(m, Script(m.sql, m.origin, m.transactional), "apply")

    @classmethod
    def rollback(cls, m: MigrationFile) -> Step:
        assert m.rollback_sql is not None and m.rollback_origin is not None
        return cls(
            m, Script(m.rollback_sql, m.rollback_origin, m.rollback_transactional), "rollback"
        )

    @property
    def verb(self) -> str:
        """How messages name the step: "migration 002_x.sql" or "rollback of 002_x.sql"."""
        return "migration" if self.direction == "apply" else "rollback of"


class Executed(NamedTuple):
    """A migration this call applied (or rolled back) and how long its SQL took."""

    migration: MigrationFile
    execution_ms: float


class Run:
    """State of one run: where it works, its lock key, and what it has executed so far."""

    __slots__ = (
        "current",
        "ensured",
        "executed",
        "key",
        "link",
        "schema",
        "schema_exists",
        "search_path",
        "settings",
        "sql",
    )

    def __init__(
        self,
        link: Link,
        settings: Settings,
        schema: str,
        search_path: str,
        schema_exists: bool,
    ) -> None:
        self.link = link
        self.settings = settings
        self.schema = schema
        self.search_path = search_path
        self.key = _lock.lock_key(schema)
        self.sql = TrackingSql.for_schema(schema)
        self.schema_exists = schema_exists
        #: Whether this run has made sure of the schema and the tracking table.
        self.ensured = False
        self.executed: list[Executed] = []
        #: The step being attempted (None before one is chosen): named by its error messages.
        self.current: Step | None = None


async def start_run(link: Link, settings: Settings) -> Run:
    """Find the run's schema (the connection's current one unless ``settings.schema``); reads only."""
    row = await link.conn.fetchrow(_WHERE_SQL, settings.schema)
    assert row is not None
    schema = row["schema"]
    if schema is None:
        raise ConfigurationError(
            "the connection's search_path names no existing schema: pass schema='...' to choose one"
        )
    path = search_path(schema, row["vector_schema"])
    return Run(link, settings, schema, path, schema_exists=bool(row["present"]))


async def apply_settings(run: Run, conn: asyncpg.Connection, *, local: bool) -> None:
    """Set the run's search_path and DDL lock_timeout: transaction-local, or for the session."""
    await conn.execute(SETTINGS_SQL, run.search_path, ms(run.settings.ddl_lock_timeout), local)


def insert_args(m: MigrationFile, elapsed: float) -> tuple[str, str, str, str, float]:
    """The values of ``m``'s tracking row (``TrackingSql.insert``'s parameters)."""
    return (m.version, m.name, m.checksum, ALGORITHM, elapsed)


async def record(run: Run, conn: asyncpg.Connection, step: Step, elapsed: float) -> None:
    """Write ``step`` to the tracking table: add the row of an applied file, delete a rolled back one."""
    m = step.migration
    if step.direction == "apply":
        await conn.execute(run.sql.insert, *insert_args(m, elapsed))
    else:
        await conn.execute(run.sql.delete, m.version)
