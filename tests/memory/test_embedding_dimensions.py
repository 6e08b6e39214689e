"""Any embedding size: ``sam-db new --memory-dimensions N [--half]`` /
``sam_db.memory_dimensions_migration`` and a MemoryStore on ``vector(N)`` and ``halfvec(N)``.

Real PostgreSQL + pgvector: the generated migration is applied, used and rolled back.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

import sam_db
from sam_db.cli import EXIT_ERROR, main
from sam_db.errors import (
    ConfigurationError,
    DimensionMismatchError,
    InvalidInputError,
    MigrationError,
    SamDbError,
)
from sam_db.memory import MemoryStore
from sam_db.testing import HashEmbedder


async def _column_type(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        found: str = await conn.fetchval(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'memory_entries'::regclass AND attname = 'embedding'"
        )
        return found
    finally:
        await conn.close()


async def _fetch(dsn: str, sql: str) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def _use(dsn: str, dimensions: int) -> None:
    """add, add_many, search (index, exact, hybrid, MMR), search_by_vector, explain_search and
    keyed upserts."""
    embedder = HashEmbedder(dimensions)
    async with MemoryStore(dsn, embedder) as store:
        first = await store.add("the raw_decode method of json.JSONDecoder")
        await store.add_many([f"note number {i} about decoding" for i in range(30)])
        hits = await store.search("the raw_decode method of json.JSONDecoder", k=3)
        assert hits[0].entry.id == first.id and hits[0].similarity == pytest.approx(1, abs=1e-3)
        exact = await store.search("the raw_decode method of json.JSONDecoder", k=3, exact=True)
        assert exact[0].entry.id == first.id
        query = "the raw_decode method of json.JSONDecoder"
        hybrid = await store.search(query, k=3, mode="hybrid")
        assert hybrid[0].entry.id == first.id and hybrid[0].vector_rank == 1
        vector = (await embedder.embed(["note number 7 about decoding"]))[0]
        by_vector = await store.search_by_vector(vector, k=1)
        assert by_vector[0].entry.content == "note number 7 about decoding"
        kind = "halfvec" if store._opened().half else "vector"
        plan = await store.explain_search("anything", k=3)
        assert f"memory_search_vector('[...]'::{kind})" in plan, plan
        for mode in ("vector", "hybrid"):
            diverse = await store.search(query, k=5, mode=mode, mmr_lambda=0.5, fetch_k=20)
            assert len(diverse) == 5 and diverse[0].entry.id == first.id, mode
        keyed = await store.add("a keyed memory", key="doc-1")
        again = await store.add("a keyed memory, changed", key="doc-1")
        assert again.id == keyed.id and await store.get_by_key("doc-1") == again
        assert await _fetch(dsn, "SELECT count(*) FROM memory_entries") == 32
    assert await _index_serves_the_search(dsn), f"no HNSW index scan on {kind}"


# The query vector is a stored one, of the column's type: the helper for that type must exist.
_INDEXED_SEARCH = (
    "EXPLAIN SELECT id FROM memory_entries ORDER BY embedding <=> memory_search_vector("
    "(SELECT embedding FROM memory_entries LIMIT 1)) LIMIT 3"
)


async def _index_serves_the_search(dsn: str) -> bool:
    """The rebuilt index serves the store's ORDER BY (its operator class matches the type); a
    30-row table is too small for the planner to prefer it, so sequential scans are off."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL enable_seqscan = off")
            plan = "\n".join(r[0] for r in await conn.fetch(_INDEXED_SEARCH))
    finally:
        await conn.close()
    return "Index Scan using memory_entries_embedding_hnsw_idx" in plan


SIZES = [(384, False, "vector(384)"), (1536, True, "halfvec(1536)"), (3072, True, "halfvec(3072)")]


