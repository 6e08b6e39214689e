"""MemoryStore writing, reading, deduplication, expiry, collections and bad input (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import math
import sys
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from sam_db import migrate
from sam_db.errors import (
    BatchWriteError,
    CollectionNotFoundError,
    DimensionMismatchError,
    EntryNotFoundError,
    InvalidInputError,
    MemoryStoreError,
)
from sam_db.memory import MemoryEntry, MemoryStore, embedder_from_function
from sam_db.testing import HashEmbedder


async def _count(dsn: str, sql: str = "SELECT count(*) FROM memory_entries") -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


# -- add / get ---------------------------------------------------------------------------------


async def test_add_returns_the_stored_entry_with_metadata_and_links(store: MemoryStore) -> None:
    meta = {"kind": "note", "n": 3, "nested": {"a": [1, 2.5, None, True]}, "ü": "✓"}
    e = await store.add("the sky is blue", metadata=meta, session_id="s1", workflow_id="w1")
    assert isinstance(e, MemoryEntry)
    assert e.content == "the sky is blue"
    assert e.collection == "default"
    assert e.metadata == meta
    assert (e.session_id, e.workflow_id) == ("s1", "w1")
    assert e.embedding_model == "hash-embedder"
    assert e.expires_at is None
    assert await store.get(e.id) == e
    assert await store.get(str(e.id)) == e


async def test_get_of_an_unknown_id_is_none(store: MemoryStore) -> None:
    assert await store.get(uuid.uuid4()) is None


async def test_identical_content_is_stored_and_embedded_once(
    store: MemoryStore, embedder: HashEmbedder
) -> None:
    first = await store.add("remember me")
    again = await store.add("remember me", metadata={"ignored": True})
    assert again.id == first.id
    assert again.metadata == {}
    assert embedder.texts_embedded == 1


async def test_same_content_in_two_collections_is_two_entries(store: MemoryStore) -> None:
    a = await store.add("shared", collection="a")
    b = await store.add("shared", collection="b")
    assert a.id != b.id
    assert (a.collection, b.collection) == ("a", "b")


async def test_add_many_returns_one_entry_per_input_in_order(
    store: MemoryStore, embedder: HashEmbedder
) -> None:
    await store.add("already here")
    texts = ["x", "y", "x", "already here", "z"]
    entries = await store.add_many(texts, metadata=[{"i": i} for i in range(5)])
    assert [e.content for e in entries] == texts
    assert entries[0].id == entries[2].id
    assert entries[0].metadata == {"i": 0}  # first occurrence wins
    assert entries[3].metadata == {}  # stored before, returned unchanged
    assert embedder.texts_embedded == 1 + 3  # "already here", then x, y, z only
    assert len({e.id for e in entries}) == 4


async def test_add_many_with_one_metadata_dict_applies_it_to_every_text(store: MemoryStore) -> None:
    entries = await store.add_many(["p", "q"], metadata={"src": "import"})
    assert [e.metadata for e in entries] == [{"src": "import"}, {"src": "import"}]


async def test_add_many_embeds_only_texts_not_yet_stored(
    store: MemoryStore, embedder: HashEmbedder
) -> None:
    await store.add_many([f"t{i}" for i in range(10)])
    before = embedder.texts_embedded
    await store.add_many([f"t{i}" for i in range(15)])
    assert embedder.texts_embedded - before == 5


async def test_add_many_of_an_empty_list_writes_nothing(store: MemoryStore) -> None:
    assert await store.add_many([]) == []


async def test_add_many_spreads_batches_over_connections_and_keeps_order(
    migrated_dsn: str,
) -> None:
    texts = [f"memory number {i}" for i in range(230)]
    async with MemoryStore(
        migrated_dsn, HashEmbedder(), batch_size=40, write_concurrency=3
    ) as store:
        entries = await store.add_many(texts)
    assert [e.content for e in entries] == texts
    assert await _count(migrated_dsn) == 230


async def test_concurrent_add_many_of_the_same_texts_stores_each_once(store: MemoryStore) -> None:
    texts = [f"race {i}" for i in range(60)]
    a, b = await asyncio.gather(store.add_many(texts), store.add_many(list(reversed(texts))))
    assert [e.id for e in a] == [e.id for e in reversed(b)]
    assert len({e.id for e in a}) == 60


async def test_embedder_from_function_wraps_sync_and_async_functions(migrated_dsn: str) -> None:
    h = HashEmbedder()

    def sync_fn(texts: Sequence[str]) -> list[list[float]]:
        return [h.vector(t) for t in texts]

    async def async_fn(texts: Sequence[str]) -> list[list[float]]:
        return [h.vector(t) for t in texts]

    for fn in (sync_fn, async_fn):
        emb = embedder_from_function(fn, dimensions=1536, model="wrapped")
        async with MemoryStore(migrated_dsn, emb) as store:
            e = await store.add(f"via {fn.__name__}")
            hits = await store.search(f"via {fn.__name__}", k=1)
        assert e.embedding_model == "wrapped"
        assert hits[0].entry.id == e.id
        assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)


# -- update / delete -----------------------------------------------------------------------------


async def test_update_with_new_text_re_embeds_it(
    store: MemoryStore, embedder: HashEmbedder
) -> None:
    e = await store.add("old words", metadata={"v": 1})
    updated = await store.update(e.id, text="new words")
    assert (updated.id, updated.content, updated.metadata) == (e.id, "new words", {"v": 1})
    assert embedder.texts_embedded == 2
    hits = await store.search("new words", k=1)
    assert hits[0].entry.id == e.id
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)


async def test_update_of_metadata_only_does_not_embed(
    store: MemoryStore, embedder: HashEmbedder
) -> None:
    e = await store.add("stable")
    updated = await store.update(e.id, metadata={"v": 2})
    assert updated.metadata == {"v": 2}
    assert updated.updated_at >= e.updated_at
    assert embedder.texts_embedded == 1


async def test_update_to_text_stored_as_another_entry_is_refused(store: MemoryStore) -> None:
    a = await store.add("one")
    await store.add("two")
    with pytest.raises(InvalidInputError, match="already stores this text"):
        await store.update(a.id, text="two")
    assert (await store.get(a.id)) == a


async def test_update_of_an_unknown_entry_raises(store: MemoryStore) -> None:
    with pytest.raises(EntryNotFoundError):
        await store.update(uuid.uuid4(), metadata={})


async def test_delete_one_or_many_returns_the_count(store: MemoryStore) -> None:
    a, b, c = await store.add_many(["a", "b", "c"])
    assert await store.delete(a.id) == 1
    assert await store.delete([b.id, str(c.id), uuid.uuid4()]) == 2
    assert await store.delete([]) == 0
    assert await store.get(b.id) is None


# -- expiry --------------------------------------------------------------------------------------


async def test_expired_entries_are_never_returned(store: MemoryStore, migrated_dsn: str) -> None:
    e = await store.add("short lived", ttl=timedelta(hours=1))
    assert e.expires_at is not None
    keep = await store.add("forever")
    conn = await asyncpg.connect(migrated_dsn)
    try:
        await conn.execute(
            "UPDATE memory_entries SET expires_at = now() - interval '1 second' WHERE id = $1",
            e.id,
        )
    finally:
        await conn.close()
    assert await store.get(e.id) is None
    hits = await store.search("short lived", k=10)
    assert [h.entry.id for h in hits] == [keep.id]
    assert [c.entry_count for c in await store.list_collections()] == [1]


async def test_purge_expired_deletes_in_sql_and_counts(store: MemoryStore) -> None:
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    await store.add_many(["gone 1", "gone 2"], expires_at=past)
    await store.add("stays", ttl=timedelta(days=1))
    await store.add("gone 3", collection="other", expires_at=past)
    assert await store.purge_expired(collection="default") == 2
    assert await store.purge_expired() == 1
    assert await store.purge_expired() == 0
    assert [c.entry_count for c in await store.list_collections()] == [1, 0]


async def test_adding_expired_content_again_renews_it(
    store: MemoryStore, embedder: HashEmbedder
) -> None:
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    old = await store.add("phoenix", metadata={"life": 1}, expires_at=past)
    new = await store.add("phoenix", metadata={"life": 2})
    assert new.id == old.id
    assert (new.metadata, new.expires_at) == ({"life": 2}, None)
    assert embedder.texts_embedded == 1
    assert await store.get(old.id) == new


# -- collections ---------------------------------------------------------------------------------


async def test_collections_are_created_on_first_use_and_listed(store: MemoryStore) -> None:
    await store.add("in b", collection="b")
    created = await store.create_collection("a", description="notes", metadata={"owner": "x"})
    assert (created.name, created.description, created.metadata) == ("a", "notes", {"owner": "x"})
    listed = await store.list_collections()
    assert [(c.name, c.entry_count) for c in listed] == [("a", 0), ("b", 1)]


async def test_create_collection_of_an_existing_name_updates_what_is_given(
    store: MemoryStore,
) -> None:
    first = await store.create_collection("c", description="one")
    again = await store.create_collection("c")
    assert (again.id, again.description) == (first.id, "one")
    changed = await store.create_collection("c", description="two")
    assert changed.description == "two"


async def test_delete_collection_removes_its_entries(store: MemoryStore) -> None:
    e = await store.add("doomed", collection="tmp")
    await store.search("doomed", collection="tmp")
    assert await store.delete_collection("tmp") == 1
    assert await store.get(e.id) is None
    assert await store.list_collections() == []


async def test_delete_of_an_unknown_collection_raises(store: MemoryStore) -> None:
    with pytest.raises(CollectionNotFoundError, match="nope"):
        await store.delete_collection("nope")


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("a\x00b", "NUL"), ("\ud800", "surrogate"), (42, "must be a str")],
)
async def test_bad_text_is_refused_before_anything_is_written(
    store: MemoryStore, migrated_dsn: str, embedder: HashEmbedder, text: object, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        await store.add(text)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=message):
        await store.add_many(["fine", text])  # type: ignore[list-item]
    assert embedder.texts_embedded == 0
    assert await _count(migrated_dsn) == 0


@pytest.mark.parametrize(
    "metadata",
    [{"k": "nul\x00"}, {"nan": math.nan}, {"x": object()}, ["not", "a", "dict"], {1: "int key"}],
)
async def test_bad_metadata_is_refused(store: MemoryStore, metadata: object) -> None:
    with pytest.raises(InvalidInputError):
        await store.add("text", metadata=metadata)  # type: ignore[arg-type]


async def test_metadata_list_of_the_wrong_length_is_refused(store: MemoryStore) -> None:
    with pytest.raises(InvalidInputError, match="2 items for 3 texts"):
        await store.add_many(["a", "b", "c"], metadata=[{}, {}])


async def test_add_many_of_a_plain_string_is_refused(store: MemoryStore) -> None:
    with pytest.raises(InvalidInputError, match="list of texts"):
        await store.add_many("abc")


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (math.nan, InvalidInputError),
        (math.inf, InvalidInputError),
        (1e39, InvalidInputError),  # finite as float64, inf as float32
        ("short", DimensionMismatchError),
        ("zero", InvalidInputError),
    ],
)
async def test_bad_vectors_from_an_embedder_write_nothing(
    migrated_dsn: str, bad: object, error: type[Exception]
) -> None:
    h = HashEmbedder()

    def fn(texts: Sequence[str]) -> list[list[float]]:
        out = [h.vector(t) for t in texts]
        if bad == "short":
            out[-1] = out[-1][:-1]
        elif bad == "zero":
            out[-1] = [0.0] * 1536
        else:
            out[-1][7] = bad  # type: ignore[assignment]
        return out

    emb = embedder_from_function(fn, dimensions=1536, model="broken")
    async with MemoryStore(migrated_dsn, emb) as store:
        with pytest.raises(error):
            await store.add_many([f"text {i}" for i in range(50)])
    assert await _count(migrated_dsn) == 0


async def test_embedder_returning_the_wrong_number_of_vectors_is_refused(
    migrated_dsn: str,
) -> None:
    emb = embedder_from_function(
        lambda texts: [HashEmbedder().vector("x")], dimensions=1536, model="one"
    )
    async with MemoryStore(migrated_dsn, emb) as store:
        with pytest.raises(InvalidInputError, match="1 vectors for 2 texts"):
            await store.add_many(["a", "b"])


@pytest.mark.parametrize("bad_id", ["not-a-uuid", 12, None])
async def test_bad_ids_are_refused(store: MemoryStore, bad_id: object) -> None:
    with pytest.raises(InvalidInputError):
        await store.get(bad_id)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        await store.delete(bad_id)  # type: ignore[arg-type]


async def test_ttl_and_expires_at_together_are_refused(store: MemoryStore) -> None:
    with pytest.raises(InvalidInputError, match="not both"):
        await store.add("x", ttl=timedelta(1), expires_at=datetime.now(timezone.utc))
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        await store.add("x", expires_at=datetime.now())
    with pytest.raises(InvalidInputError, match="positive"):
        await store.add("x", ttl=timedelta(0))


# -- batches -------------------------------------------------------------------------------------


async def test_a_failing_batch_names_itself_and_keeps_earlier_batches(migrated_dsn: str) -> None:
    conn = await asyncpg.connect(migrated_dsn)
    try:
        await conn.execute(
            """
            CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.content = 'poison' THEN RAISE EXCEPTION 'poisoned row'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER poison BEFORE INSERT ON memory_entries
                FOR EACH ROW EXECUTE FUNCTION poison();
            """
        )
    finally:
        await conn.close()
    texts = ["a", "b", "c", "d", "poison", "e", "f", "g"]
    async with MemoryStore(migrated_dsn, HashEmbedder(), batch_size=2, write_concurrency=1) as s:
        with pytest.raises(BatchWriteError, match="batch 2 of 4") as info:
            await s.add_many(texts)
        assert info.value.batch == 2
        assert info.value.committed == 4
        assert [e.content for e in info.value.entries] == ["a", "b", "c", "d"]  # type: ignore[attr-defined]
        assert "poisoned row" in str(info.value)
        # What was committed is really there; nothing after the failed batch was written.
        assert await _count(migrated_dsn) == 4
        again = await s.add_many(["a", "b", "c", "d"])
        assert [e.id for e in again] == [e.id for e in info.value.entries]  # type: ignore[attr-defined]


# -- opening -------------------------------------------------------------------------------------


async def test_dimension_mismatch_is_reported_at_open_with_both_sizes(migrated_dsn: str) -> None:
    with pytest.raises(DimensionMismatchError, match=r"768.*vector\(1536\)") as info:
        async with MemoryStore(migrated_dsn, HashEmbedder(768)):
            pass
    assert (info.value.expected, info.value.actual) == (1536, 768)
    assert await _count(migrated_dsn, "SELECT count(*) FROM memory_collections") == 0


async def test_opening_without_the_tables_says_to_migrate(db_dsn: str) -> None:
    with pytest.raises(MemoryStoreError, match="migrate"):
        async with MemoryStore(db_dsn, HashEmbedder()):
            pass


async def test_opening_a_schema_without_the_search_helper_says_what_to_do(
    migrated_dsn: str,
) -> None:
    conn = await asyncpg.connect(migrated_dsn)
    try:
        await conn.execute("DROP FUNCTION memory_search_vector(vector)")
    finally:
        await conn.close()
    with pytest.raises(MemoryStoreError, match=r"memory_search_vector\(\) is missing.*004"):
        async with MemoryStore(migrated_dsn, HashEmbedder()):
            pass


async def test_using_a_closed_store_raises(migrated_dsn: str) -> None:
    store = MemoryStore(migrated_dsn, HashEmbedder())
    with pytest.raises(MemoryStoreError, match="not open"):
        await store.add("x")


async def test_a_borrowed_pool_is_used_and_left_open(migrated_dsn: str) -> None:
    pool = await asyncpg.create_pool(migrated_dsn, min_size=1, max_size=3)
    try:
        async with MemoryStore(pool, HashEmbedder()) as store:
            e = await store.add("borrowed")
            assert (await store.search("borrowed", k=1))[0].entry.id == e.id
        assert await pool.fetchval("SELECT count(*) FROM memory_entries") == 1
    finally:
        await pool.close()


async def test_schema_option_targets_that_schema_only(db_dsn: str) -> None:
    await migrate(db_dsn, schema="mem")
    await migrate(db_dsn, schema="other")
    async with MemoryStore(db_dsn, HashEmbedder(), schema="mem") as store:
        e = await store.add("in mem")
        assert (await store.search("in mem", k=1))[0].entry.id == e.id
    assert await _count(db_dsn, "SELECT count(*) FROM mem.memory_entries") == 1
    assert await _count(db_dsn, "SELECT count(*) FROM other.memory_entries") == 0


async def test_vector_extension_in_its_own_schema_off_the_search_path(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        await conn.execute("CREATE SCHEMA extensions; CREATE EXTENSION vector SCHEMA extensions")
        await conn.execute(f"ALTER DATABASE {conn._params.database} SET search_path = public")  # type: ignore[attr-defined]
    finally:
        await conn.close()
    # Tables in public; the type and <=> operator live in "extensions", not on the search_path.
    conn = await asyncpg.connect(db_dsn, server_settings={"search_path": "public, extensions"})
    try:
        await migrate(conn)
    finally:
        await conn.close()
    async with MemoryStore(db_dsn, HashEmbedder()) as store:
        e = await store.add("operator lookup")
        hits = await store.search("operator lookup", k=1)
        assert hits[0].entry.id == e.id
        assert "memory_entries_embedding_hnsw_idx" in await store.explain_search("x")


def test_importing_sam_db_memory_does_not_import_openai() -> None:
    import subprocess

    code = "import sam_db, sam_db.memory, sys; assert 'openai' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
