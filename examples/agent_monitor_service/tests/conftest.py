"""Fixtures: the service started on a fresh migrated database, and an HTTP client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from service import create_app

from sam_db.testing import HashEmbedder


@pytest.fixture
async def app(sam_db_dsn: str) -> AsyncIterator[FastAPI]:
    """The service, its lifespan (migrate, pool, store) run, on a database of its own.

    HashEmbedder is sam_db's deterministic offline embedder: equal texts get equal vectors, so
    recall of a remembered text is exact, but it is not semantic (no OpenAI call in tests).
    """
    service = create_app(sam_db_dsn, HashEmbedder())
    async with service.router.lifespan_context(service):
        yield service


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        yield http
