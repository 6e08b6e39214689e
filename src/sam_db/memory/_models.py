"""Pydantic models that cross the MemoryStore API boundary: entries, hits, collections, log rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MemoryEntry(_Frozen):
    """One remembered text as stored: its id, collection, content, metadata, links and times.

    ``metadata`` is the dict that went in (JSON round-trip: key order may differ). ``expires_at``
    is ``None`` for entries that never expire. The embedding is not carried (6 KiB at 1536-d).
    ``key`` is the caller's stable id of the entry (unique per collection), None when it has none.
    """

    id: uuid.UUID
    collection: str
    content: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    session_id: str | None = None
    workflow_id: str | None = None
    embedding_model: str | None = None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None
    key: str | None = None


class SearchHit(_Frozen):
    """A search result: the entry and its cosine similarity to the query (1.0 = same direction).

    ``similarity`` is None in a text search (no query vector). ``vector_rank`` and ``text_rank``
    tell which legs of the search found the entry, at which place (1 = best), None when a leg
    did not: a vector search sets only ``vector_rank``, a text search only ``text_rank``, a
    hybrid search one or both.
    """

    entry: MemoryEntry
    similarity: float | None
    rank: int = Field(ge=1, description="1-based position in the result list, best first")
    vector_rank: int | None = None
    text_rank: int | None = None


class Collection(_Frozen):
    """A named group of memories (a ``memory_collections`` row) with its live entry count."""

    id: int
    name: str
    description: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
    entry_count: int = 0


class AccessLogRecord(_Frozen):
    """A ``memory_access_log`` row: an entry a search returned, at which rank and similarity."""

    id: int
    entry_id: uuid.UUID
    collection: str
    session_id: str | None
    query: str | None
    query_hash: bytes
    similarity: float
    rank: int
    accessed_at: datetime


class AccessStat(_Frozen):
    """How often an entry came back from searches in a time window (see ``most_accessed``)."""

    entry: MemoryEntry
    access_count: int
    last_accessed_at: datetime
    mean_similarity: float
