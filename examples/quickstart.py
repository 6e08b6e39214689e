"""sam_db end to end on the embedded PostgreSQL: migrate, remember, recall.

    pip install 'sam-db[embedded,openai]'
    OPENAI_API_KEY=sk-... python examples/quickstart.py

Without ``OPENAI_API_KEY`` it uses a local model instead (``pip install sentence-transformers``:
all-MiniLM-L6-v2, no key, no network once downloaded). The database lives in ``.sam_db/`` at the
project root (the folder of your pyproject.toml), like the ``sam-db`` command's: run
``sam-db psql`` afterwards to look at the tables.
"""

from __future__ import annotations

import asyncio
import os
import sys

import sam_db
from sam_db import Embedder, MemoryStore

MEMORIES = [
    ("The deploy failed because the DB was read-only", {"kind": "incident"}),
    ("Rolling back release 4.2 fixed the checkout latency", {"kind": "incident"}),
    ("Sessions of the billing agent average 42 events", {"kind": "metric"}),
]


def local_embedder() -> Embedder:
    """all-MiniLM-L6-v2 (384-d), zero-padded to the store's 1536 dimensions.

    Padding with zeros changes no cosine similarity, so the bundled ``vector(1536)`` column takes
    a smaller local model as it is.
    """
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer("all-MiniLM-L6-v2")
    pad = [0.0] * (1536 - 384)

    def embed(texts: list[str]) -> list[list[float]]:
        return [[*v, *pad] for v in model.encode(list(texts)).tolist()]

    return sam_db.embedder_from_function(embed, dimensions=1536, model="all-MiniLM-L6-v2")


def choose_embedder() -> Embedder:
    if os.environ.get("OPENAI_API_KEY"):
        return sam_db.OpenAIEmbedder()  # reads OPENAI_API_KEY (and OPENAI_BASE_URL)
    try:
        return local_embedder()
    except ImportError:
        sys.exit("set OPENAI_API_KEY, or pip install sentence-transformers for a local model")


async def main() -> None:
    embedder = choose_embedder()
    async with sam_db.embedded.server() as srv:  # started here, or the running `sam-db serve`
        applied = await sam_db.migrate(srv.dsn)
        print(f"migrated: {len(applied)} applied, database {srv.database}")
        async with MemoryStore(srv.dsn, embedder=embedder) as store:
            for content, metadata in MEMORIES:
                await store.add(content, metadata=metadata)
            hits = await store.search("why did the deploy fail?", k=5, filter={"kind": "incident"})
            for hit in hits:
                print(round(hit.similarity, 3), hit.entry.content)


if __name__ == "__main__":
    asyncio.run(main())
