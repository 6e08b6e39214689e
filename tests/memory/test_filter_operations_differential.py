"""Differential test at the store: generated filters (those of test_filter_semantics_fuzz, every
operator) give count, find, search and delete_where exactly the entries the reference evaluator
selects, through the one filter compiler."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from sam_db.memory import MemoryStore
from sam_db.testing import HashEmbedder

from .filter_reference import matches
from .test_filter_semantics_fuzz import DOCS, filters


@pytest.mark.slow
def test_count_find_and_search_select_what_the_reference_selects(migrated_dsn: str) -> None:
    loop = asyncio.new_event_loop()
    store = MemoryStore(migrated_dsn, HashEmbedder(), access_log=False)
    try:
        loop.run_until_complete(store.open())
        texts = [f"doc {i}" for i in range(len(DOCS))]
        loop.run_until_complete(store.add_many(texts, metadata=DOCS))

        @settings(
            max_examples=200,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(filters)
        def check(flt: dict[str, Any]) -> None:
            expected = sorted(f"doc {i}" for i, doc in enumerate(DOCS) if matches(doc, flt))
            counted = loop.run_until_complete(store.count(filter=flt))
            found = loop.run_until_complete(store.find(filter=flt, limit=10_000))
            hits = loop.run_until_complete(store.search("q", k=1000, filter=flt, exact=True))
            assert counted == len(expected)
            assert sorted(e.content for e in found) == expected
            assert sorted(h.entry.content for h in hits) == expected

        check()
    finally:
        loop.run_until_complete(store.close())
        loop.close()


async def test_delete_where_deletes_what_the_reference_selects(store: MemoryStore) -> None:
    await store.add_many([f"doc {i}" for i in range(len(DOCS))], metadata=DOCS)
    flt = {"$or": [{"a": {"$between": [0, 100]}}, {"b": {"$like": "a%"}}, {"0": {"$exists": True}}]}
    expected = {f"doc {i}" for i, doc in enumerate(DOCS) if matches(doc, flt)}
    assert 0 < len(expected) < len(DOCS)
    assert await store.delete_where(filter=flt) == len(expected)
    left = {e.content for e in await store.find(limit=10_000)}
    assert left == {f"doc {i}" for i in range(len(DOCS))} - expected
