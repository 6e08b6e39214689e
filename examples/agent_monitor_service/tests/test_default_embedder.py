"""The service as deployed: no embedder passed, so OpenAI's, configured from the environment."""

from __future__ import annotations

import httpx
import pytest
from loopback_openai import LoopbackOpenAI
from service import create_app


async def test_the_default_embedder_is_openais_configured_from_the_environment(
    sam_db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackOpenAI() as openai:
        monkeypatch.setenv("OPENAI_BASE_URL", openai.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
        monkeypatch.setenv("DATABASE_URL", sam_db_dsn)  # the service's own database
        app = create_app()
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
                text = "The deploy failed because the DB was read-only"
                assert (await http.post("/remember", json={"text": text})).status_code == 201
                hits = (await http.post("/recall", json={"query": text, "k": 1})).json()
        assert [h["content"] for h in hits] == [text]
        assert openai.texts and set(openai.texts) == {text}  # every embedding came from it
