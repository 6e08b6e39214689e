"""OpenAIEmbedder through the real openai SDK against a fake OpenAI-compatible server (127.0.0.1)."""

from __future__ import annotations

import logging
import time

import pytest

from sam_db.errors import (
    ConfigurationError,
    DimensionMismatchError,
    EmbeddingError,
    InvalidInputError,
)
from sam_db.memory import MemoryStore, OpenAIEmbedder
from sam_db.testing import HashEmbedder

from .fake_openai import FakeOpenAI

KEY = "sk-test-DO-NOT-LEAK-1234567890"


def _embedder(fake: FakeOpenAI, **kw: object) -> OpenAIEmbedder:
    options: dict[str, object] = {"base_url": fake.base_url, "api_key": KEY, "backoff": 0.01}
    options.update(kw)
    return OpenAIEmbedder(**options)  # type: ignore[arg-type]


async def test_vectors_come_back_in_input_order_with_the_requested_dimensions(
    fake_openai: FakeOpenAI,
) -> None:
    emb = _embedder(fake_openai, dimensions=256)
    vectors = await emb.embed(["a", "b", "c"])
    h = HashEmbedder(256)
    assert vectors == [pytest.approx(h.vector(t), abs=1e-6) for t in "abc"]
    [seen] = fake_openai.requests
    assert (seen.model, seen.dimensions) == ("text-embedding-3-small", 256)
    assert seen.authorization == f"Bearer {KEY}"


async def test_dimensions_are_not_sent_to_models_that_reject_them(
    fake_openai: FakeOpenAI,
) -> None:
    emb = _embedder(fake_openai, model="text-embedding-ada-002")
    await emb.embed(["x"])
    assert fake_openai.requests[0].dimensions is None


async def test_inputs_are_batched_by_count(fake_openai: FakeOpenAI) -> None:
    emb = _embedder(fake_openai, dimensions=8, max_batch=100)
    vectors = await emb.embed([f"t{i}" for i in range(250)])
    assert len(vectors) == 250
    assert sorted(fake_openai.batch_sizes) == [50, 100, 100]
    assert vectors[249] == pytest.approx(HashEmbedder(8).vector("t249"), abs=1e-6)


async def test_no_request_exceeds_2048_inputs(fake_openai: FakeOpenAI) -> None:
    emb = _embedder(fake_openai, dimensions=4)
    await emb.embed([f"n{i}" for i in range(5000)])
    assert max(fake_openai.batch_sizes) <= 2048
    assert sum(fake_openai.batch_sizes) == 5000


async def test_inputs_are_batched_by_token_budget(fake_openai: FakeOpenAI) -> None:
    emb = _embedder(fake_openai, dimensions=4, max_tokens_per_request=1000)
    texts = ["x" * 300] * 10  # 300 tokens each by the UTF-8 byte bound
    await emb.embed(texts)
    # Batches are sent concurrently, so the server may see them in any order.
    assert sorted(fake_openai.batch_sizes, reverse=True) == [3, 3, 3, 1]


async def test_concurrency_is_bounded(fake_openai: FakeOpenAI) -> None:
    emb = _embedder(fake_openai, dimensions=4, max_batch=1, max_concurrency=3)
    fake_openai.delay_next(0.05, times=12)
    await emb.embed([f"c{i}" for i in range(12)])
    assert 1 < fake_openai.max_in_flight <= 3


async def test_429_is_retried_after_the_retry_after_header(fake_openai: FakeOpenAI) -> None:
    emb = _embedder(fake_openai, dimensions=4)
    fake_openai.fail_next(429, headers={"Retry-After": "1"}, message="Rate limit reached")
    start = time.monotonic()
    vectors = await emb.embed(["retry me"])
    assert time.monotonic() - start >= 0.95
    assert len(vectors) == 1
    assert [r.status for r in fake_openai.requests] == [429, 200]


async def test_retry_after_ms_is_honoured(fake_openai: FakeOpenAI) -> None:
    emb = _embedder(fake_openai, dimensions=4)
    fake_openai.fail_next(429, headers={"retry-after-ms": "300"}, times=2)
    start = time.monotonic()
    await emb.embed(["later"])
    assert time.monotonic() - start >= 0.55
    assert emb.requests == 3


async def test_server_errors_are_retried_with_backoff(fake_openai: FakeOpenAI) -> None:
    emb = _embedder(fake_openai, dimensions=4)
    fake_openai.fail_next(500, times=2)
    fake_openai.fail_next(503)
    assert len(await emb.embed(["eventually"])) == 1
    assert [r.status for r in fake_openai.requests] == [500, 500, 503, 200]


async def test_timeouts_are_retried(fake_openai: FakeOpenAI) -> None:
    emb = _embedder(fake_openai, dimensions=4, timeout=0.3)
    fake_openai.delay_next(1.5)
    assert len(await emb.embed(["slow"])) == 1
    assert emb.requests == 2


