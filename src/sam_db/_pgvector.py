"""Where the pgvector extension is installed: the one look-up the engine, the store and the
pytest plugin share.

The extension may live in any schema (``public``, an ``extensions`` schema, a sam_db schema), and
its type, operators and the driver's codec must be named with that schema.
"""

from __future__ import annotations

import asyncpg

#: The schema pgvector lives in (``ext_schema``) and its version; no row when it is not installed.
EXTENSION_SQL = """
SELECT n.nspname AS ext_schema, e.extversion
FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'vector'
"""

#: The same look-up as a scalar subquery, for statements that fetch it with other values.
SCHEMA_SUBQUERY = f"(SELECT ext_schema FROM ({EXTENSION_SQL}) AS pgvector)"  # noqa: S608 -- constant text


async def vector_schema(conn: asyncpg.Connection) -> str | None:
    """The schema pgvector is installed in on ``conn``'s database, or None."""
    row = await conn.fetchrow(EXTENSION_SQL)
    return None if row is None else str(row["ext_schema"])
