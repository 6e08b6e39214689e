"""``sam-db new --memory-dimensions N [--half]``: a migration that changes the embedding size.

The bundled migration 004 makes ``memory_entries.embedding`` a ``vector(1536)``. The generated
migration changes it to ``vector(N)`` or ``halfvec(N)``, rebuilds the HNSW index with the matching
operator class and, when the base type changes, recreates ``memory_search_vector`` (the store's
planner hint, whose argument type must be the column's). Its rollback restores the previous type.

Both files refuse to run, with a RAISE and a hint, while the table holds entries of the other size
(a vector cannot be resized; its text must be embedded again) or when the column is not the type
the file expects. The previous type is the one set by the last migration of this kind in the
sources (each carries a marker line), else 004's.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ._engine import Settings
from ._scaffold import new_migration
from ._sources import Source, discover
from .errors import ConfigurationError

#: The largest sizes pgvector's HNSW index accepts for each type.
MAX_DIMENSIONS = {"vector": 2000, "halfvec": 4000}
_MARKER = "-- sam_db memory embedding: "
_MARKER_RE = re.compile(r"^-- sam_db memory embedding: (vector|halfvec)\((\d+)\)", re.MULTILINE)
_INDEX = "memory_entries_embedding_hnsw_idx"


@dataclass(frozen=True)
class EmbeddingType:
    """A type of ``memory_entries.embedding``: ``kind`` (vector or halfvec) and its ``size``."""

    kind: str
    size: int

    def __str__(self) -> str:
        return f"{self.kind}({self.size})"


#: What the bundled migration 004 creates.
BUNDLED = EmbeddingType("vector", 1536)


def target_type(dimensions: int, half: bool) -> EmbeddingType:
    """The column type for ``dimensions``; raises ConfigurationError beyond the index's limit."""
    kind = "halfvec" if half else "vector"
    if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
        raise ConfigurationError(f"memory dimensions must be a positive int, got {dimensions!r}")
    if dimensions > MAX_DIMENSIONS[kind]:
        hint = (
            " (use --half / half=True: halfvec indexes up to 4000)"
            if not half and dimensions <= MAX_DIMENSIONS["halfvec"]
            else ""
        )
        raise ConfigurationError(
            f"{kind}({dimensions}): pgvector's HNSW index takes at most "
            f"{MAX_DIMENSIONS[kind]} dimensions for {kind}{hint}"
        )
    return EmbeddingType(kind, dimensions)


def previous_type(sources: Sequence[Source], include_bundled: bool = True) -> EmbeddingType:
    """The type the last generated dimensions migration among ``sources`` set, else 004's."""
    found = BUNDLED
    for mig in discover(sources, include_bundled=include_bundled):
        match = _MARKER_RE.search(mig.sql)
        if match is not None:
            found = EmbeddingType(match.group(1), int(match.group(2)))
    return found


def memory_dimensions_migration(
    dimensions: int,
    *,
    half: bool = False,
    folder: str | os.PathLike[str] | None = None,
    sources: Sequence[Source] = (),
    include_bundled: bool = True,
    name: str | None = None,
) -> tuple[Path, Path]:
    """Write the next numbered migration (and its rollback) that makes ``memory_entries.embedding``
    a ``vector(dimensions)``, or a ``halfvec(dimensions)`` with ``half=True``; return their paths.

    ``folder`` defaults to the first of ``sources``, else ``./migrations`` (as ``sam-db new``).
    Raises ConfigurationError for a size the HNSW index cannot take (vector: 2000, halfvec:
    4000) or when the column already has that type.
    """
    target = target_type(dimensions, half)
    if isinstance(sources, (str, os.PathLike)):
        sources = (sources,)
    where = Path(folder) if folder is not None else Path(str(sources[0])) if sources else None
    where = where if where is not None else Path("migrations")
    known = {Path(str(s)).resolve() for s in sources}
    every = [*sources, *([where] if where.exists() and where.resolve() not in known else [])]
    previous = previous_type(every, include_bundled)
    if previous == target:
        raise ConfigurationError(
            f"memory_entries.embedding is already {target} after the migrations in {where}"
        )
    slug = name or f"memory_embedding_{target.kind}_{target.size}"
    settings = Settings(sources=tuple(sources), include_bundled=include_bundled)
    forward, back = new_migration(slug, where, settings)
    flag = " --half" if half else ""
    command = f"sam-db new --memory-dimensions {target.size}{flag}"
    forward.write_text(
        _header(forward.stem, target, previous, command) + _change(target, previous),
        encoding="utf-8",
    )
    back.write_text(
        f"-- Undo {forward.name}: memory_entries.embedding back to {previous}.\n\n"
        + _change(previous, target),
        encoding="utf-8",
    )
    return forward, back