@pytest.mark.parametrize(("dimensions", "half", "column"), SIZES)
async def test_generated_migration_makes_the_store_work_at_that_size_and_rolls_back(
    db_dsn: str, tmp_path: Path, dimensions: int, half: bool, column: str
) -> None:
    folder = tmp_path / "migrations"
    forward, _ = sam_db.memory_dimensions_migration(dimensions, half=half, folder=folder)
    assert forward.name == f"006_memory_embedding_{column.split('(')[0]}_{dimensions}.sql"
    await sam_db.migrate(db_dsn, sources=[folder])
    assert await _column_type(db_dsn) == column
    await _use(db_dsn, dimensions)
    if dimensions != 1536:  # entries of the new size cannot go back to vector(1536)
        await _fetch(db_dsn, "DELETE FROM memory_entries")
    await sam_db.rollback(db_dsn, sources=[folder])
    assert await _column_type(db_dsn) == "vector(1536)"
    await _use(db_dsn, 1536)


async def test_migration_refuses_while_entries_of_another_size_exist(
    migrated_dsn: str, tmp_path: Path
) -> None:
    async with MemoryStore(migrated_dsn, HashEmbedder()) as store:
        await store.add("a 1536-dimensional memory")
    folder = tmp_path / "migrations"
    sam_db.memory_dimensions_migration(384, folder=folder)
    with pytest.raises(MigrationError) as caught:
        await sam_db.migrate(migrated_dsn, sources=[folder])
    text = str(caught.value)
    assert "holds 1 entries of 1536 dimensions" in text
    assert "embed their texts again" in text  # the RAISE's hint reaches the error
    assert await _column_type(migrated_dsn) == "vector(1536)"


