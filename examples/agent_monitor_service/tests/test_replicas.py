"""Several replicas of the service starting at once on one new, empty database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from service import create_app

from sam_db import status
from sam_db.testing import HashEmbedder

REPLICAS = 4


@pytest.fixture
async def empty_dsn(sam_db_server: str) -> AsyncIterator[str]:
    """A database with nothing in it (no migrations), dropped after the test."""
    name = f"service_{uuid.uuid4().hex[:12]}"  # letters, digits and _: no quoting needed
    admin = await asyncpg.connect(sam_db_server)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        try:
            yield urlunsplit(urlsplit(sam_db_server)._replace(path="/" + name))
        finally:
            await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        await admin.close()


async def test_replicas_started_at_once_all_come_up_and_migrate_once(empty_dsn: str) -> None:
    apps = [create_app(empty_dsn, HashEmbedder()) for _ in range(REPLICAS)]
    async with AsyncExitStack() as stack:
        # Every lifespan (each runs migrate()) at the same moment, as replicas of a deployment do.
        await asyncio.gather(
            *(stack.enter_async_context(app.router.lifespan_context(app)) for app in apps)
        )
        # Every bundled migration applied, each once (one tracking row per version).
        conn = await asyncpg.connect(empty_dsn)
        try:
            applied = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        finally:
            await conn.close()
        known = await status(empty_dsn)
        assert len(known) >= 4 and {m.state for m in known} == {"applied"}
        assert [r["version"] for r in applied] == [m.version for m in known]

        # Each replica serves, on the shared database.
        for i, app in enumerate(apps):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://replica") as http:
                made = await http.post("/sessions", json={"id": f"s-{i}", "agent": "codex"})
                assert made.status_code == 201
                assert (await http.post("/remember", json={"text": f"note {i}"})).status_code == 201
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=apps[0]), base_url="http://replica"
        ) as http:
            seen = [(await http.get(f"/sessions/s-{i}")).status_code for i in range(REPLICAS)]
            hits = (await http.post("/recall", json={"query": "note 3", "k": REPLICAS})).json()
        assert seen == [200] * REPLICAS
        assert len(hits) == REPLICAS and hits[0]["content"] == "note 3"
