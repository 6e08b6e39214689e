"""The template database: built once, reused across sessions, rebuilt when a migration changes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import pytest

RECORDER = """
import json, os

def test_record_template(_sam_db_runtime, sam_db_dsn):
    t = _sam_db_runtime.template()
    with open(os.environ["RECORD"], "a") as f:
        f.write(json.dumps({"name": t.name, "rebuilt": t.rebuilt}) + "\\n")
"""


def _templates(dsn: str) -> list[str]:
    async def go() -> list[str]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE 'sam\\_db\\_tpl\\_%'"
            )
            return [r["datname"] for r in rows]
        finally:
            await conn.close()

    return asyncio.run(go())


def _runs(record: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in record.read_text().splitlines()]


def test_changed_migration_file_rebuilds_the_template(
    pytester: pytest.Pytester, shared_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = pytester.path / "record.jsonl"
    monkeypatch.setenv("RECORD", str(record))
    # On a SAM_DB_TEST_DSN server a session drops its template at the end unless told to keep it.
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nsam_db_keep_template = true\n"
    )
    mig = pytester.mkdir("migrations")
    migration = mig / "100_service.sql"
    migration.write_text("CREATE TABLE service_a (id int);\n")
    pytester.makepyfile(RECORDER)

    pytester.runpytest("--sam-db-sources=migrations").assert_outcomes(passed=1)
    pytester.runpytest("--sam-db-sources=migrations").assert_outcomes(passed=1)
    migration.write_text("CREATE TABLE service_b (id int);\n")
    pytester.runpytest("--sam-db-sources=migrations").assert_outcomes(passed=1)

    first, second, third = _runs(record)
    assert second == {"name": first["name"], "rebuilt": False}  # reused by the next session
    assert third["rebuilt"] is True and third["name"] != first["name"]
    templates = _templates(shared_server)
    assert third["name"] in templates
    assert first["name"] not in templates  # the stale template was dropped


def test_schema_option_gets_its_own_template(
    pytester: pytest.Pytester, shared_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = pytester.path / "record.jsonl"
    monkeypatch.setenv("RECORD", str(record))
    pytester.makepyfile(RECORDER)
    pytester.runpytest("--sam-db-schema=one").assert_outcomes(passed=1)
    pytester.runpytest("--sam-db-schema=two").assert_outcomes(passed=1)
    one, two = _runs(record)
    assert one["name"] != two["name"]
