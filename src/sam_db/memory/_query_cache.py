"""An LRU cache of query embeddings, keyed by embedding model and query text.

Agents repeat queries ("what did the user say about X?"), and a query's embedding is a network
call (or a model run) that costs far more than the search itself. ``MemoryStore(query_cache_size=N)``
keeps the last N query vectors, so a repeated query skips the embedding call. Concurrent misses of
one key share a single call. Only query vectors are cached: stored texts are deduplicated by the
database already.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from ..errors import ConfigurationError

T = TypeVar("T")
# Bounds a cache's memory: a 1536-d float32 vector is a few KB, so the ceiling is well under a GB.
MAX_QUERY_CACHE_SIZE = 100_000


def check_query_cache_size(size: object) -> int:
    """``size`` as an int from 0 (no cache) to MAX_QUERY_CACHE_SIZE; ConfigurationError otherwise."""
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_QUERY_CACHE_SIZE:
        raise ConfigurationError(
            f"query_cache_size must be an int from 0 (no cache) to {MAX_QUERY_CACHE_SIZE}, "
            f"got {size!r}"
        )
    return size


class QueryCache(Generic[T]):
    """The last ``size`` values of ``compute`` per ``(model, dimensions, text)``, least recently
    used evicted first. ``hits`` and ``misses`` count lookups (misses are embedding calls made)."""

    def __init__(self, size: int) -> None:
        self.size = check_query_cache_size(size)
        self._values: OrderedDict[tuple[str, int, str], T] = OrderedDict()
        self._pending: dict[tuple[str, int, str], asyncio.Future[T]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._values)

    def clear(self) -> None:
        """Forget every cached value (e.g. after changing what the model returns)."""
        self._values.clear()

    async def get(
        self, model: str, dimensions: int, text: str, compute: Callable[[], Awaitable[T]]
    ) -> T:
        """The cached value for the key, or ``await compute()`` stored under it.

        With size 0 every call computes. A failed ``compute`` caches nothing and its error is
        raised to the callers that waited for it; if the computing caller is cancelled, a waiter
        computes instead.
        """
        if self.size == 0:
            self.misses += 1
            return await compute()
        key = (model, dimensions, text)
        while True:
            if key in self._values:
                self._values.move_to_end(key)
                self.hits += 1
                return self._values[key]
            pending = self._pending.get(key)
            if pending is None:
                break
            try:
                # shield: a waiter's cancellation must not cancel the computing caller's call.
                # The call's error, if any, is every waiter's error.
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this waiter was cancelled
            # The computing caller was cancelled: loop, and compute here unless another waiter
            # got there first.
        self.misses += 1
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            value = await compute()
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            del self._pending[key]
        future.set_result(value)
        self._values[key] = value
        if len(self._values) > self.size:
            self._values.popitem(last=False)
        return value
