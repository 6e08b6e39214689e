"""Agent Monitor service: migrates its database at start-up, records agent runs, keeps memory.

A small FastAPI app on sam_db. Every replica runs ``await migrate(dsn)`` in its lifespan: the first
one applies what is pending, the others wait on sam_db's advisory lock and find nothing to do.
Workflows, sessions and events are written with plain SQL on the tables sam_db's migrations create
(see ``docs/schema.md``); ``/remember`` and ``/recall`` go through :class:`sam_db.MemoryStore`.

Run it (``DATABASE_URL`` names the service's own database; ``OPENAI_API_KEY`` the embedder's key)::

    uvicorn service:app --port 8000
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sam_db import MemoryStore, migrate
from sam_db.errors import InvalidInputError

# -- request bodies -------------------------------------------------------------------------------


class NewWorkflow(BaseModel):
    id: str | None = None
    name: str
    description: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)


class NewSession(BaseModel):
    id: str | None = None
    workflow_id: str | None = None
    agent: str | None = None
    model: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class NewEvent(BaseModel):
    event_type: str
    payload: dict[str, Any] = Field(default_factory=dict)


class SessionEnd(BaseModel):
    status: str = Field(pattern="^(completed|failed|cancelled)$")
    error_message: str | None = None


class Remember(BaseModel):
    text: str
    collection: str = "default"
    metadata: dict[str, Any] = Field(default_factory=dict)
    session_id: str | None = None


class Recall(BaseModel):
    query: str
    collection: str = "default"
    k: int = 5
    filter: dict[str, Any] | None = None


# -- the app --------------------------------------------------------------------------------------


def create_app(dsn: str | None = None, embedder: Any = None) -> FastAPI:
    """The service on ``dsn`` (default ``$DATABASE_URL``) with ``embedder`` (default OpenAI's)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        target = dsn or os.environ["DATABASE_URL"]
        # Safe from every replica at once: waiters wait for the lock, then find nothing pending.
        await migrate(target)
        pool = await asyncpg.create_pool(target, min_size=1, max_size=10)
        try:
            chosen = embedder
            if chosen is None:
                from sam_db import OpenAIEmbedder

                chosen = OpenAIEmbedder()  # reads OPENAI_API_KEY
            async with MemoryStore(pool, chosen) as store:
                app.state.pool, app.state.store = pool, store
                yield
        finally:
            await pool.close()

    app = FastAPI(title="Agent Monitor", lifespan=lifespan)

    @app.exception_handler(InvalidInputError)
    async def bad_input(request: Request, exc: Exception) -> JSONResponse:
        # The store's typed error for bad input says what was wrong: the client's mistake.
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(asyncpg.ForeignKeyViolationError)
    async def unknown_reference(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": "unknown workflow or session"}, status_code=404)

    @app.exception_handler(asyncpg.CheckViolationError)
    async def rejected_value(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.post("/workflows", status_code=201)
    async def create_workflow(body: NewWorkflow, request: Request) -> dict[str, str]:
        row = await request.app.state.pool.fetchrow(
            "INSERT INTO workflows (id, name, description, config) "
            "VALUES (coalesce($1, gen_random_uuid()::text), $2, $3, $4::jsonb) RETURNING id",
            body.id,
            body.name,
            body.description,
            json.dumps(body.config),
        )
        return {"id": row["id"]}

    @app.post("/sessions", status_code=201)
    async def start_session(body: NewSession, request: Request) -> dict[str, str]:
        row = await request.app.state.pool.fetchrow(
            "INSERT INTO sessions (id, workflow_id, agent, model, metadata) "
            "VALUES (coalesce($1, gen_random_uuid()::text), $2, $3, $4, $5::jsonb) RETURNING id",
            body.id,
            body.workflow_id,
            body.agent,
            body.model,
            json.dumps(body.metadata),
        )
        return {"id": row["id"]}

    @app.post("/sessions/{session_id}/events", status_code=201)
    async def record_event(session_id: str, body: NewEvent, request: Request) -> dict[str, int]:
        row = await request.app.state.pool.fetchrow(
            "INSERT INTO session_events (session_id, event_type, payload) "
            "VALUES ($1, $2, $3::jsonb) RETURNING id",
            session_id,
            body.event_type,
            json.dumps(body.payload),
        )
        return {"id": row["id"]}

    @app.post("/sessions/{session_id}/end")
    async def end_session(session_id: str, body: SessionEnd, request: Request) -> dict[str, str]:
        status = await request.app.state.pool.fetchval(
            "UPDATE sessions SET status = $2, error_message = $3, ended_at = now(), "
            "updated_at = now() WHERE id = $1 AND ended_at IS NULL RETURNING status",
            session_id,
            body.status,
            body.error_message,
        )
        if status is None:
            raise HTTPException(404, "no running session with that id")
        return {"id": session_id, "status": status}

    @app.get("/sessions/{session_id}")
    async def get_session(session_id: str, request: Request) -> dict[str, Any]:
        pool = request.app.state.pool
        session = await pool.fetchrow(
            "SELECT id, workflow_id, agent, model, status, started_at, ended_at "
            "FROM sessions WHERE id = $1",
            session_id,
        )
        if session is None:
            raise HTTPException(404, "no session with that id")
        events = await pool.fetch(
            "SELECT event_type, payload::text AS payload FROM session_events "
            "WHERE session_id = $1 ORDER BY occurred_at, id",
            session_id,
        )
        return {
            **dict(session),
            "events": [
                {"event_type": e["event_type"], "payload": json.loads(e["payload"])} for e in events
            ],
        }

    @app.post("/remember", status_code=201)
    async def remember(body: Remember, request: Request) -> dict[str, Any]:
        entry = await request.app.state.store.add(
            body.text, body.collection, body.metadata, session_id=body.session_id
        )
        return {"id": str(entry.id), "collection": entry.collection}

    @app.post("/recall")
    async def recall(body: Recall, request: Request) -> list[dict[str, Any]]:
        hits = await request.app.state.store.search(
            body.query, body.collection, k=body.k, filter=body.filter
        )
        return [
            {
                "id": str(hit.entry.id),
                "content": hit.entry.content,
                "metadata": hit.entry.metadata,
                "similarity": hit.similarity,
            }
            for hit in hits
        ]

    return app


#: For ``uvicorn service:app``: configured from the environment when it starts.
app = create_app()
