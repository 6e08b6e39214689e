"""Throw-away resources made one ahead of demand and destroyed in the background.

A test that asks for a fresh database gets the one made while the previous test ran, and the
database it used is dropped while the next test runs: cloning and dropping leave the critical path
whenever tests take longer than a clone. Runs on the fixture loop (see ``_loop``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger("sam_db.testing")


class Supply:
    """Hands out names made by ``create``; ``give_back`` destroys a name without waiting."""

    def __init__(
        self,
        create: Callable[[], Awaitable[str]],
        destroy: Callable[[str], Awaitable[None]],
        *,
        prefetch: bool = True,
        serial: bool = False,
    ) -> None:
        self._create = create
        self._destroy = destroy
        self._prefetch = prefetch
        # ``serial``: creating and destroying take turns instead of overlapping. For schemas: a
        # migration run next to the previous schema's DROP ... CASCADE fights it for catalog
        # locks and cores, and both finish later than one after the other.
        self._turns = asyncio.Lock() if serial else None
        self._next: asyncio.Task[str] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._closed = False

    async def take(self) -> str:
        """A fresh name: the prefetched one when it made it, else one made now."""
        task, self._next = self._next, None
        name: str | None = None
        if task is not None:
            try:
                name = await task
            except Exception as exc:  # e.g. the template was dropped meanwhile: make one now
                log.info("prefetched test database failed (%s); retrying", exc)
        if name is None:
            name = await self._in_turn(self._create)
        if self._prefetch and not self._closed:
            self._next = asyncio.ensure_future(self._in_turn(self._create))
        return name

    async def _in_turn(self, work: Callable[[], Awaitable[T]]) -> T:
        if self._turns is None:
            return await work()
        async with self._turns:
            return await work()

    async def give_back(self, name: str) -> None:
        """Start destroying ``name``; returns at once (failures are logged, not raised).

        Without ``prefetch`` nothing happens in the background: this waits for the destroy.
        """
        if not self._prefetch:
            await self._destroy_quietly(name)
            return
        task = asyncio.ensure_future(self._destroy_quietly(name))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _destroy_quietly(self, name: str) -> None:
        try:
            await self._in_turn(lambda: self._destroy(name))
        except Exception as exc:
            log.warning("could not drop test database or schema %s: %s", name, exc)

    async def close(self) -> None:
        """Destroy the prefetched name and wait for every pending destroy."""
        self._closed = True
        task, self._next = self._next, None
        if task is not None:
            with contextlib.suppress(Exception):  # failed to be made: nothing to drop
                await self.give_back(await task)
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
