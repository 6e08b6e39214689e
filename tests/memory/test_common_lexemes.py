"""A store keeps its table's common lexemes (what text queries leave out) and reads them again
once they are stale: one read per ``max_age``, not one per search."""

from __future__ import annotations

import asyncpg

from sam_db.memory import MemoryStore
from sam_db.memory._common_lexemes import CommonLexemes

# Each call returns the next number: how many times the list was read.
COUNTED = (
    "CREATE SEQUENCE reads; CREATE FUNCTION counted() RETURNS text[] LANGUAGE sql "
    "AS $$ SELECT ARRAY[nextval('reads')::text] $$"
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_list_is_read_once_while_fresh_and_again_when_stale(migrated_dsn: str) -> None:
    clock = Clock()
    lexemes = CommonLexemes(max_age=60.0, clock=clock)
    conn = await asyncpg.connect(migrated_dsn)
    try:
        await conn.execute(COUNTED)
        assert await lexemes.get(conn, "counted") == ["1"]
        clock.now = 59.0
        assert await lexemes.get(conn, "counted") == ["1"]
        clock.now = 60.0
        assert await lexemes.get(conn, "counted") == ["2"]
    finally:
        await conn.close()


async def test_a_table_without_statistics_has_no_common_lexemes(migrated_dsn: str) -> None:
    conn = await asyncpg.connect(migrated_dsn)
    try:
        assert await CommonLexemes().get(conn, "memory_text_common_lexemes") == []
    finally:
        await conn.close()


async def test_a_text_search_leaves_out_the_words_analyze_counts_as_common(
    migrated_dsn: str, store: MemoryStore
) -> None:
    texts = [f"a frequent phrase {i}" for i in range(700)] + ["a scarce phrase"]
    await store.add_many(texts)
    conn = await asyncpg.connect(migrated_dsn)
    try:
        await conn.execute("ANALYZE memory_entries")
    finally:
        await conn.close()
    async with MemoryStore(migrated_dsn, store.embedder) as fresh:
        hits = await fresh.search("scarce phrase", k=1000, mode="text")
        assert [h.entry.content for h in hits] == ["a scarce phrase"]
        # A query of common words only keeps the least common: 'frequent', not 'phrase'.
        assert len(await fresh.search("frequent phrase", k=1000, mode="text")) == 700
