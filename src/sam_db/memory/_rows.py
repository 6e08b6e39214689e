"""Decoding what the database returns into the store's models: entries, hits, collections, log rows.

Entries and search hits are built without validation: their rows come from statements that select
``ENTRY_COLUMNS`` first (``ENTRY_FIELDS`` names them), so their values already have the types the
models declare (the database checked them). A search builds two models per hit; skipping
validation there is measured by bench/rows_bench.py, and tests check that what is built here
equals the validated models. Collections and access-log rows, read far less often, go through
the models' validation.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from ._models import AccessLogRecord, AccessStat, Collection, MemoryEntry, SearchHit
from ._sql import ENTRY_FIELDS

_M = TypeVar("_M", bound=BaseModel)
_set = object.__setattr__
_new = object.__new__  # what BaseModel uses: it has no __new__ of its own

# The order of search results: by distance, ties by id (a C-level key, no Python call per row).
distance_then_id = operator.itemgetter("distance", "id")


# One shared fields-set per class: every field is set, and frozen models never change it.
_ENTRY_FIELDS_SET = set(MemoryEntry.model_fields)
_HIT_FIELDS_SET = set(SearchHit.model_fields)
_ENTRY_WIDTH = len(ENTRY_FIELDS)


def entry_from_row(row: Any, collection: str) -> MemoryEntry:
    """A MemoryEntry from a row that starts with ENTRY_COLUMNS (an asyncpg Record)."""
    # Unpacked by position (ENTRY_FIELDS' order, which a test holds to) into a dict display in
    # the model's field order, which model_dump and repr follow (no zip and dict per row).
    (
        id_,
        content,
        metadata,
        session_id,
        workflow_id,
        embedding_model,
        created_at,
        updated_at,
        expires_at,
        key,
    ) = row[:_ENTRY_WIDTH]  # the row may have more columns after ENTRY_COLUMNS
    values = {
        "id": id_,
        "collection": collection,
        "content": content,
        "metadata": decode_metadata(metadata),
        "session_id": session_id,
        "workflow_id": workflow_id,
        "embedding_model": embedding_model,
        "created_at": created_at,
        "updated_at": updated_at,
        "expires_at": expires_at,
        "key": key,
    }
    return _instance(MemoryEntry, values, _ENTRY_FIELDS_SET)


def hits_from_rows(
    rows: Sequence[Any],
    collection: str,
    threshold: float | None,
    vector_ranks: Sequence[int] | None = None,
) -> list[SearchHit]:
    """Hits from search rows in result order, ranked from 1, without those below ``threshold``.

    Rows of text and hybrid searches also carry ``vector_rank`` and ``text_rank`` (and a NULL
    ``distance`` in a text search); a vector search's rows are its own ranking, unless
    ``vector_ranks`` gives each row's (an MMR search's picks: their places among its candidates).
    """
    hits: list[SearchHit] = []
    legs = bool(rows) and "text_rank" in rows[0]
    for i, row in enumerate(rows):
        distance = row["distance"]
        similarity = None if distance is None else 1.0 - distance
        if threshold is not None and (similarity is None or similarity < threshold):
            continue
        rank = len(hits) + 1
        vector_rank = row["vector_rank"] if legs else rank
        if vector_ranks is not None:
            vector_rank = vector_ranks[i]
        values = {
            "entry": entry_from_row(row, collection),
            "similarity": similarity,
            "rank": rank,
            "vector_rank": vector_rank,
            "text_rank": row["text_rank"] if legs else None,
        }
        hits.append(_instance(SearchHit, values, _HIT_FIELDS_SET))
    return hits


def _instance(cls: type[_M], values: dict[str, Any], fields_set: set[str]) -> _M:
    """What ``model_construct`` builds (the same four attributes, no validation), without its
    per-field alias and default handling (bench/rows_bench.py compares the two). ``values`` must
    hold every field, in the model's field order (model_dump and repr follow the dict's order)."""
    obj = _new(cls)
    _set(obj, "__dict__", values)
    _set(obj, "__pydantic_fields_set__", fields_set)
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


# PostgreSQL prints jsonb as one canonical JSON value with nothing around it, so the decoder's
# raw_decode reads it directly, without json.loads' matching of leading and trailing whitespace
# (bench/rows_bench.py has the figure; a test holds the invariant). A search decodes one per hit.
_decode_json = json.JSONDecoder().raw_decode


def decode_metadata(raw: Any) -> dict[str, Any]:
    """jsonb as asyncpg returns it without a codec (text) → dict."""
    if raw is None:
        return {}
    if isinstance(raw, str):
        if raw == "{}":  # the default, and most entries': skip the parser
            return {}
        value = _decode_json(raw)[0]
        return value if isinstance(value, dict) else {}
    return dict(raw)


def collection_from_row(row: Mapping[str, Any]) -> Collection:
    """A Collection from a ``memory_collections`` row with its ``entry_count``."""
    return Collection(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        metadata=decode_metadata(row["metadata"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        entry_count=row["entry_count"],
    )


def access_stat_from_row(row: Any, collection: str) -> AccessStat:
    """An AccessStat from a ``most_accessed`` row (ENTRY_COLUMNS, then the counts)."""
    return AccessStat(
        entry=entry_from_row(row, collection),
        access_count=row["access_count"],
        last_accessed_at=row["last_accessed_at"],
        mean_similarity=row["mean_similarity"],
    )


def access_record_from_row(row: Mapping[str, Any]) -> AccessLogRecord:
    """An AccessLogRecord from a ``memory_access_log`` row."""
    return AccessLogRecord(
        id=row["id"],
        entry_id=row["entry_id"],
        collection=row["collection"],
        session_id=row["session_id"],
        query=row["query"],
        query_hash=bytes(row["query_hash"]),
        similarity=row["similarity"],
        rank=row["rank"],
        accessed_at=row["accessed_at"],
    )
