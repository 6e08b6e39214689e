"""Test helpers for code using sam_db: fixtures (the pytest plugin) and a deterministic embedder."""

from __future__ import annotations

from ._embedder import HashEmbedder
from ._values import MigratedSchema

__all__ = ["HashEmbedder", "MigratedSchema"]