def _header(stem: str, target: EmbeddingType, previous: EmbeddingType, command: str) -> str:
    return (
        f"-- {stem}: memory_entries.embedding becomes {target} (was {previous}).\n"
        f"{_MARKER}{target} (was {previous})\n"
        f"-- Written by `{command}`.\n"
        "-- The type change rewrites the table and the HNSW index is rebuilt, under an ACCESS\n"
        "-- EXCLUSIVE lock until the transaction ends (searches and writes wait). Entries of\n"
        '-- another size must be embedded again first: docs/memory.md, "Embedding size".\n\n'
    )


def _change(target: EmbeddingType, previous: EmbeddingType) -> str:
    """The statements that turn a ``previous`` column into a ``target`` one."""
    steps = [
        _guard(target, previous),
        "-- The index cannot serve the new type; the ALTER below locks the table anyway.\n"
        "-- squawk-ignore require-concurrent-index-deletion\n"
        f"DROP INDEX {_INDEX};\n",
    ]
    if target.kind != previous.kind:
        steps.append(
            "-- Replaced below by the same function for the new type (MemoryStore's only caller).\n"
            "-- squawk-ignore ban-drop-function\n"
            f"DROP FUNCTION memory_search_vector({previous.kind});\n"
        )
    steps.append(
        "-- The table is rewritten under ACCESS EXCLUSIVE in any case: the index build below\n"
        "-- blocks nobody more, and CONCURRENTLY cannot run in a transaction.\n"
        "-- squawk-ignore changing-column-type\n"
        f"ALTER TABLE memory_entries ALTER COLUMN embedding TYPE {target} USING embedding::{target};\n"
        "-- squawk-ignore require-concurrent-index-creation\n"
        f"CREATE INDEX {_INDEX} ON memory_entries\n"
        f"    USING hnsw (embedding {target.kind}_cosine_ops) WITH (m = 16, ef_construction = 64);\n"
    )
    if target.kind != previous.kind:
        steps.append(
            "-- MemoryStore's planner hint (see 004), for the new type: it returns the query\n"
            "-- vector unchanged; its COST steers the planner to the HNSW index.\n"
            f"CREATE FUNCTION memory_search_vector(query_vector {target.kind}) "
            f"RETURNS {target.kind}\n"
            "    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE COST 1000\n"
            "    AS $$ BEGIN RETURN query_vector; END $$;\n"
        )
    return "\n".join(steps)


def _guard(target: EmbeddingType, previous: EmbeddingType) -> str:
    """A DO block that refuses a column of another type than ``previous``, a server without
    ``halfvec``, and entries that cannot be cast (sizes differ)."""
    lines = [
        "DO $$",
        "DECLARE",
        "    current_type text;",
        "    n bigint;",
        "BEGIN",
        "    SELECT regexp_replace(format_type(a.atttypid, a.atttypmod), '^.*\\.', '')",
        "        INTO current_type",
        "    FROM pg_catalog.pg_attribute a",
        "    WHERE a.attrelid = 'memory_entries'::regclass AND a.attname = 'embedding';",
        f"    IF current_type IS DISTINCT FROM '{previous}' THEN",
        f"        RAISE EXCEPTION 'memory_entries.embedding is %, this migration expects {previous}',",
        "            current_type USING HINT = 'the column was changed outside these migrations: change it "
        f"back to {previous}, or edit this file';",
        "    END IF;",
    ]
    if target.kind == "halfvec":
        lines += [
            "    IF to_regtype('halfvec') IS NULL THEN",
            "        RAISE EXCEPTION 'pgvector has no halfvec type here'",
            "            USING HINT = 'halfvec needs pgvector 0.7 or later: "
            "ALTER EXTENSION vector UPDATE';",
            "    END IF;",
        ]
    if target.size != previous.size:
        lines += [
            "    SELECT count(*) INTO n FROM memory_entries;",
            "    IF n > 0 THEN",
            f"        RAISE EXCEPTION 'memory_entries holds % entries of {previous.size} dimensions: "
            f"they cannot become {target}', n",
            "            USING HINT = 'embed their texts again with a "
            f"{target.size}-dimensional model, or delete them, then run this migration "
            '(docs/memory.md, "Embedding size")\';',
            "    END IF;",
        ]
    lines += ["END", "$$;", ""]
    return "\n".join(lines)


def cmd_new_dimensions(args: argparse.Namespace) -> int:
    """``sam-db new --memory-dimensions N [--half] [NAME]``: write into ``--dir``, else the first
    configured source folder, else ``<root>/migrations``."""
    from ._cli_context import project, settings

    p = project(args)
    sources = p.value("sources")
    folder = Path(args.dir) if args.dir else (sources[0] if sources else p.root / "migrations")
    run = settings(args)
    forward, back = memory_dimensions_migration(
        args.memory_dimensions,
        half=args.half,
        folder=folder,
        sources=run.sources,
        include_bundled=run.include_bundled,
        name=args.name,
    )
    print(f"created {forward}\ncreated {back}")
    if not any(folder.resolve() == Path(s).resolve() for s in sources):
        print(
            f"sam-db: migrate and status read {folder} only when it is a source: add it to "
            "sources in [tool.sam_db] (pyproject.toml or sam_db.toml), or pass --source",
            file=sys.stderr,
        )
    return 0
