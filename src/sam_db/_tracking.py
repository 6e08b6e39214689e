"""The ``schema_migrations`` tracking table: its DDL and the statements that read and write it.

Names are built once per schema with :func:`quote_ident`; values always travel as parameters.
"""

from datetime import datetime
from typing import Any, NamedTuple

import asyncpg

from ._ident import quote_ident
from .errors import MigrationError

TABLE = "schema_migrations"


class AppliedRow(NamedTuple):
    """One row of the tracking table: a migration applied to this database."""

    version: str
    name: str
    checksum: str
    checksum_algorithm: str
    applied_at: datetime
    execution_ms: float

    @property
    def number(self) -> int:
        return int(self.version)


class TrackingSql:
    """The tracking-table statements for one schema (``None``: unqualified, the search_path's)."""

    __slots__ = ("table",)

    def __init__(self, table: str) -> None:
        self.table = table

    @classmethod
    def for_schema(cls, schema: str | None) -> "TrackingSql":
        name = quote_ident(TABLE)
        return cls(table=f"{quote_ident(schema)}.{name}" if schema else name)

    @property
    def create(self) -> str:
        return f"""CREATE TABLE IF NOT EXISTS {self.table} (
    version            text PRIMARY KEY CHECK (version ~ '^[0-9]+$'),
    name               text NOT NULL,
    checksum           text NOT NULL,
    checksum_algorithm text NOT NULL DEFAULT 'sha256',
    applied_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    execution_ms       double precision NOT NULL,
    applied_by         text NOT NULL DEFAULT current_user
)"""

    @property
    def select(self) -> str:
        # self.table is built by quote_ident: the only text spliced into these statements.
        cols = "version, name, checksum, checksum_algorithm, applied_at, execution_ms"
        return f"SELECT {cols} FROM {self.table}"  # noqa: S608

    @property
    def insert(self) -> str:
        return (
            f"INSERT INTO {self.table} (version, name, checksum, checksum_algorithm, execution_ms) "  # noqa: S608
            "VALUES ($1, $2, $3, $4, $5)"
        )

    @property
    def delete(self) -> str:
        return f"DELETE FROM {self.table} WHERE version = $1"  # noqa: S608

    @property
    def update_checksum(self) -> str:
        return f"UPDATE {self.table} SET checksum = $2, checksum_algorithm = $3 WHERE version = $1"  # noqa: S608


def rows(records: list[Any]) -> list[AppliedRow]:
    """Tracking rows from fetched records, ordered by numeric version."""
    out = [
        AppliedRow(
            version=r["version"],
            name=r["name"],
            checksum=r["checksum"],
            checksum_algorithm=r["checksum_algorithm"],
            applied_at=r["applied_at"],
            execution_ms=float(r["execution_ms"]),
        )
        for r in records
    ]
    out.sort(key=lambda r: r.number)
    return out


async def read(conn: asyncpg.Connection, sql: TrackingSql) -> list[AppliedRow] | None:
    """The applied migrations, or ``None`` when the table (or its schema) does not exist yet.

    One query: a missing table is learnt from the error, not from a catalog look-up first. On a
    caller's connection that is inside a transaction the query runs in a savepoint, so that error
    does not abort the caller's transaction.
    """
    try:
        if conn.is_in_transaction():
            async with conn.transaction():
                records = await conn.fetch(sql.select)
        else:
            records = await conn.fetch(sql.select)
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        return None
    except asyncpg.UndefinedColumnError as exc:
        raise MigrationError(
            f"{sql.table} exists but is not sam_db's tracking table ({exc}); another migration tool "
            "(dbmate, Rails, Flyway, ...) probably created it. Migrate into another "
            "schema (schema=...) or rename that table."
        ) from None
    return rows(records)
