"""Metadata as PostgreSQL prints jsonb is decoded by ``decode_metadata`` exactly as ``json.loads``
decodes it: the invariant behind its ``raw_decode`` (one JSON value, nothing around it)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from sam_db.memory._rows import decode_metadata

DOCUMENTS: list[Any] = [
    {},
    {"a": 1},
    {"nested": {"list": [1, 2.5, None, True, "x"], "empty": {}}},
    {"spaces": "  leading and trailing  ", "unicode": "é😀\u2028", "quote": 'a "b" \\ c'},
    {"big": 10**30, "small": 1e-300, "neg": -0.0},
    {"keys": {str(i): i for i in range(50)}},
]


async def test_jsonb_text_from_postgresql_decodes_as_json_loads_does(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        for document in DOCUMENTS:
            text = await conn.fetchval("SELECT $1::jsonb::text", json.dumps(document))
            assert decode_metadata(text) == json.loads(text), text
    finally:
        await conn.close()


def test_metadata_that_is_not_an_object_decodes_as_an_empty_dict() -> None:
    assert decode_metadata(None) == {}
    assert decode_metadata("[1, 2]") == {}
    assert decode_metadata("{}") == {}
