"""The access log's two modes (buffered: written in the background with COPY; sync: written by
each search statement) and its retention (purge_access_log)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from sam_db.errors import ConfigurationError, InvalidInputError
from sam_db.memory import MemoryStore
from sam_db.testing import HashEmbedder

NEVER = 3600.0  # a flush interval no test waits for


async def _logged(dsn: str) -> int:
    """Rows in the access log, read past the store (which would flush its buffer first)."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM memory_access_log"))
    finally:
        await conn.close()


async def test_buffered_rows_are_written_when_the_store_closes(migrated_dsn: str) -> None:
    store = MemoryStore(migrated_dsn, HashEmbedder(), access_log_flush_interval=NEVER)
    async with store:
        assert store.access_log_mode == "buffered"
        await store.add_many(["one", "two", "three"])
        hits = await store.search("two", k=2)
        assert await _logged(migrated_dsn) == 0  # buffered, not yet written
    assert await _logged(migrated_dsn) == len(hits) == 2


async def test_buffered_rows_are_written_at_the_flush_interval(migrated_dsn: str) -> None:
    async with MemoryStore(migrated_dsn, HashEmbedder(), access_log_flush_interval=0.2) as store:
        await store.add_many(["one", "two", "three"])
        await store.search("two", k=3)
        for _ in range(50):
            if await _logged(migrated_dsn) == 3:
                break
            await asyncio.sleep(0.1)
        assert await _logged(migrated_dsn) == 3


async def test_reading_the_log_writes_the_buffer_first(migrated_dsn: str) -> None:
    async with MemoryStore(migrated_dsn, HashEmbedder(), access_log_flush_interval=NEVER) as store:
        apple, _ = await store.add_many(["apple", "pear"])
        hits = await store.search("apple", k=2, session_id=None)
        records = sorted(await store.access_records(), key=lambda r: r.rank)
        assert [r.entry_id for r in records] == [h.entry.id for h in hits]
        assert [r.similarity for r in records] == pytest.approx(
            [h.similarity for h in hits], abs=1e-5
        )
        assert {r.query for r in records} == {"apple"}
        await store.search("apple", k=1)
        [stat, *_] = await store.most_accessed()
        assert (stat.entry.id, stat.access_count) == (apple.id, 2)


async def test_flush_access_log_writes_now_and_returns_how_many(migrated_dsn: str) -> None:
    async with MemoryStore(migrated_dsn, HashEmbedder(), access_log_flush_interval=NEVER) as store:
        await store.add_many(["a", "b", "c"])
        await store.search("a", k=3)
        assert await store.flush_access_log() == 3
        assert await _logged(migrated_dsn) == 3
        assert await store.flush_access_log() == 0


