"""Shared fixtures: one real PostgreSQL server per test process, a fresh database per test.

The server is ``SAM_DB_TEST_DSN`` when set (never ``DATABASE_URL``, as in the plugin), otherwise an
embedded PostgreSQL 18 + pgvector started in a temporary directory (one per xdist worker) with
durability off, since it is thrown away.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from sam_db._embedded import NON_DURABLE_SETTINGS, embedded_dsn, start_embedded
from sam_db._ident import quote_ident
from sam_db.testing._server import server_datadir, with_database
from tests.helpers import execute, fresh_database

# Property tests explore new examples on every local run; CI runs a fixed set (derandomized), so
# that a submission's result does not depend on the draw. A bug found locally gets its own test.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def pg_admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DSN of a superuser connection to the test server's maintenance database."""
    url = os.environ.get("SAM_DB_TEST_DSN", "").strip()
    if url:
        yield url
        return
    # In RAM where the machine has it (see sam_db.testing._server): CREATE DATABASE per test.
    datadir = server_datadir(Path(tmp_path_factory.mktemp("pg")))
    server = start_embedded(datadir, cleanup="delete")
    dsn = embedded_dsn(server)
    settings = [
        f"ALTER SYSTEM SET {name} = {quote_ident(value)}"
        for name, value in NON_DURABLE_SETTINGS.items()
    ]
    asyncio.run(execute(dsn, *settings, "SELECT pg_reload_conf()"))
    try:
        yield dsn
    finally:
        server.cleanup()


@pytest.fixture
def db_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """DSN of a brand-new, empty database, dropped after the test."""
    with fresh_database(pg_admin_dsn) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def migrated_template(pg_admin_dsn: str) -> Iterator[str]:
    """Name of a database that ``migrate()`` brought to every bundled migration, once per test
    process: ``migrated_dsn`` copies it (CREATE DATABASE ... TEMPLATE) instead of migrating
    each test's database again."""
    from sam_db import migrate

    name = f"migrated_{uuid.uuid4().hex[:16]}"
    asyncio.run(execute(pg_admin_dsn, f"CREATE DATABASE {quote_ident(name)}"))
    try:
        asyncio.run(migrate(with_database(pg_admin_dsn, name)))
        yield name
    finally:
        drop = f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)"
        asyncio.run(execute(pg_admin_dsn, drop))


@pytest.fixture
def migrated_dsn(pg_admin_dsn: str, migrated_template: str) -> Iterator[str]:
    """DSN of a fresh database with every bundled migration applied (a copy of
    ``migrated_template``), dropped after the test."""
    with fresh_database(pg_admin_dsn, template=migrated_template) as dsn:
        yield dsn
