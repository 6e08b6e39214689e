"""RAG memory on pgvector: MemoryStore, the Embedder protocol, OpenAIEmbedder and the models.

Importing this package does not import ``openai``: OpenAIEmbedder loads it when created.
"""

from __future__ import annotations

from ._embedder import Embedder, FunctionEmbedder, embedder_from_function
from ._models import AccessLogRecord, AccessStat, Collection, MemoryEntry, SearchHit
from ._openai import OpenAIEmbedder
from ._store import MemoryStore

__all__ = [
    "MemoryStore",
    "Embedder",
    "FunctionEmbedder",
    "embedder_from_function",
    "OpenAIEmbedder",
    "MemoryEntry",
    "SearchHit",
    "Collection",
    "AccessLogRecord",
    "AccessStat",
]
