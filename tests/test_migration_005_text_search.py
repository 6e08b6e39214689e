"""Migration 005: the text search column, its functions and the per-collection key."""

from __future__ import annotations

import asyncpg
import pytest

from sam_db import migrate, rollback

INSERT = (
    "INSERT INTO memory_entries (collection_id, content, content_hash, embedding, key) "
    "VALUES ($1, $2, sha256(convert_to($2, 'UTF8')), array_fill(0.1, ARRAY[1536])::vector, $3)"
)


async def _connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await conn.execute("INSERT INTO memory_collections (name) VALUES ('a'), ('b')")
    return conn


async def test_005_fills_the_text_search_column_of_existing_rows(db_dsn: str) -> None:
    await migrate(db_dsn, target="004")
    conn = await _connect(db_dsn)
    try:
        await conn.execute(
            "INSERT INTO memory_entries (collection_id, content, content_hash, embedding) "
            "VALUES (1, 'call raw_decode here', sha256('x'), array_fill(0.1, ARRAY[1536])::vector)"
        )
        await migrate(db_dsn)
        found = await conn.fetchval(
            "SELECT count(*) FROM memory_entries "
            "WHERE content_tsv @@ memory_text_query('how do I use raw_decode?')"
        )
        assert found == 1
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        (
            "json.JSONDecoder.raw_decode()",
            {"json.jsondecoder.raw_decode", "jsondecoder", "raw_decode"},
        ),
        ("see os.SEEK_SET.", {"os.seek_set", "seek_set"}),
        ("IPv4Interface and E0401", {"ipv4interface", "e0401"}),
        ("read json/decoder.py", {"json/decoder.py", "decoder.py"}),
        ("fixed in v3.12.1 (utf-8)", {"v3.12.1", "v3", "utf-8"}),
        ("Plain Words ONLY, 2024, 東京", set()),
    ],
)
async def test_identifier_terms_keep_what_the_english_parser_splits(
    migrated_dsn: str, text: str, terms: set[str]
) -> None:
    conn = await asyncpg.connect(migrated_dsn)
    try:
        got = await conn.fetchval("SELECT memory_text_terms($1)", text)
        assert set(got.split()) == terms
    finally:
        await conn.close()


async def test_keys_are_unique_per_collection(migrated_dsn: str) -> None:
    conn = await _connect(migrated_dsn)
    try:
        await conn.execute(INSERT, 1, "one", "doc-1")
        await conn.execute(INSERT, 2, "one", "doc-1")  # another collection
        await conn.execute(INSERT, 1, "two", None)
        await conn.execute(INSERT, 1, "three", None)  # NULL keys never collide
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(INSERT, 1, "four", "doc-1")
    finally:
        await conn.close()


@pytest.mark.parametrize("bad", ["", "k" * 513])
async def test_an_empty_or_overlong_key_is_refused(migrated_dsn: str, bad: str) -> None:
    conn = await _connect(migrated_dsn)
    try:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(INSERT, 1, "text", bad)
    finally:
        await conn.close()


@pytest.mark.slow
async def test_a_text_at_the_store_size_limit_is_stored(migrated_dsn: str) -> None:
    # Ten million characters of distinct identifiers of four-byte characters: the text search
    # reads only a prefix, so the tsvector stays under PostgreSQL's 1 MB limit.
    conn = await _connect(migrated_dsn)
    try:
        await conn.execute(
            "INSERT INTO memory_entries (collection_id, content, content_hash, embedding) "
            "SELECT 1, s, sha256(convert_to(s, 'UTF8')), array_fill(0.1, ARRAY[1536])::vector "
            "FROM (SELECT string_agg(chr(131072 + i % 40000) || chr(131072 + i / 40000) || '_' "
            "|| chr(131072 + i * 7 % 40000), ' ') AS s FROM generate_series(1, 2000000) i) t"
        )
        size = await conn.fetchval("SELECT pg_column_size(content_tsv) FROM memory_entries")
        assert 0 < size < 1_048_576
    finally:
        await conn.close()


async def test_the_text_functions_work_under_an_empty_search_path(migrated_dsn: str) -> None:
    # pg_dump restores run with an empty search_path and recompute generated columns.
    conn = await _connect(migrated_dsn)
    try:
        await conn.execute("SET search_path = ''")
        await conn.execute(
            INSERT.replace("memory_entries", "public.memory_entries").replace(
                "::vector", "::public.vector"
            ),
            1,
            "uses raw_decode",
            None,
        )
        found = await conn.fetchval(
            "SELECT count(*) FROM public.memory_entries "
            "WHERE content_tsv @@ public.memory_text_query('raw_decode')"
        )
        assert found == 1
    finally:
        await conn.close()


async def test_rollback_of_005_keeps_the_entries(migrated_dsn: str) -> None:
    conn = await _connect(migrated_dsn)
    try:
        await conn.execute(INSERT, 1, "kept", "doc-1")
        assert [m.version for m in await rollback(migrated_dsn)] == ["005"]
        assert await conn.fetchval("SELECT content FROM memory_entries") == "kept"
    finally:
        await conn.close()