async def test_rollback_refuses_while_entries_of_the_new_size_exist(
    db_dsn: str, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    sam_db.memory_dimensions_migration(384, folder=folder)
    await sam_db.migrate(db_dsn, sources=[folder])
    async with MemoryStore(db_dsn, HashEmbedder(384)) as store:
        await store.add("a 384-dimensional memory")
    with pytest.raises(MigrationError, match="entries of 384 dimensions"):
        await sam_db.rollback(db_dsn, sources=[folder])
    assert await _column_type(db_dsn) == "vector(384)"


async def test_halfvec_column_keeps_existing_entries_of_the_same_size(
    migrated_dsn: str, tmp_path: Path
) -> None:
    async with MemoryStore(migrated_dsn, HashEmbedder()) as store:
        kept = await store.add("stored as vector, read as halfvec")
    folder = tmp_path / "migrations"
    sam_db.memory_dimensions_migration(1536, half=True, folder=folder)
    await sam_db.migrate(migrated_dsn, sources=[folder])
    async with MemoryStore(migrated_dsn, HashEmbedder()) as store:
        hits = await store.search("stored as vector, read as halfvec", k=1)
    assert hits[0].entry.id == kept.id and hits[0].similarity == pytest.approx(1, abs=1e-3)


async def test_rollback_restores_the_type_of_the_previous_generated_migration(
    db_dsn: str, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    sam_db.memory_dimensions_migration(3072, half=True, folder=folder)
    second, _ = sam_db.memory_dimensions_migration(384, folder=folder)
    assert second.name.startswith("007_")
    await sam_db.migrate(db_dsn, sources=[folder])
    assert await _column_type(db_dsn) == "vector(384)"
    await sam_db.rollback(db_dsn, sources=[folder])
    assert await _column_type(db_dsn) == "halfvec(3072)"


async def test_migration_refuses_a_column_changed_outside_the_migrations(
    migrated_dsn: str, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(migrated_dsn)
    try:
        await conn.execute("ALTER TABLE memory_entries ALTER COLUMN embedding TYPE vector(768)")
    finally:
        await conn.close()
    folder = tmp_path / "migrations"
    sam_db.memory_dimensions_migration(384, folder=folder)
    with pytest.raises(MigrationError, match=r"is vector\(768\), this migration expects"):
        await sam_db.migrate(migrated_dsn, sources=[folder])


async def test_store_of_another_size_names_both_sizes_and_the_command(migrated_dsn: str) -> None:
    with pytest.raises(DimensionMismatchError) as caught:
        await MemoryStore(migrated_dsn, HashEmbedder(3072)).open()
    text = str(caught.value)
    assert "3072-dimensional" in text and "vector(1536)" in text
    assert "sam-db new --memory-dimensions 3072 --half" in text


async def test_store_on_halfvec_names_the_column_type_on_a_mismatch(
    db_dsn: str, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    sam_db.memory_dimensions_migration(3072, half=True, folder=folder)
    await sam_db.migrate(db_dsn, sources=[folder])
    with pytest.raises(DimensionMismatchError, match=r"halfvec\(3072\).*--memory-dimensions 1536"):
        await MemoryStore(db_dsn, HashEmbedder()).open()


async def test_halfvec_store_refuses_a_value_beyond_float16_range(
    db_dsn: str, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    sam_db.memory_dimensions_migration(384, half=True, folder=folder)
    await sam_db.migrate(db_dsn, sources=[folder])
    async with MemoryStore(db_dsn, HashEmbedder(384)) as store:
        with pytest.raises(InvalidInputError, match="beyond halfvec's range"):
            await store.search_by_vector([70000.0] + [0.5] * 383)


@pytest.mark.parametrize(
    ("dimensions", "half", "limit"),
    [(2001, False, "at most 2000"), (4001, True, "at most 4000"), (0, False, "positive int")],
)
def test_size_beyond_what_the_index_takes_is_refused(
    tmp_path: Path, dimensions: int, half: bool, limit: str
) -> None:
    with pytest.raises(ConfigurationError, match=limit):
        sam_db.memory_dimensions_migration(dimensions, half=half, folder=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_current_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"already vector\(1536\)"):
        sam_db.memory_dimensions_migration(1536, folder=tmp_path)


def test_cli_writes_into_the_first_configured_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.sam_db]\nsources = ["db/one", "db/two"]\n')
    (tmp_path / "db" / "one").mkdir(parents=True)
    (tmp_path / "db" / "two").mkdir()
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("SAM_DB_")]:
        monkeypatch.delenv(name)
    assert main(["new", "--memory-dimensions", "3072", "--half"]) == 0
    names = sorted(p.name for p in (tmp_path / "db" / "one").iterdir())
    assert names == [
        "006_memory_embedding_halfvec_3072.rollback.sql",
        "006_memory_embedding_halfvec_3072.sql",
    ]
    assert "created" in capsys.readouterr().out


def test_cli_new_without_a_name_or_dimensions_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new", "--dir", str(tmp_path)]) == EXIT_ERROR
    assert "--memory-dimensions" in capsys.readouterr().err


def test_generated_files_pass_sam_db_lint(tmp_path: Path) -> None:
    from sam_db._lint import squawk_binary

    try:
        squawk_binary()
    except SamDbError:
        pytest.skip("the squawk program (squawk-cli, extra 'lint') is not installed")
    folder = tmp_path / "migrations"
    forward, back = sam_db.memory_dimensions_migration(3072, half=True, folder=folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAM_DB_", "DATABASE_URL"))}
    proc = subprocess.run(
        [sys.executable, "-m", "sam_db", "lint", str(forward), str(back)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


async def test_a_query_cached_before_a_migration_to_halfvec_is_packed_anew_after_it(
    migrated_dsn: str, tmp_path: Path
) -> None:
    store = MemoryStore(migrated_dsn, HashEmbedder(), query_cache_size=8)
    async with store:
        kept = await store.add("cached as a vector query")
        await store.search("cached as a vector query", k=1)
    folder = tmp_path / "migrations"
    sam_db.memory_dimensions_migration(1536, half=True, folder=folder)
    await sam_db.migrate(migrated_dsn, sources=[folder])
    async with store:  # the same store, reopened on the halfvec column, its cache kept
        hits = await store.search("cached as a vector query", k=1)
    assert hits[0].entry.id == kept.id and hits[0].similarity == pytest.approx(1, abs=1e-3)
