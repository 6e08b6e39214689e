"""Models built from database rows without validation equal validated ones."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sam_db.memory import MemoryEntry, SearchHit
from sam_db.memory._models import trusted


def _values() -> dict[str, object]:
    now = datetime.now(timezone.utc)
    return {
        "id": uuid.uuid4(),
        "collection": "default",
        "content": "text",
        "metadata": {"a": [1, 2]},
        "session_id": "s",
        "workflow_id": None,
        "embedding_model": "m",
        "created_at": now,
        "updated_at": now,
        "expires_at": None,
    }


def test_a_trusted_entry_equals_a_validated_one() -> None:
    values = _values()
    built = trusted(MemoryEntry, dict(values))
    checked = MemoryEntry.model_validate(values)
    assert built == checked
    assert built.model_dump() == checked.model_dump()
    assert built.model_fields_set == checked.model_fields_set
    assert hash(built.id) == hash(checked.id)


def test_a_trusted_hit_serialises_like_a_validated_one() -> None:
    entry = MemoryEntry.model_validate(_values())
    built = trusted(SearchHit, {"entry": entry, "similarity": 0.5, "rank": 1})
    checked = SearchHit(entry=entry, similarity=0.5, rank=1)
    assert built == checked
    assert built.model_dump_json() == checked.model_dump_json()


def test_entry_fields_name_the_entry_columns_in_order() -> None:
    from sam_db.memory._sql import ENTRY_COLUMNS, ENTRY_FIELDS

    names = [part.split(" AS ")[-1].split(".")[-1].strip() for part in ENTRY_COLUMNS.split(",")]
    assert tuple(names) == ENTRY_FIELDS
