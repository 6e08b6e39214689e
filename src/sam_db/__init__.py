"""sam_db: the PostgreSQL schema, migrations and pgvector RAG memory of the Super Agent Monitor.

Names are imported lazily (PEP 562) so that ``import sam_db`` stays cheap: the CLI and services
that only migrate never import pydantic models they do not use, nor ``openai``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "migrate",
    "status",
    "rollback",
    "repair",
    "plan",
    "memory_dimensions_migration",
    "Migration",
    "MigrationStatus",
    "MigrationPlan",
    "PlannedMigration",
    "MemoryStore",
    "Embedder",
    "OpenAIEmbedder",
    "MemoryEntry",
    "SearchHit",
    "Collection",
    "embedder_from_function",
    "errors",
    "config",
    "embedded",
    "__version__",
]

_LAZY = {
    "migrate": "sam_db._api",
    "status": "sam_db._api",
    "rollback": "sam_db._api",
    "repair": "sam_db._api",
    "plan": "sam_db._api",
    "memory_dimensions_migration": "sam_db._dimensions",
    "Migration": "sam_db._models",
    "MigrationStatus": "sam_db._models",
    "MigrationPlan": "sam_db._models",
    "PlannedMigration": "sam_db._models",
    "MemoryStore": "sam_db.memory",
    "Embedder": "sam_db.memory",
    "OpenAIEmbedder": "sam_db.memory",
    "MemoryEntry": "sam_db.memory",
    "SearchHit": "sam_db.memory",
    "Collection": "sam_db.memory",
    "embedder_from_function": "sam_db.memory",
    "errors": "sam_db.errors",
    "config": "sam_db._config",
    "embedded": "sam_db.embedded",
}

# Names that are modules themselves rather than attributes of one.
_MODULES = frozenset({"errors", "embedded"})

if TYPE_CHECKING:
    from . import embedded, errors
    from ._api import migrate, plan, repair, rollback, status
    from ._config import config
    from ._dimensions import memory_dimensions_migration
    from ._models import Migration, MigrationPlan, MigrationStatus, PlannedMigration
    from .memory import (
        Collection,
        Embedder,
        MemoryEntry,
        MemoryStore,
        OpenAIEmbedder,
        SearchHit,
        embedder_from_function,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sam_db' has no attribute {name!r}")
    value = (
        importlib.import_module(module)
        if name in _MODULES
        else getattr(importlib.import_module(module), name)
    )
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