async def test_giving_up_after_max_retries_raises_embedding_error(
    fake_openai: FakeOpenAI,
) -> None:
    emb = _embedder(fake_openai, dimensions=4, max_retries=2)
    fake_openai.fail_next(500, times=5)
    with pytest.raises(EmbeddingError, match=r"after 3 attempts.*HTTP 500"):
        await emb.embed(["doomed"])
    assert len(fake_openai.requests) == 3


async def test_client_errors_are_not_retried(fake_openai: FakeOpenAI) -> None:
    emb = _embedder(fake_openai, dimensions=4)
    fake_openai.fail_next(400, message="bad request")
    with pytest.raises(EmbeddingError, match="HTTP 400"):
        await emb.embed(["once"])
    assert len(fake_openai.requests) == 1


async def test_the_api_key_never_appears_in_errors_or_logs(
    fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    emb = _embedder(fake_openai, dimensions=4, max_retries=1)
    caplog.set_level(logging.DEBUG)
    fake_openai.fail_next(500, message=f"boom for key {KEY}")
    fake_openai.fail_next(401, message=f"Incorrect API key provided: {KEY}")
    with pytest.raises(EmbeddingError) as info:
        await emb.embed(["secret"])
    assert "DO-NOT-LEAK" not in str(info.value)
    assert "DO-NOT-LEAK" not in caplog.text
    assert "DO-NOT-LEAK" not in repr(emb)


async def test_empty_strings_are_rejected_before_any_request(fake_openai: FakeOpenAI) -> None:
    emb = _embedder(fake_openai, dimensions=4)
    with pytest.raises(InvalidInputError, match="input 1 is an empty string"):
        await emb.embed(["ok", ""])
    assert fake_openai.requests == []


async def test_over_limit_input_is_rejected_with_an_exact_token_counter(
    fake_openai: FakeOpenAI,
) -> None:
    emb = _embedder(fake_openai, dimensions=4, token_counter=lambda t: len(t.split()))
    with pytest.raises(InvalidInputError, match=r"input 0 has 9000 tokens.*8191"):
        await emb.embed(["w " * 9000])
    assert fake_openai.requests == []


async def test_over_limit_input_by_the_byte_bound_is_sent_alone_and_refusal_named(
    fake_openai: FakeOpenAI,
) -> None:
    emb = _embedder(fake_openai, dimensions=4)
    with pytest.raises(EmbeddingError, match=r"input 1 .*maximum context length"):
        await emb.embed(["short", "z" * 40_000])
    long = [r for r in fake_openai.requests if "z" * 100 in r.inputs[0]]
    assert [len(r.inputs) for r in long] == [1]


async def test_long_text_under_the_real_limit_passes(fake_openai: FakeOpenAI) -> None:
    emb = _embedder(fake_openai, dimensions=4)
    # 20,000 bytes is over 8191 by the byte bound but ~5,000 tokens by the server's count.
    assert len(await emb.embed(["abcd" * 5000])) == 1


async def test_wrong_vector_size_from_the_server_is_reported(fake_openai: FakeOpenAI) -> None:
    emb = _embedder(fake_openai, dimensions=8, send_dimensions=False)
    with pytest.raises(DimensionMismatchError, match="1536-dimensional"):
        await emb.embed(["size"])


def test_missing_api_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        OpenAIEmbedder()


async def test_key_is_read_from_the_environment(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    emb = OpenAIEmbedder(dimensions=4, base_url=fake_openai.base_url)
    await emb.embed(["env"])
    assert fake_openai.requests[0].authorization == "Bearer sk-from-env"


async def test_a_given_client_is_used_without_its_own_retries(fake_openai: FakeOpenAI) -> None:
    import openai

    client = openai.AsyncOpenAI(api_key=KEY, base_url=fake_openai.base_url, max_retries=5)
    emb = OpenAIEmbedder(dimensions=4, client=client, max_retries=0)
    fake_openai.fail_next(500)
    with pytest.raises(EmbeddingError):
        await emb.embed(["no sdk retries"])
    assert len(fake_openai.requests) == 1


async def test_memory_store_with_openai_embedder_end_to_end(
    fake_openai: FakeOpenAI, migrated_dsn: str
) -> None:
    emb = _embedder(fake_openai)
    async with MemoryStore(migrated_dsn, emb) as store:
        entries = await store.add_many([f"doc {i}" for i in range(30)])
        fake_openai.fail_next(429, headers={"retry-after-ms": "10"})
        hits = await store.search("doc 3", k=3)
        again = await store.add_many([f"doc {i}" for i in range(30)])
    assert hits[0].entry.id == entries[3].id
    assert [e.id for e in again] == [e.id for e in entries]
    # 30 texts in one request, the query twice (429 then 200); nothing re-embedded.
    assert [len(r.inputs) for r in fake_openai.requests] == [30, 1, 1]
