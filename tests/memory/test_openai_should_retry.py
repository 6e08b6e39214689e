"""OpenAIEmbedder honours the server's ``x-should-retry`` header over its own status rules.

OpenAI sends ``x-should-retry: true|false`` when it knows better than the status code (the SDK
follows it too); the embedder keeps its own retry loop (see memory/_openai.py) and follows it.
"""

from __future__ import annotations

import pytest

from sam_db.errors import EmbeddingError
from sam_db.memory import OpenAIEmbedder

from .fake_openai import FakeOpenAI


def _embedder(fake: FakeOpenAI) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        dimensions=4, base_url=fake.base_url, api_key="sk-test-placeholder", backoff=0.01
    )


async def test_should_retry_true_retries_a_status_that_is_otherwise_final(
    fake_openai: FakeOpenAI,
) -> None:
    emb = _embedder(fake_openai)
    fake_openai.fail_next(400, should_retry=True)
    assert len(await emb.embed(["retry me"])) == 1
    assert [r.status for r in fake_openai.requests] == [400, 200]


async def test_should_retry_false_stops_retries_of_a_retryable_status(
    fake_openai: FakeOpenAI,
) -> None:
    emb = _embedder(fake_openai)
    fake_openai.fail_next(503, should_retry=False, times=3)
    with pytest.raises(EmbeddingError, match="HTTP 503") as caught:
        await emb.embed(["do not retry"])
    assert len(fake_openai.requests) == 1
    assert "attempts" not in str(caught.value)


async def test_should_retry_false_on_a_rate_limit_is_final(fake_openai: FakeOpenAI) -> None:
    emb = _embedder(fake_openai)
    fake_openai.fail_next(429, should_retry=False, headers={"retry-after-ms": "10"}, times=3)
    with pytest.raises(EmbeddingError, match="HTTP 429"):
        await emb.embed(["quota exhausted"])
    assert len(fake_openai.requests) == 1
