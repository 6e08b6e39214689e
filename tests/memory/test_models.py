"""Models built from database rows without validation equal validated ones."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from sam_db.memory import MemoryEntry, SearchHit
from sam_db.memory._rows import entry_from_row, hits_from_rows
from sam_db.memory._sql import ENTRY_FIELDS


class _Row(tuple):  # type: ignore[type-arg]
    """Stands in for an asyncpg Record: values by position, and by name for ``distance``."""

    def __getitem__(self, key: Any) -> Any:
        return tuple.__getitem__(self, -1 if key == "distance" else key)


def _row(values: dict[str, object], distance: float = 0.25) -> _Row:
    stored = {**values, "metadata": json.dumps(values["metadata"])}  # jsonb comes back as text
    return _Row([*(stored[f] for f in ENTRY_FIELDS), 7, distance])


def _values() -> dict[str, object]:
    # Every value distinct, so a column read from the wrong position cannot go unnoticed.
    now = datetime.now(timezone.utc)
    return {
        "id": uuid.uuid4(),
        "collection": "default",
        "content": "text",
        "metadata": {"a": [1, 2]},
        "session_id": "s",
        "workflow_id": "w",
        "embedding_model": "m",
        "created_at": now,
        "updated_at": now + timedelta(seconds=1),
        "expires_at": now + timedelta(hours=1),
        "key": "doc-17",
    }


def test_an_entry_built_from_a_row_equals_a_validated_one() -> None:
    values = _values()
    built = entry_from_row(_row(values), "default")
    checked = MemoryEntry.model_validate(values)
    assert built == checked
    assert built.model_dump() == checked.model_dump()
    assert built.model_fields_set == checked.model_fields_set
    assert hash(built.id) == hash(checked.id)


def test_hits_built_from_rows_serialise_like_validated_ones() -> None:
    values = _values()
    (built,) = hits_from_rows([_row(values, distance=0.5)], "default", None)
    checked = SearchHit(
        entry=MemoryEntry.model_validate(values),
        similarity=0.5,
        rank=1,
        vector_rank=1,  # a vector search ranks by its own leg only
        text_rank=None,
    )
    assert built == checked
    assert built.model_dump_json() == checked.model_dump_json()


def test_hits_below_the_threshold_are_dropped_and_the_rest_ranked_from_one() -> None:
    rows = [_row(_values(), distance=d) for d in (0.1, 0.6, 0.3)]
    hits = hits_from_rows(rows, "default", 0.6)
    assert [(h.rank, round(h.similarity, 6)) for h in hits] == [(1, 0.9), (2, 0.7)]


def test_entry_fields_name_the_entry_columns_in_order() -> None:
    from sam_db.memory._sql import ENTRY_COLUMNS, ENTRY_FIELDS

    names = [part.split(" AS ")[-1].split(".")[-1].strip() for part in ENTRY_COLUMNS.split(",")]
    assert tuple(names) == ENTRY_FIELDS