async def test_a_full_buffer_drops_whole_searches_and_never_blocks_one(
    migrated_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The log table is locked: the background COPY waits, the buffer (3 rows) fills up.
    locker = await asyncpg.connect(migrated_dsn)
    store = MemoryStore(
        migrated_dsn, HashEmbedder(), access_log_buffer=3, access_log_flush_interval=NEVER
    )
    searches = 6
    try:
        await store.open()
        await store.add_many(["x", "y", "z"])
        tx = locker.transaction()
        await tx.start()
        await locker.execute("LOCK TABLE memory_access_log IN EXCLUSIVE MODE")
        with caplog.at_level(logging.WARNING, logger="sam_db.memory"):
            for _ in range(searches):
                assert len(await asyncio.wait_for(store.search("x", k=2), 5)) == 2
        dropped = store.access_log_dropped
        assert dropped >= 2 and dropped % 2 == 0  # whole searches (2 rows each)
        assert "access log buffer full" in caplog.text
        await tx.rollback()
        await store.close()
    finally:
        await locker.close()
        await store.close()
    assert await _logged(migrated_dsn) == searches * 2 - dropped


async def test_sync_mode_writes_the_rows_in_the_search_statement(migrated_dsn: str) -> None:
    queries: list[str] = []

    async def init(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(lambda record: queries.append(record.query))

    pool = await asyncpg.create_pool(migrated_dsn, min_size=1, max_size=1, init=init)
    try:
        async with MemoryStore(pool, HashEmbedder(), access_log_mode="sync") as store:
            await store.add_many(["one", "two", "three"])
            queries.clear()
            await store.search("two", k=2)
            assert await _logged(migrated_dsn) == 2  # written, without any flush
    finally:
        await pool.close()
    [search] = [q for q in queries if "sam_db hnsw search" in q]
    assert "INSERT INTO" in search


async def test_buffered_mode_leaves_the_insert_out_of_the_search_statement(
    migrated_dsn: str,
) -> None:
    queries: list[str] = []

    async def init(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(lambda record: queries.append(record.query))

    pool = await asyncpg.create_pool(migrated_dsn, min_size=1, max_size=1, init=init)
    try:
        async with MemoryStore(pool, HashEmbedder(), access_log_flush_interval=NEVER) as store:
            await store.add_many(["one", "two", "three"])
            queries.clear()
            await store.search("two", k=2)
    finally:
        await pool.close()
    [search] = [q for q in queries if "sam_db hnsw search" in q]
    assert "INSERT" not in search
    assert await _logged(migrated_dsn) == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"access_log_mode": "async"},
        {"access_log_mode": True},
        {"access_log_flush_interval": 0},
        {"access_log_flush_interval": "1s"},
    ],
)
def test_bad_access_log_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        MemoryStore("postgresql://unused", HashEmbedder(), **kwargs)  # type: ignore[arg-type]


def test_a_bad_buffer_size_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="access_log_buffer"):
        MemoryStore("postgresql://unused", HashEmbedder(), access_log_buffer=0)


# -- retention -----------------------------------------------------------------------------------


async def _age_rows(dsn: str, days: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "UPDATE memory_access_log SET accessed_at = now() - make_interval(days => $1)", days
        )
    finally:
        await conn.close()


async def test_purge_access_log_deletes_rows_older_than_an_age(
    store: MemoryStore, migrated_dsn: str
) -> None:
    await store.add_many(["old", "new"])
    await store.search("old", k=2)
    await store.flush_access_log()
    await _age_rows(migrated_dsn, 10)
    await store.search("new", k=1)  # buffered: purge writes it first, and keeps it
    assert await store.purge_access_log(older_than=timedelta(days=7)) == 2
    [kept] = await store.access_records()
    assert kept.query == "new"
    assert await store.purge_access_log(timedelta(days=7)) == 0


async def test_purge_access_log_takes_an_aware_datetime(
    store: MemoryStore, migrated_dsn: str
) -> None:
    await store.add("x")
    await store.search("x", k=1)
    cutoff = datetime.now(timezone.utc) + timedelta(seconds=5)
    assert await store.purge_access_log(older_than=cutoff) == 1
    assert await _logged(migrated_dsn) == 0


async def test_purge_access_log_of_one_collection_keeps_the_others(
    store: MemoryStore,
) -> None:
    await store.add("a", collection="c1")
    await store.add("b", collection="c2")
    await store.search("a", collection="c1", k=1)
    await store.search("b", collection="c2", k=1)
    assert await store.purge_access_log(timedelta(0), collection="c1") == 1
    assert [r.collection for r in await store.access_records()] == ["c2"]


@pytest.mark.parametrize(
    "older_than",
    [
        timedelta(days=-1),
        datetime(2020, 1, 1),  # naive: which zone?
        30,
        "30 days",
        None,
    ],
)
async def test_bad_older_than_is_refused_and_nothing_is_deleted(
    store: MemoryStore, migrated_dsn: str, older_than: object
) -> None:
    await store.add("kept")
    await store.search("kept", k=1)
    await store.flush_access_log()
    with pytest.raises(InvalidInputError, match="older_than"):
        await store.purge_access_log(older_than)  # type: ignore[arg-type]
    assert await _logged(migrated_dsn) == 1
