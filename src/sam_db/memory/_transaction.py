"""Transactions whose outcome is known when they end, even when the caller is cancelled.

A transaction whose COMMIT was not sent never commits, whatever happens to the caller; a COMMIT
once sent is waited for even if the caller is cancelled meanwhile (the cancellation is passed on
afterwards). So when an error or a cancellation reaches the caller, what is stored is final:
nothing more is written after it. Every write of entries runs this way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def in_transaction(conn: Any, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` in a transaction on ``conn`` and commit it, so that its outcome is known
    when the caller is cancelled: cancelled before the COMMIT is sent, the transaction is rolled
    back; cancelled while the COMMIT runs, its outcome is awaited. Either way the cancellation
    is then passed on, and nothing of the transaction commits after it."""
    committing = False

    async def body() -> T:
        nonlocal committing
        async with conn.transaction():
            result = await work()
            committing = True  # leaving the block sends COMMIT
        return result

    task = asyncio.ensure_future(body())
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if not committing:
            task.cancel()  # interrupts the statement: no COMMIT will be sent
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):  # cancelled again: still waiting
                await asyncio.wait((task,))
        if not task.cancelled():
            task.exception()  # retrieved: the caller's cancellation is what goes on
        raise
