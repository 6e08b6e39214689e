"""Per-session state of the plugin: the fixture loop, admin connections, template and supplies.

Everything asynchronous here runs on the :class:`~sam_db.testing._loop.BackgroundLoop`; the
synchronous methods are what the fixtures call.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import asyncpg

from .. import _lock, _search_path
from .._ident import quote_ident
from .._sources import Source
from ._loop import BackgroundLoop
from ._server import with_database
from ._supply import Supply
from ._template import LOCK_WAIT, TESTING_LOCK_CLASS, Template, drop_database, ensure_template

#: Advisory lock key serialising the first schema migration of each session (database-wide
#: objects such as ``CREATE EXTENSION IF NOT EXISTS`` race when two schemas migrate at once).
SCHEMA_LOCK_KEY = (TESTING_LOCK_CLASS, 2)


@dataclass(frozen=True)
class Options:
    """What the user configured: extra migration sources, the schema, the clone strategy."""

    sources: tuple[Source, ...] = ()
    schema: str | None = None
    strategy: str = "wal_log"
    prefetch: bool = True


def unique_name(prefix: str) -> str:
    """``prefix`` + 16 random hex digits: unique across workers, sessions and machines."""
    return f"{prefix}{uuid.uuid4().hex[:16]}"


class Runtime:
    """The server connection of one pytest session (one per xdist worker)."""

    def __init__(self, admin_dsn: str, options: Options, loop: BackgroundLoop) -> None:
        self.admin_dsn = admin_dsn
        self.options = options
        self.loop = loop
        self._pool: asyncpg.Pool[Any] | None = None
        self._template: Template | None = None
        self._clones: Supply | None = None
        self._schemas: Supply | None = None
        self._schema_locked_once = False
        self._tx_database: str | None = None
        #: Where pgvector lives in the template's databases (looked up once; "" = not installed).
        self.vector_schema: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def _admin_pool(self) -> asyncpg.Pool[Any]:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(
                self.admin_dsn,
                min_size=1,
                max_size=4,
                statement_cache_size=0,
                server_settings={"application_name": "sam_db pytest plugin"},
            )
        return self._pool

    @asynccontextmanager
    async def _admin(self) -> AsyncIterator[asyncpg.Connection]:
        """An admin connection from the pool (a proxy that asyncpg treats as a Connection)."""
        pool = await self._admin_pool()
        async with pool.acquire() as proxy:
            conn: Any = proxy  # asyncpg's Connection isinstance check accepts pool proxies
            yield conn

    def close(self) -> None:
        """Drop everything this session made (prefetched clones, schemas, the tx database)."""
        self.loop.run(self._aclose(), timeout=120)

    async def _aclose(self) -> None:
        for supply in (self._clones, self._schemas):
            if supply is not None:
                await supply.close()
        if self._tx_database is not None and self._template is not None:
            async with self._admin() as admin:
                await drop_database(admin, self._tx_database, force=self._template.force_drop)
        if self._pool is not None:
            await self._pool.close()

    # -- template databases ----------------------------------------------------------------

    def template(self) -> Template:
        """The template for this session's migrations, built once (under an advisory lock)."""
        if self._template is None:
            self._template = self.loop.run(self._ensure_template())
        return self._template

    async def _ensure_template(self) -> Template:
        async with self._admin() as admin:
            return await ensure_template(
                admin,
                self.admin_dsn,
                sources=self.options.sources,
                schema=self.options.schema,
                strategy=self.options.strategy,
            )

    async def _clone(self, prefix: str = "sam_db_t_") -> str:
        assert self._template is not None
        name = unique_name(prefix)
        async with self._admin() as admin:
            try:
                await admin.execute(self._template.create_sql(name))
            except asyncpg.InvalidCatalogNameError:
                # The template vanished (another session with other migrations replaced it).
                self._template = await ensure_template(
                    admin,
                    self.admin_dsn,
                    sources=self.options.sources,
                    schema=self.options.schema,
                    strategy=self.options.strategy,
                )
                await admin.execute(self._template.create_sql(name))
        return name

    async def _drop(self, name: str) -> None:
        assert self._template is not None
        async with self._admin() as admin:
            await drop_database(admin, name, force=self._template.force_drop)

    def take_database(self) -> str:
        """The name of a fresh clone of the template; give it back with :meth:`give_back_database`."""
        self.template()
        if self._clones is None:
            self._clones = Supply(self._clone, self._drop, prefetch=self.options.prefetch)
        return self.loop.run(self._clones.take())

    def give_back_database(self, name: str) -> None:
        assert self._clones is not None
        self.loop.run(self._clones.give_back(name))

    def dsn(self, database: str) -> str:
        return with_database(self.admin_dsn, database)

    def tx_database(self) -> str:
        """One clone kept for the whole session, for the rolled-back-transaction fixture."""
        self.template()
        if self._tx_database is None:
            self._tx_database = self.loop.run(self._clone("sam_db_x_"))
        return self._tx_database

    def reset_tx_database(self) -> None:
        """Replace the session clone (a test committed in it, so it is no longer pristine)."""
        if self._tx_database is not None:
            old, self._tx_database = self._tx_database, None
            self.loop.run(self._drop(old))

    # -- fresh schemas in the server's own database ------------------------------------------

    async def _new_schema(self) -> str:
        # All files in one transaction (no lock, no transaction per file): nobody else can see
        # the schema before it is complete.
        from .._api import migrate_new_schema

        name = unique_name("sam_db_s_")
        async with self._admin() as conn:
            try:
                if self._schema_locked_once:
                    await migrate_new_schema(conn, schema=name, sources=self.options.sources)
                else:
                    async with _lock.session(
                        conn, SCHEMA_LOCK_KEY, wait=LOCK_WAIT, what="the first-schema lock"
                    ):
                        await migrate_new_schema(conn, schema=name, sources=self.options.sources)
                    self._schema_locked_once = True
            except BaseException:
                # A failing migration is re-run step by step for its diagnostics, which leaves
                # the files before it applied: drop that half-built schema.
                with suppress(Exception):
                    await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(name)} CASCADE")
                raise
        return name

    async def _drop_schema(self, name: str) -> None:
        async with self._admin() as conn:
            await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(name)} CASCADE")

    def take_schema(self) -> str:
        if self._schemas is None:
            self._schemas = Supply(
                self._new_schema, self._drop_schema, prefetch=self.options.prefetch, serial=True
            )
        return self.loop.run(self._schemas.take())

    def give_back_schema(self, name: str) -> None:
        assert self._schemas is not None
        self.loop.run(self._schemas.give_back(name))


def search_path(schema: str | None) -> dict[str, str]:
    """``server_settings`` putting ``schema`` first on the search_path (sam_db's policy)."""
    if not schema:
        return {}
    return {"search_path": _search_path.search_path(schema)}
