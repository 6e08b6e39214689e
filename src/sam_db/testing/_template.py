"""The template database every ``sam_db_dsn`` clone is copied from, and the SQL of cloning.

The template's name is derived from a fingerprint of what would be in it (every migration's
version, name and checksum, the target schema, the sam_db version), so an unchanged project reuses
the template left on a persistent server by an earlier session, and any change to a migration file
gives a new name: the old template of the same configuration is dropped and a new one built. Building happens under a
PostgreSQL advisory lock (a bounded, logged wait), so concurrent sessions and xdist workers build it once between them,
whichever machine they run on.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from .. import __version__, _lock
from .._ident import quote_ident
from .._sources import Source, discover
from ._server import with_database

log = logging.getLogger("sam_db.testing")

TEMPLATE_PREFIX = "sam_db_tpl_"
#: The plugin's advisory locks: a class of their own ("SAMT") beside the migration lock's.
TESTING_LOCK_CLASS = 0x53414D54
#: Taken while a template is checked or built.
TEMPLATE_LOCK_KEY = (TESTING_LOCK_CLASS, 1)
#: Seconds a session waits for another to finish building a template (or a first schema).
LOCK_WAIT = 300.0
#: ``CREATE DATABASE … STRATEGY`` exists from PostgreSQL 15; older servers always copy files.
STRATEGY_MIN_VERSION = 150000
STRATEGIES = ("wal_log", "file_copy")


def family(sources: Sequence[Source], schema: str | None) -> str:
    """Eight hex digits naming a configuration (sam_db version, schema, source folders).

    Only templates of the same family are dropped as stale: suites with other sources or another
    schema (a parallel session, another service on the same server) keep theirs.
    """
    h = hashlib.sha256(f"sam_db {__version__}\nschema {schema or ''}\n".encode())
    for source in sources:
        where = Path(source).resolve() if isinstance(source, (str, os.PathLike)) else source
        h.update(f"source {where}\n".encode())
    return h.hexdigest()[:8]


def fingerprint(sources: Sequence[Source], schema: str | None) -> str:
    """Twelve hex digits that change whenever the migrated template would differ."""
    h = hashlib.sha256()
    h.update(f"sam_db {__version__}\nschema {schema or ''}\n".encode())
    for m in discover(sources):
        h.update(f"{m.version} {m.name} {m.checksum} {m.transactional}\n".encode())
    return h.hexdigest()[:12]


def template_name(sources: Sequence[Source], schema: str | None) -> str:
    """``sam_db_tpl_<family>_<fingerprint>``."""
    return f"{TEMPLATE_PREFIX}{family(sources, schema)}_{fingerprint(sources, schema)}"


@dataclass(frozen=True)
class Template:
    """A ready template database and the ``CREATE DATABASE`` options cloning it uses."""

    name: str
    strategy: str | None  # None: the server has no STRATEGY option (< 15)
    force_drop: bool  # DROP DATABASE … WITH (FORCE) exists from PostgreSQL 13
    rebuilt: bool  # built by this session (False: found ready on the server)

    def create_sql(self, database: str) -> str:
        sql = f"CREATE DATABASE {quote_ident(database)} TEMPLATE {quote_ident(self.name)}"
        return sql + (f" STRATEGY {self.strategy}" if self.strategy else "")


def choose_strategy(server_version: int, wanted: str) -> str | None:
    """The STRATEGY clause to use: ``wanted`` when the server supports it, else none."""
    if server_version < STRATEGY_MIN_VERSION:
        return None
    return wanted


async def ensure_template(
    admin: asyncpg.Connection,
    admin_dsn: str,
    *,
    sources: Sequence[Source],
    schema: str | None,
    strategy: str,
) -> Template:
    """Return the template for this fingerprint, building it (and dropping stale ones) if needed."""
    from .._api import migrate

    name = template_name(sources, schema)
    version = admin.get_server_version()
    number = version.major * 10000 + version.minor
    async with _lock.session(
        admin, TEMPLATE_LOCK_KEY, wait=LOCK_WAIT, what="the test template lock"
    ):
        ready = await admin.fetchval(
            "SELECT datistemplate FROM pg_database WHERE datname = $1", name
        )
        rebuilt = ready is not True
        if rebuilt:
            if ready is not None:  # a half-built leftover of an interrupted session
                await drop_database(admin, name, force=number >= 130000, template=False)
            await _drop_stale(admin, keep=name, force=number >= 130000)
            log.info("building test template database %s", name)
            await admin.execute(f"CREATE DATABASE {quote_ident(name)}")
            await migrate(with_database(admin_dsn, name), schema=schema, sources=sources)
            # No connections: a connection to a template makes CREATE DATABASE … TEMPLATE fail.
            await admin.execute(
                f"ALTER DATABASE {quote_ident(name)} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"
            )
    return Template(
        name=name,
        strategy=choose_strategy(number, strategy),
        force_drop=number >= 130000,
        rebuilt=rebuilt,
    )


async def _drop_stale(admin: asyncpg.Connection, *, keep: str, force: bool) -> None:
    """Drop the other templates of ``keep``'s family (same configuration, older migrations)."""
    same_family = keep[: keep.rindex("_") + 1]
    rows = await admin.fetch(
        "SELECT datname FROM pg_database WHERE starts_with(datname, $1) AND datname <> $2",
        same_family,
        keep,
    )
    for row in rows:
        log.info("dropping stale test template database %s", row["datname"])
        try:
            await drop_database(admin, row["datname"], force=force, template=True)
        except asyncpg.PostgresError as exc:  # in use by another session's clone: leave it
            log.warning("could not drop stale template %s: %s", row["datname"], exc)


async def drop_database(
    admin: asyncpg.Connection, name: str, *, force: bool, template: bool = False
) -> None:
    """Drop ``name`` if it exists, disconnecting whoever is still connected to it."""
    quoted = quote_ident(name)
    if template:
        await admin.execute(f"ALTER DATABASE {quoted} WITH IS_TEMPLATE false")
    if force:
        await admin.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
        return
    await admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        name,
    )
    await admin.execute(f"DROP DATABASE IF EXISTS {quoted}")
