"""sam_db installs beside langchain-postgres, and both work in one process on one database.

langchain-postgres (0.0.19) requires ``pgvector<0.4`` (pgvector-python), so ``pip install sam-db
langchain-postgres`` gives sam_db pgvector-python 0.3.x. The test runs that install in a fresh venv
(with uv when the dev extra installed it, else pip; PyPI needed: skipped with the reason when it is
unreachable outside CI), then one script that migrates a fresh database with sam_db, stores and
searches with MemoryStore, and stores and searches with langchain-postgres's ``PGVector`` in the
same database and process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = r"""
import asyncio, hashlib, json, sys
from importlib.metadata import version

from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_postgres import PGVector

from sam_db import MemoryStore, embedder_from_function, migrate

dsn = sys.argv[1]


def embed(texts):
    out = []
    for text in texts:
        raw = hashlib.shake_256(text.encode()).digest(4 * 1536)
        out.append([b / 255.0 - 0.5 for b in raw[::4]])
    return out


async def sam_db_side():
    await migrate(dsn)
    embedder = embedder_from_function(embed, dimensions=1536, model="shake")
    async with MemoryStore(dsn, embedder) as store:
        await store.add_many(["the deploy failed", "the cache is warm", "tea is hot"])
        hits = await store.search("the cache is warm", k=2)
    return [h.entry.content for h in hits]


sam_hits = asyncio.run(sam_db_side())

# SQLAlchemy + psycopg 3 on the same database (the DSN's unix-socket host carries over).
connection = "postgresql+psycopg://" + dsn.split("://", 1)[1]
lc = PGVector(
    embeddings=DeterministicFakeEmbedding(size=16),
    collection_name="docs",
    connection=connection,
)
lc.add_texts(["alpha", "beta", "gamma"])
lc_hits = [d.page_content for d in lc.similarity_search("beta", k=1)]

print(json.dumps({
    "sam_db": sam_hits,
    "langchain": lc_hits,
    "versions": {p: version(p) for p in ("pgvector", "langchain-postgres", "asyncpg", "pydantic")},
}))
"""


def _pypi_reachable() -> str | None:
    """None when PyPI answers, else why not."""
    try:
        urllib.request.urlopen("https://pypi.org/simple/langchain-postgres/", timeout=15).close()
    except (urllib.error.URLError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _uv() -> str | None:
    """uv (dev extra) resolves like pip, an order of magnitude faster."""
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.exists() else shutil.which("uv")


def _fresh_venv(path: Path) -> str:
    uv = _uv()
    if uv is not None:
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(path)], check=True)
    else:
        venv.EnvBuilder(with_pip=True).create(path)
    return str(path / "bin" / "python")


def _installer(python: str) -> list[str]:
    """The command that installs into the venv of ``python``: ``uv pip install`` or pip."""
    uv = _uv()
    if uv is not None:
        return [uv, "pip", "install", "-q", "--python", python]
    return [python, "-m", "pip", "install", "-q"]


@pytest.mark.slow
@pytest.mark.versions
def test_sam_db_and_langchain_postgres_install_together_and_share_a_database(
    db_dsn: str, tmp_path: Path
) -> None:
    problem = _pypi_reachable()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"PyPI is unreachable in CI ({problem})")
        pytest.skip(f"needs PyPI to install langchain-postgres; unreachable here ({problem})")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    python = _fresh_venv(tmp_path / "venv")
    install = subprocess.run(
        [*_installer(python), str(ROOT), "langchain-postgres"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert install.returncode == 0, install.stdout + install.stderr

    run = subprocess.run(
        [python, "-c", SCRIPT, db_dsn],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    print(result["versions"], file=sys.stderr)
    assert result["sam_db"][0] == "the cache is warm"
    assert len(result["sam_db"]) == 2
    assert result["langchain"] == ["beta"]
