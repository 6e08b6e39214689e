"""A malformed answer from an OpenAI-compatible server is an EmbeddingError, not a builtin error."""

from __future__ import annotations

import pytest

from sam_db.errors import EmbeddingError
from sam_db.memory import OpenAIEmbedder

from .fake_openai import FakeOpenAI

KEY = "sk-test-malformed-0123456789"


async def test_a_malformed_success_response_is_an_embedding_error(fake_openai: FakeOpenAI) -> None:
    embedder = OpenAIEmbedder(base_url=fake_openai.base_url, api_key=KEY, max_retries=0)
    fake_openai.fail_next(200, message="not an embeddings list")  # HTTP 200, an error body
    with pytest.raises(EmbeddingError, match="malformed") as info:
        await embedder.embed(["hello"])
    chain = [info.value, info.value.__cause__, info.value.__context__]
    assert all(KEY not in repr(e) for e in chain)
    assert len(await embedder.embed(["hello"])) == 1  # the next answer is fine
