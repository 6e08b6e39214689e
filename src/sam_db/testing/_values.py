"""Plain values the plugin's fixtures hand out (importable without pytest)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MigratedSchema:
    """What ``sam_db_schema`` hands out: a fresh, fully migrated schema in a shared database.

    ``dsn`` is the shared database (its search_path is NOT changed); pass ``schema`` on:
    ``MemoryStore(s.dsn, embedder, schema=s.schema)``, ``migrate(s.dsn, schema=s.schema)``, or
    ``SET search_path`` / qualify names in raw SQL.
    """

    dsn: str
    schema: str
