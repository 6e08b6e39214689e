"""The store's connection leases over its own pool: reuse, hand-over, and giving back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from sam_db.errors import ConnectionLostError
from sam_db.memory._connections import Leases


@pytest.fixture
async def pool(migrated_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(migrated_dsn, min_size=0, max_size=2)
    try:
        yield p
    finally:
        await p.close()


async def test_a_returned_connection_is_reused(pool: asyncpg.Pool) -> None:
    leases = Leases(pool, 2)
    async with leases.connection() as first:
        pid = first.get_server_pid()
    async with leases.connection() as second:
        assert second.get_server_pid() == pid
    await leases.close()


async def test_more_operations_than_connections_wait_and_all_finish(pool: asyncpg.Pool) -> None:
    leases = Leases(pool, 2)
    busy = 0
    most = 0

    async def op(i: int) -> int:
        nonlocal busy, most
        async with leases.connection() as conn:
            busy += 1
            most = max(most, busy)
            value = await conn.fetchval("SELECT $1::int FROM pg_sleep(0.01)", i)
            busy -= 1
            return int(value)

    assert await asyncio.wait_for(asyncio.gather(*(op(i) for i in range(20))), 10) == list(
        range(20)
    )
    assert most == 2
    await leases.close()


async def test_a_failed_operation_gives_its_connection_back_to_the_pool(
    pool: asyncpg.Pool,
) -> None:
    leases = Leases(pool, 1)
    with pytest.raises(asyncpg.DivisionByZeroError):
        async with leases.connection() as conn:
            await conn.execute("BEGIN")
            await conn.fetchval("SELECT 1 / 0")
    # asyncpg's release rolled the transaction back; the next lease works.
    async with leases.connection() as conn:
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SELECT 1") == 1
    await leases.close()


async def test_a_cancelled_waiter_does_not_lose_a_connection(pool: asyncpg.Pool) -> None:
    leases = Leases(pool, 1)
    gate = asyncio.Event()

    async def holder() -> None:
        async with leases.connection():
            await gate.wait()

    hold = asyncio.create_task(holder())
    await asyncio.sleep(0.05)
    waiter = asyncio.create_task(leases.connection().__aenter__())
    await asyncio.sleep(0.05)
    waiter.cancel()
    gate.set()
    await hold
    with pytest.raises(asyncio.CancelledError):
        await waiter
    async with leases.connection() as conn:  # the one connection is still usable
        assert await conn.fetchval("SELECT 1") == 1
    await leases.close()


async def test_close_gives_idle_connections_back_so_the_pool_can_close(
    migrated_dsn: str,
) -> None:
    pool = await asyncpg.create_pool(migrated_dsn, min_size=0, max_size=2)
    leases = Leases(pool, 2)
    async with leases.connection():
        pass
    await leases.close()
    await asyncio.wait_for(pool.close(), 5)  # would wait forever for a leased connection


class _FailOnce:
    """The real pool, except that one acquire fails (as when the server has just gone away)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.fail_next = False

    async def acquire(self) -> object:
        if self.fail_next:
            self.fail_next = False
            raise OSError("connection refused")
        return await self.pool.acquire()

    async def release(self, conn: object) -> None:
        await self.pool.release(conn)


async def test_a_failed_acquire_passes_the_turn_to_the_next_waiter(pool: asyncpg.Pool) -> None:
    flaky = _FailOnce(pool)
    leases = Leases(flaky, 1)
    gate = asyncio.Event()

    async def holder() -> None:
        async with leases.connection():
            await gate.wait()
            raise RuntimeError("the operation failed")  # its connection goes back to asyncpg

    async def waiter() -> int:
        async with leases.connection() as conn:
            return int(await conn.fetchval("SELECT 1"))

    hold = asyncio.create_task(holder())
    await asyncio.sleep(0.05)
    first, second = asyncio.create_task(waiter()), asyncio.create_task(waiter())
    await asyncio.sleep(0.05)
    flaky.fail_next = True  # the first waiter's new lease fails
    gate.set()
    with pytest.raises(RuntimeError):
        await hold
    with pytest.raises(ConnectionLostError) as caught:  # typed, with the cause kept
        await asyncio.wait_for(first, 5)
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.maybe_applied is False
    assert await asyncio.wait_for(second, 5) == 1  # not left waiting for a lease nobody frees
    await leases.close()
