"""A store replaces a connection whose session the server ended even when nothing shows it yet.

PostgreSQL ends a session by sending a FATAL message, then closes the socket a moment later (the
backend leaves pg_stat_activity before it closes its socket; on a busy machine that moment is
long). asyncpg reads the message as soon as its event loop runs and is from then on unable to send
anything on that connection, while the connection still looks open and its socket holds nothing
unread. A relay between the store and the server holds that moment open for as long as a test
needs: it forwards everything, but never the server closing a connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from sam_db.memory import MemoryStore
from sam_db.testing import HashEmbedder

from .test_store_reconnects import (
    admin_connection,
    every_kind_of_call_works,
    lease_many,
    store_backends,
    terminate,
    within,
)


class EndUnseenRelay:
    """Forwards connections to the server; when the server closes one, the client is not told."""

    def __init__(self, dsn: str) -> None:
        parts = urlsplit(dsn)
        query = parse_qs(parts.query)
        self._host = query.get("host", [parts.hostname or "localhost"])[0]
        self._port = int(query.get("port", [parts.port or 5432])[0])
        self.ended = 0  # connections the server closed (all it sent was forwarded)
        self._changed = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []
        self._held: list[asyncio.StreamWriter] = []  # clients not told their server left
        self._holding = True
        self._tasks: set[asyncio.Task[None]] = set()

    async def _open_server(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._host.startswith("/"):
            return await asyncio.open_unix_connection(f"{self._host}/.s.PGSQL.{self._port}")
        return await asyncio.open_connection(self._host, self._port)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await self._open_server()
        self._writers += [client_w, server_w]
        for task in (
            asyncio.ensure_future(self._pump(client_r, server_w, to_client=False)),
            asyncio.ensure_future(self._pump(server_r, client_w, to_client=True)),
        ):
            self._tasks.add(task)

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, to_client: bool
    ) -> None:
        with suppress(ConnectionError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        if to_client:
            self.ended += 1
            self._changed.set()
        if to_client and self._holding:
            self._held.append(dst)  # the client side stays open: it sees no end
        else:
            dst.close()

    def tell(self) -> None:
        """From now on tell clients when the server closes their connection, and tell those it
        has closed (as it finally would): closing a connection whose end it never sees would
        wait forever."""
        self._holding = False
        held, self._held = self._held, []
        for writer in held:
            writer.close()

    async def until_ended(self, count: int) -> None:
        while self.ended < count:
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), 15)

    @asynccontextmanager
    async def running(self, dsn: str) -> AsyncIterator[str]:
        """While the relay runs: ``dsn`` rewritten to connect through it."""
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        parts = urlsplit(dsn)
        user = parts.username or "postgres"
        password = f":{parts.password}" if parts.password else ""
        try:
            yield f"postgresql://{user}{password}@127.0.0.1:{port}{parts.path}?sslmode=disable"
        finally:
            server.close()
            for writer in self._writers:
                writer.close()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)


async def end_idle_sessions_unseen(
    relay: EndUnseenRelay, admin: asyncpg.Connection, expected: int
) -> None:
    """Terminate the store's idle backends; return once asyncpg has read their FATAL messages,
    with the sockets still open and nothing left unread on them."""
    idle = await store_backends(admin, "idle")
    assert len(idle) == expected
    ended = relay.ended
    await terminate(admin, idle)
    await relay.until_ended(ended + len(idle))
    await asyncio.sleep(0.1)  # the store's event loop reads what the relay forwarded


@asynccontextmanager
async def store_through(
    relay: EndUnseenRelay, dsn: str, embedder: HashEmbedder, pooled: bool
) -> AsyncIterator[MemoryStore]:
    """A store connecting through ``relay``: on its own pool, or on a borrowed one."""
    async with relay.running(dsn) as relayed:
        if not pooled:
            async with MemoryStore(relayed, embedder, max_connections=2) as store:
                try:
                    yield store
                finally:
                    relay.tell()
            return
        pool = await asyncpg.create_pool(relayed, min_size=0, max_size=2)
        try:
            async with MemoryStore(pool, embedder) as store:
                yield store
        finally:
            relay.tell()
            await within(pool.close())


@pytest.mark.parametrize("pooled", [False, True], ids=["own pool", "borrowed pool"])
async def test_sessions_ended_while_idle_are_replaced_before_anything_is_sent(
    migrated_dsn: str, embedder: HashEmbedder, pooled: bool
) -> None:
    relay = EndUnseenRelay(migrated_dsn)
    async with (
        store_through(relay, migrated_dsn, embedder, pooled) as store,
        admin_connection(migrated_dsn) as admin,
    ):
        for round_ in range(3):
            await within(lease_many(store, 2))
            await end_idle_sessions_unseen(relay, admin, 2)
            await within(every_kind_of_call_works(store, round_))


async def test_a_write_on_a_session_ended_unseen_is_sent_on_a_new_connection(
    migrated_dsn: str, embedder: HashEmbedder
) -> None:
    # Nothing of the write was sent on the ended session: it is not "maybe applied", it is sent
    # on a new connection and applies once.
    relay = EndUnseenRelay(migrated_dsn)
    async with (
        store_through(relay, migrated_dsn, embedder, pooled=False) as store,
        admin_connection(migrated_dsn) as admin,
    ):
        entry = await within(store.add("delete me"))
        await within(lease_many(store, 2))
        await end_idle_sessions_unseen(relay, admin, 2)
        assert await within(store.delete(entry.id)) == 1
        assert await within(store.get(entry.id)) is None
