"""memory_text_query (migration 005): what a search text matches: its identifier terms when it has
any, else its words less those ANALYZE counts in many entries (the text leg stays small)."""

from __future__ import annotations

import asyncpg

INSERT = (
    "INSERT INTO memory_entries (collection_id, content, content_hash, embedding) "
    "VALUES (1, $1, sha256(convert_to($1, 'UTF8')), array_fill(0.1, ARRAY[1536])::vector)"
)


async def _matches(dsn: str, texts: list[str], query: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("INSERT INTO memory_collections (name) VALUES ('a')")
        for text in texts:
            await conn.execute(INSERT, text)
        rows = await conn.fetch(
            "SELECT content FROM memory_entries WHERE content_tsv @@ memory_text_query($1) "
            "ORDER BY content",
            query,
        )
        return [r["content"] for r in rows]
    finally:
        await conn.close()


async def test_a_query_with_identifier_terms_matches_only_entries_holding_them(
    migrated_dsn: str,
) -> None:
    texts = ["use raw_decode on a string", "use the decoder", "how to use a socket"]
    found = await _matches(migrated_dsn, texts, "how do I use raw_decode?")
    assert found == ["use raw_decode on a string"]


async def test_a_query_without_identifier_terms_matches_any_of_its_words(
    migrated_dsn: str,
) -> None:
    texts = ["use raw_decode on a string", "use the decoder", "a socket"]
    found = await _matches(migrated_dsn, texts, "how do I use a decoder")
    assert found == ["use raw_decode on a string", "use the decoder"]


async def test_a_query_leaves_out_words_analyze_counts_in_many_entries(migrated_dsn: str) -> None:
    conn = await asyncpg.connect(migrated_dsn)
    try:
        await conn.execute("INSERT INTO memory_collections (name) VALUES ('a')")
        await conn.execute(
            "INSERT INTO memory_entries (collection_id, content, content_hash, embedding) "
            "SELECT 1, 'a frequent phrase ' || i, sha256(convert_to('f' || i, 'UTF8')), "
            "array_fill(0.1, ARRAY[1536])::vector FROM generate_series(1, 700) i"
        )
        await conn.execute(INSERT, "a scarce phrase")
        await conn.execute("ANALYZE memory_entries")
        count = "SELECT count(*) FROM memory_entries WHERE content_tsv @@ memory_text_query($1)"
        # 'phrase' is in every entry: the query matches by its rarer word only ...
        assert await conn.fetchval(count, "scarce phrase") == 1
        # ... and by its least common word when all are common ('frequent': 700 entries).
        assert await conn.fetchval(count, "frequent phrase") == 700
    finally:
        await conn.close()
