"""count / find / delete_where: operations over the search's conditions (collection, metadata
filter, session, expiry), compiled by the same filter compiler as search."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from sam_db.errors import FilterError, InvalidInputError
from sam_db.memory import MemoryStore


async def _load(store: MemoryStore, n: int = 12) -> None:
    await store.add_many(
        [f"note {i}" for i in range(n)],
        metadata=[{"i": i, "kind": "even" if i % 2 == 0 else "odd"} for i in range(n)],
    )


async def _expire(store: MemoryStore, text: str, **kw: object) -> None:
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    await store.add(text, expires_at=past, **kw)  # type: ignore[arg-type]


async def test_count_without_a_filter_counts_the_collection(store: MemoryStore) -> None:
    await _load(store)
    await store.add("elsewhere", collection="other")
    assert await store.count() == 12


async def test_count_applies_the_filter(store: MemoryStore) -> None:
    await _load(store)
    assert await store.count(filter={"kind": "even", "i": {"$gte": 6}}) == 3


async def test_count_applies_the_new_filter_operators(store: MemoryStore) -> None:
    await _load(store)
    assert await store.count(filter={"i": {"$between": [2, 4]}}) == 3
    assert await store.count(filter={"kind": {"$like": "ev%"}}) == 6
    assert await store.count(filter={"kind": {"$ilike": "ODD"}}) == 6


async def test_count_applies_the_session(store: MemoryStore) -> None:
    await _load(store)
    await store.add("in a session", session_id="s-1")
    assert await store.count(session_id="s-1") == 1


async def test_count_leaves_out_expired_entries_as_search_does(store: MemoryStore) -> None:
    await _load(store, 3)
    await _expire(store, "gone")
    assert await store.count() == 3


async def test_count_agrees_with_an_exact_search(store: MemoryStore) -> None:
    await _load(store)
    f = {"$or": [{"i": {"$lt": 3}}, {"kind": {"$in": ["odd"]}}]}
    hits = await store.search("note", k=100, filter=f, exact=True, log=False)
    assert await store.count(filter=f) == len(hits) == 8


async def test_find_returns_matching_entries_ordered_by_id(store: MemoryStore) -> None:
    await _load(store)
    page = await store.find(filter={"kind": "odd"})
    assert [e.id for e in page] == sorted(e.id for e in page)
    assert sorted(e.metadata["i"] for e in page) == [1, 3, 5, 7, 9, 11]


async def test_find_pages_with_after_cover_every_entry_once(store: MemoryStore) -> None:
    await _load(store)
    seen: list[uuid.UUID] = []
    page = await store.find(limit=5)
    while page:
        seen += [e.id for e in page]
        page = await store.find(limit=5, after=page[-1].id)
    assert len(seen) == len(set(seen)) == 12
    assert seen == sorted(seen)


async def test_find_takes_after_as_a_string(store: MemoryStore) -> None:
    await _load(store, 3)
    first = await store.find(limit=1)
    rest = await store.find(after=str(first[0].id))
    assert [e.id for e in rest] == [e.id for e in (await store.find())[1:]]


async def test_find_leaves_out_expired_entries(store: MemoryStore) -> None:
    await _expire(store, "gone")
    assert await store.find() == []


async def test_find_keyset_is_not_shifted_by_a_deleted_entry(store: MemoryStore) -> None:
    await _load(store, 6)
    first = await store.find(limit=3)
    await store.delete(first[0].id)
    rest = await store.find(limit=10, after=first[-1].id)
    assert len(rest) == 3


@pytest.mark.parametrize("limit", [0, -1, 10_001, 2.5, True, "10"])
async def test_find_refuses_a_limit_out_of_range(store: MemoryStore, limit: object) -> None:
    with pytest.raises(InvalidInputError, match="limit"):
        await store.find(limit=limit)  # type: ignore[arg-type]


@pytest.mark.parametrize("after", ["not-a-uuid", 17, object()])
async def test_find_refuses_an_after_that_is_not_an_id(store: MemoryStore, after: object) -> None:
    with pytest.raises(InvalidInputError, match="after"):
        await store.find(after=after)  # type: ignore[arg-type]


async def test_a_bad_filter_is_a_filter_error_for_every_operation(store: MemoryStore) -> None:
    for call in (store.count, store.find, store.delete_where):
        with pytest.raises(FilterError, match=r"\$nope"):
            await call(filter={"a": {"$nope": 1}})


async def test_delete_where_deletes_the_matching_entries_only(store: MemoryStore) -> None:
    await _load(store)
    assert await store.delete_where(filter={"kind": "even"}) == 6
    assert sorted(e.metadata["i"] for e in await store.find()) == [1, 3, 5, 7, 9, 11]


async def test_delete_where_by_session(store: MemoryStore) -> None:
    await _load(store, 2)
    await store.add("a", session_id="s-1")
    await store.add("b", session_id="s-1")
    assert await store.delete_where(session_id="s-1") == 2
    assert await store.count() == 2


async def test_delete_where_also_deletes_expired_matching_entries(store: MemoryStore) -> None:
    await _expire(store, "expired secret", metadata={"user": "x"})
    await store.add("live secret", metadata={"user": "x"})
    assert await store.delete_where(filter={"user": "x"}) == 2
    assert await store.purge_expired() == 0


async def test_delete_where_needs_a_filter_unless_all(store: MemoryStore) -> None:
    await _load(store, 3)
    empty: dict[str, object] | None
    for empty in (None, {}):
        with pytest.raises(InvalidInputError, match="all=True"):
            await store.delete_where(filter=empty)
    assert await store.count() == 3


async def test_delete_where_all_deletes_the_whole_collection_only(store: MemoryStore) -> None:
    await _load(store, 3)
    await store.add("kept", collection="other")
    assert await store.delete_where(all=True) == 3
    assert await store.count() == 0 and await store.count("other") == 1
    assert [c.name for c in await store.list_collections()] == ["default", "other"]


async def test_delete_where_refuses_all_with_a_filter(store: MemoryStore) -> None:
    await _load(store, 3)
    with pytest.raises(InvalidInputError, match="not both"):
        await store.delete_where(filter={"i": 1}, all=True)
    assert await store.count() == 3


async def test_find_combines_filter_session_and_after(store: MemoryStore) -> None:
    await store.add_many([f"s {i}" for i in range(6)], metadata={"kind": "x"}, session_id="s-1")
    await store.add_many([f"t {i}" for i in range(6)], metadata={"kind": "x"}, session_id="s-2")
    first = await store.find(filter={"kind": "x"}, session_id="s-1", limit=2)
    rest = await store.find(filter={"kind": "x"}, session_id="s-1", after=first[-1].id)
    assert len(first) == 2 and len(rest) == 4
    assert {e.session_id for e in first + rest} == {"s-1"}
