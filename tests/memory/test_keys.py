"""Keys: add(key=) / add_many(keys=) upsert an entry by the caller's stable id, unique per
collection; get_by_key reads it back (migration 005)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sam_db.errors import ConfigurationError, InvalidInputError
from sam_db.memory import MemoryStore


def _embedded(store: MemoryStore) -> int:
    return int(store.embedder.texts_embedded)  # type: ignore[attr-defined]


async def test_an_entry_added_with_a_key_carries_it(store: MemoryStore) -> None:
    e = await store.add("first version", key="doc-17")
    assert e.key == "doc-17"


async def test_get_by_key_returns_the_entry(store: MemoryStore) -> None:
    e = await store.add("first version", key="doc-17", metadata={"v": 1})
    assert await store.get_by_key("doc-17") == e


async def test_get_by_key_of_an_unknown_key_is_none_as_get_is(store: MemoryStore) -> None:
    await store.add("first version", key="doc-17")
    assert await store.get_by_key("doc-18") is None
    assert await store.get_by_key("doc-17", collection="nowhere") is None


async def test_keys_are_per_collection(store: MemoryStore) -> None:
    a = await store.add("text a", key="k", collection="a")
    b = await store.add("text b", key="k", collection="b")
    assert a.id != b.id
    assert (await store.get_by_key("k", collection="b")) == b


async def test_adding_an_existing_key_replaces_its_text_and_metadata(store: MemoryStore) -> None:
    old = await store.add("first version", key="doc-17", metadata={"v": 1})
    new = await store.add("second version", key="doc-17", metadata={"v": 2})
    assert new.id == old.id
    assert (new.content, new.metadata) == ("second version", {"v": 2})
    assert await store.count() == 1


async def test_a_replaced_text_is_re_embedded_and_found_by_search(store: MemoryStore) -> None:
    await store.add("first version", key="doc-17")
    before = _embedded(store)
    await store.add("second version", key="doc-17")
    assert _embedded(store) == before + 1
    (hit,) = await store.search("second version", k=1, log=False)
    assert hit.entry.content == "second version" and hit.similarity == pytest.approx(1.0)


async def test_the_same_text_under_its_key_is_not_re_embedded(store: MemoryStore) -> None:
    await store.add("same text", key="doc-17", metadata={"v": 1})
    before = _embedded(store)
    e = await store.add("same text", key="doc-17", metadata={"v": 2})
    assert _embedded(store) == before
    assert e.metadata == {"v": 2}
    (hit,) = await store.search("same text", k=1, log=False)
    assert hit.similarity == pytest.approx(1.0)


async def test_an_upsert_replaces_links_and_expiry_too(store: MemoryStore) -> None:
    await store.add("t", key="k", session_id="s-1", ttl=timedelta(hours=1))
    e = await store.add("t", key="k", workflow_id="w-1")
    assert (e.session_id, e.workflow_id, e.expires_at) == (None, "w-1", None)


async def test_an_expired_key_is_renewed_by_adding_it_again(store: MemoryStore) -> None:
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    old = await store.add("old", key="k", expires_at=past)
    assert await store.get_by_key("k") is None
    new = await store.add("new", key="k")
    assert new.id == old.id and new.expires_at is None
    assert await store.get_by_key("k") == new


async def test_a_keyless_entry_of_the_same_text_takes_the_key(store: MemoryStore) -> None:
    plain = await store.add("shared text", metadata={"v": 1})
    before = _embedded(store)
    keyed = await store.add("shared text", key="k", metadata={"v": 2})
    assert keyed.id == plain.id and keyed.key == "k" and keyed.metadata == {"v": 2}
    assert _embedded(store) == before


async def test_adding_a_keyed_text_without_a_key_returns_the_keyed_entry(
    store: MemoryStore,
) -> None:
    keyed = await store.add("shared text", key="k")
    assert await store.add("shared text") == keyed


async def test_a_text_stored_under_another_key_is_refused(store: MemoryStore) -> None:
    await store.add("shared text", key="a")
    with pytest.raises(InvalidInputError, match="under key 'a'"):
        await store.add("shared text", key="b")
    assert await store.get_by_key("b") is None


async def test_changing_a_key_to_a_text_stored_elsewhere_is_refused(store: MemoryStore) -> None:
    await store.add("stored without a key")
    await store.add("mine", key="k")
    with pytest.raises(InvalidInputError, match="without a key"):
        await store.add("stored without a key", key="k")
    assert (await store.get_by_key("k")).content == "mine"  # type: ignore[union-attr]


async def test_an_expired_holder_of_the_text_gives_way(store: MemoryStore) -> None:
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    await store.add("shared text", key="a", expires_at=past)
    e = await store.add("shared text", key="b")
    assert e.key == "b" and await store.count() == 1


@pytest.mark.parametrize("key", ["", "x" * 513, "a\x00b", 17])
async def test_a_bad_key_is_refused_before_anything_is_written(
    store: MemoryStore, key: object
) -> None:
    with pytest.raises(InvalidInputError, match="key"):
        await store.add("text", key=key)  # type: ignore[arg-type]
    assert await store.count() == 0 and _embedded(store) == 0


async def test_add_many_with_keys_upserts_each(store: MemoryStore) -> None:
    await store.add("old b", key="b", metadata={"v": 0})
    before = _embedded(store)
    out = await store.add_many(["new a", "old b"], keys=["a", "b"], metadata={"v": 1})
    assert [(e.key, e.content, e.metadata) for e in out] == [
        ("a", "new a", {"v": 1}),
        ("b", "old b", {"v": 1}),
    ]
    assert _embedded(store) == before + 1


async def test_add_many_with_keys_in_several_batches_keeps_input_order(
    store: MemoryStore,
) -> None:
    texts = [f"text {i}" for i in range(7)]
    out = await store.add_many(texts, keys=[f"k{6 - i}" for i in range(7)], batch_size=2)
    assert [e.content for e in out] == texts
    assert [e.key for e in out] == [f"k{6 - i}" for i in range(7)]


async def test_add_many_refuses_keys_of_another_length(store: MemoryStore) -> None:
    with pytest.raises(InvalidInputError, match="2 items for 3 texts"):
        await store.add_many(["a", "b", "c"], keys=["1", "2"])
    assert await store.count() == 0


async def test_add_many_refuses_a_key_given_twice(store: MemoryStore) -> None:
    with pytest.raises(InvalidInputError, match=r"keys\[2\] repeats keys\[0\]"):
        await store.add_many(["a", "b", "c"], keys=["1", "2", "1"])
    assert await store.count() == 0


async def test_add_many_refuses_one_text_under_two_keys(store: MemoryStore) -> None:
    with pytest.raises(InvalidInputError, match=r"texts\[1\] repeats texts\[0\]"):
        await store.add_many(["same", "same"], keys=["1", "2"])
    assert await store.count() == 0


async def test_keys_without_migration_005_are_a_configuration_error(db_dsn: str) -> None:
    from sam_db import migrate
    from sam_db.testing import HashEmbedder

    await migrate(db_dsn, target="004")
    async with MemoryStore(db_dsn, HashEmbedder()) as store:
        e = await store.add("plain")
        assert e.key is None and await store.find() == [e]
        with pytest.raises(ConfigurationError, match="migration 005"):
            await store.add("keyed", key="k")
        with pytest.raises(ConfigurationError, match="migration 005"):
            await store.get_by_key("k")


async def test_keyed_upserts_work_on_a_halfvec_column(db_dsn: str, tmp_path: Path) -> None:
    import sam_db
    from sam_db.testing import HashEmbedder

    folder = tmp_path / "migrations"
    sam_db.memory_dimensions_migration(384, half=True, folder=folder)
    await sam_db.migrate(db_dsn, sources=[folder])
    async with MemoryStore(db_dsn, HashEmbedder(384)) as store:
        await store.add("first", key="k")
        await store.add_many(["first", "other"], keys=["k", "o"])  # "first": vector kept
        await store.add("second", key="k")
        (hit,) = await store.search("second", k=1, log=False)
    assert hit.entry.key == "k" and hit.similarity == pytest.approx(1, abs=1e-3)
