"""What ``MemoryStore.open()`` finds in the database, as one record: the tables' schema and its
statements, the embedding column's size, pgvector's schema and whether it has iterative scans.

Found once per ``open()``; every operation of the store reads it from there. The record also
carries the text searches' list of common lexemes, which is read later and kept while it is fresh
(see ``_common_lexemes``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .._ident import quote_ident
from ..errors import (
    ConfigurationError,
    DimensionMismatchError,
    ExtensionMissingError,
    InvalidInputError,
    MemoryStoreError,
)
from ._common_lexemes import CommonLexemes
from ._inputs import check_link
from ._sql import DISCOVER_EXTENSION, DISCOVER_TABLE, VECTOR_AVAILABLE, Statements

# format_type's text: the type, qualified when pgvector's schema is not on the search_path.
_COLUMN_TYPE = re.compile(r"(?:^|\.)(vector|halfvec)\((\d+)\)$")


@dataclass(frozen=True)
class StoreSchema:
    """The store's tables and pgvector as found at ``open()``."""

    statements: Statements  # every statement, qualified with the schemas below
    dimensions: int  # the size of the memory_entries.embedding column
    iterative_scans: bool  # pgvector 0.8+: hnsw.iterative_scan exists
    extension_schema: str  # where pgvector's type and operators live (its codec needs it)
    half: bool = False  # the column is halfvec(n) (sam-db new --memory-dimensions N --half)
    # What text and hybrid queries leave out, read when first needed and again once stale.
    common_lexemes: CommonLexemes = field(default_factory=CommonLexemes, compare=False)


def embedder_dimensions(embedder: Any) -> int:
    """The embedder's ``dimensions``, checked with its ``model`` (stored with every entry)."""
    dims = embedder.dimensions
    if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
        raise ConfigurationError(f"embedder.dimensions must be a positive int, got {dims!r}")
    model = embedder.model
    try:
        check_link(model, "embedder.model")
        if model is None:
            raise InvalidInputError("embedder.model is None")
    except InvalidInputError as exc:
        raise ConfigurationError(
            f"{exc}: name the embedding model, e.g. 'all-MiniLM-L6-v2'"
        ) from None
    return dims


async def discover(conn: Any, schema: str | None, dims: int, embedder: object) -> StoreSchema:
    """Find the store's tables (in ``schema``, or through the ``search_path``) and pgvector.

    Raises ExtensionMissingError when the server has no pgvector, MemoryStoreError without the
    tables, and DimensionMismatchError when ``dims`` (the embedder's) differs from the column's
    size.
    """
    table = "memory_entries" if schema is None else f"{quote_ident(schema)}.memory_entries"
    found = await conn.fetchrow(DISCOVER_TABLE, table)
    ext = await conn.fetchrow(DISCOVER_EXTENSION)
    if found is None:
        if ext is None and not await conn.fetchval(VECTOR_AVAILABLE):
            raise ExtensionMissingError.for_store()
        where = f"schema {schema!r}" if schema else "the search_path"
        raise MemoryStoreError.tables_missing(where)
    if ext is None:
        raise ExtensionMissingError.for_store()
    kind, dimensions = _column_type(found["embedding_type"], dims, embedder)
    statements = Statements.build(
        found["table_schema"], ext["ext_schema"], keys=found["has_keys"], vector_type=kind
    )
    if not found["has_search_helper"]:
        raise MemoryStoreError.not_made_by_sam_db(statements.search_vector)
    return StoreSchema(
        statements=statements,
        dimensions=dimensions,
        iterative_scans=parse_version(ext["extversion"]) >= (0, 8),
        extension_schema=ext["ext_schema"],
        half=kind == "halfvec",
    )


def _column_type(column_type: str, dims: int, embedder: object) -> tuple[str, int]:
    """The type (``vector`` or ``halfvec``) and size of the embedding column, whose size must be
    ``dims``, the embedder's."""
    match = _COLUMN_TYPE.search(column_type)
    if match is None:
        raise MemoryStoreError(
            f"memory_entries.embedding has type {column_type}, expected vector(n) or halfvec(n)"
        )
    kind, size = match.group(1), int(match.group(2))
    if size != dims:
        raise DimensionMismatchError.embedder_vs_column(embedder, dims, size, kind)
    return kind, size


def parse_version(text: str) -> tuple[int, ...]:
    """``'0.8.6'`` → ``(0, 8, 6)``; non-numeric parts end the tuple."""
    out: list[int] = []
    for part in text.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)
