"""A cancelled (timed-out) add_many writes nothing after the caller has its error.

The server is made slow with triggers that ignore cancel requests (a real PostgreSQL behaviour:
a statement is only interrupted where it checks for interrupts), and the call is cancelled once
the server is seen sleeping in one, so the race the caller would otherwise lose is deterministic.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from sam_db.memory import MemoryStore
from sam_db.testing import HashEmbedder

# Sleeps `seconds` whatever cancel requests arrive meanwhile.
_STUBBORN_SLEEP = """
CREATE FUNCTION stubborn_sleep(seconds float8) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    done timestamptz := clock_timestamp() + make_interval(secs => seconds);
BEGIN
    WHILE clock_timestamp() < done LOOP
        BEGIN
            PERFORM pg_sleep(0.02);
        EXCEPTION WHEN query_canceled THEN
            NULL;
        END;
    END LOOP;
END $$;
"""

_SLOW_INSERT = """
CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM stubborn_sleep(0.8); RETURN NULL; END $$;
CREATE TRIGGER slow_insert AFTER INSERT ON memory_entries
    FOR EACH STATEMENT EXECUTE FUNCTION slow_insert();
"""

# A deferred constraint trigger runs at COMMIT: the COMMIT itself takes the time.
_SLOW_COMMIT = """
CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.content LIKE 'slow%' THEN PERFORM stubborn_sleep(0.8); END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON memory_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();
"""


async def _run(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _cancel_while_the_server_sleeps(dsn: str, task: asyncio.Task[object]) -> None:
    """Cancel ``task`` once a backend of this database sleeps in a trigger, and wait for it."""
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(2000):
            sleeping = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event = 'PgSleep'"
            )
            if sleeping or task.done():
                break
            await asyncio.sleep(0.005)
    finally:
        await conn.close()
    assert sleeping, f"the server never slept in a trigger (the call ended: {task.done()})"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def _wait_until_the_server_is_done(dsn: str) -> None:
    """Wait until no other session of this database runs a statement or holds a transaction
    open: whatever the cancelled call left running has ended, committed or not."""
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(2000):
            busy = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"
            )
            if not busy:
                return
            await asyncio.sleep(0.005)
    finally:
        await conn.close()
    raise AssertionError("the server was still busy 10 s after the cancellation")


async def _count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM memory_entries"))
    finally:
        await conn.close()


async def test_a_cancelled_add_many_commits_nothing_after_the_cancellation(
    migrated_dsn: str,
) -> None:
    await _run(migrated_dsn, _STUBBORN_SLEEP + _SLOW_INSERT)
    async with MemoryStore(migrated_dsn, HashEmbedder()) as store:
        await store.create_collection("default")  # every batch starts at once
        texts = [f"text {i}" for i in range(8)]
        task = asyncio.ensure_future(store.add_many(texts, batch_size=2))
        await _cancel_while_the_server_sleeps(migrated_dsn, task)
        seen = await _count(migrated_dsn)
        await _wait_until_the_server_is_done(migrated_dsn)
        assert await _count(migrated_dsn) == seen == 0


async def test_a_commit_in_flight_is_waited_for_before_the_cancellation_reaches_the_caller(
    migrated_dsn: str,
) -> None:
    await _run(migrated_dsn, _STUBBORN_SLEEP + _SLOW_COMMIT)
    embedder = HashEmbedder()
    async with MemoryStore(migrated_dsn, embedder, write_concurrency=1) as store:
        texts = ["slow 0", "text 1", "text 2", "text 3"]
        task = asyncio.ensure_future(store.add_many(texts, batch_size=2))
        await _cancel_while_the_server_sleeps(migrated_dsn, task)
        seen = await _count(migrated_dsn)
        await _wait_until_the_server_is_done(migrated_dsn)
        assert await _count(migrated_dsn) == seen
        assert seen == 2  # the first batch, whose COMMIT was under way, and nothing else
        # Running the call again finishes the job without embedding stored texts again.
        embedded = embedder.texts_embedded
        entries = await store.add_many(texts, batch_size=2)
        assert [e.content for e in entries] == texts
        assert embedder.texts_embedded == embedded + 2
    assert await _count(migrated_dsn) == 4


async def test_a_cancelled_add_waits_for_its_commit(migrated_dsn: str) -> None:
    await _run(migrated_dsn, _STUBBORN_SLEEP + _SLOW_COMMIT)
    async with MemoryStore(migrated_dsn, HashEmbedder()) as store:
        task = asyncio.ensure_future(store.add("slow one"))
        await _cancel_while_the_server_sleeps(migrated_dsn, task)
        seen = await _count(migrated_dsn)
        await _wait_until_the_server_is_done(migrated_dsn)
        assert await _count(migrated_dsn) == seen == 1


_SLOW_UPDATE = """
CREATE FUNCTION slow_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM stubborn_sleep(0.8); RETURN NULL; END $$;
CREATE TRIGGER slow_update AFTER UPDATE ON memory_entries
    FOR EACH STATEMENT EXECUTE FUNCTION slow_update();
"""


async def test_a_cancelled_update_changes_nothing_after_the_cancellation(migrated_dsn: str) -> None:
    async with MemoryStore(migrated_dsn, HashEmbedder()) as store:
        entry = await store.add("before", metadata={"v": 1})
        await _run(migrated_dsn, _STUBBORN_SLEEP + _SLOW_UPDATE)
        task = asyncio.ensure_future(store.update(entry.id, metadata={"v": 2}))
        await _cancel_while_the_server_sleeps(migrated_dsn, task)
        seen = await store.get(entry.id)
        await _wait_until_the_server_is_done(migrated_dsn)
        assert await store.get(entry.id) == seen == entry
