"""The query-embedding cache: LRU by (model, dimensions, text), shared concurrent misses."""

from __future__ import annotations

import asyncio

import pytest

from sam_db.errors import ConfigurationError
from sam_db.memory._query_cache import MAX_QUERY_CACHE_SIZE, QueryCache


class Calls:
    """A compute function that counts its calls and returns ``text#n``."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.count = 0
        self.delay = delay
        self.fail = fail

    def of(self, text: str):  # type: ignore[no-untyped-def]
        async def compute() -> str:
            self.count += 1
            n = self.count
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.fail:
                raise RuntimeError(f"embedding {text} failed")
            return f"{text}#{n}"

        return compute


async def test_a_repeated_query_skips_the_call() -> None:
    cache: QueryCache[str] = QueryCache(8)
    calls = Calls()
    assert await cache.get("m", 4, "q", calls.of("q")) == "q#1"
    assert await cache.get("m", 4, "q", calls.of("q")) == "q#1"
    assert (calls.count, cache.hits, cache.misses) == (1, 1, 1)


async def test_another_model_or_size_or_text_is_another_key() -> None:
    cache: QueryCache[str] = QueryCache(8)
    calls = Calls()
    await cache.get("m", 4, "q", calls.of("q"))
    await cache.get("other", 4, "q", calls.of("q"))
    await cache.get("m", 8, "q", calls.of("q"))
    await cache.get("m", 4, "q2", calls.of("q2"))
    assert calls.count == 4 and len(cache) == 4


async def test_the_least_recently_used_query_is_evicted() -> None:
    cache: QueryCache[str] = QueryCache(2)
    calls = Calls()
    for text in ("a", "b", "a", "c"):  # "a" used again, so "b" is the oldest when "c" comes
        await cache.get("m", 4, text, calls.of(text))
    assert calls.count == 3
    await cache.get("m", 4, "a", calls.of("a"))
    assert calls.count == 3
    await cache.get("m", 4, "b", calls.of("b"))
    assert calls.count == 4 and len(cache) == 2


async def test_size_zero_caches_nothing() -> None:
    cache: QueryCache[str] = QueryCache(0)
    calls = Calls()
    await cache.get("m", 4, "q", calls.of("q"))
    await cache.get("m", 4, "q", calls.of("q"))
    assert calls.count == 2 and len(cache) == 0


async def test_a_failed_call_is_not_cached() -> None:
    cache: QueryCache[str] = QueryCache(8)
    failing = Calls(fail=True)
    with pytest.raises(RuntimeError):
        await cache.get("m", 4, "q", failing.of("q"))
    calls = Calls()
    assert await cache.get("m", 4, "q", calls.of("q")) == "q#1"


async def test_concurrent_misses_of_one_query_share_one_call() -> None:
    cache: QueryCache[str] = QueryCache(8)
    calls = Calls(delay=0.05)
    got = await asyncio.gather(*(cache.get("m", 4, "q", calls.of("q")) for _ in range(5)))
    assert got == ["q#1"] * 5 and calls.count == 1


async def test_waiters_get_the_error_of_the_shared_call() -> None:
    cache: QueryCache[str] = QueryCache(8)
    calls = Calls(delay=0.05, fail=True)
    results = await asyncio.gather(
        *(cache.get("m", 4, "q", calls.of("q")) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results) and calls.count == 1


async def test_a_waiter_computes_when_the_computing_caller_is_cancelled() -> None:
    cache: QueryCache[str] = QueryCache(8)
    calls = Calls(delay=0.1)
    first = asyncio.create_task(cache.get("m", 4, "q", calls.of("q")))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(cache.get("m", 4, "q", calls.of("q")))
    await asyncio.sleep(0.01)
    first.cancel()
    assert await second == "q#2"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_cancelled_waiter_does_not_cancel_the_call() -> None:
    cache: QueryCache[str] = QueryCache(8)
    calls = Calls(delay=0.1)
    first = asyncio.create_task(cache.get("m", 4, "q", calls.of("q")))
    await asyncio.sleep(0.01)
    waiter = asyncio.create_task(cache.get("m", 4, "q", calls.of("q")))
    await asyncio.sleep(0.01)
    waiter.cancel()
    assert await first == "q#1"
    assert calls.count == 1


@pytest.mark.parametrize("bad", [-1, MAX_QUERY_CACHE_SIZE + 1, 1.5, True, "10", None])
def test_a_bad_size_is_a_configuration_error(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="query_cache_size"):
        QueryCache(bad)  # type: ignore[arg-type]
