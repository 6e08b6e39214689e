"""The plugin's server: never ``DATABASE_URL``; on ``SAM_DB_TEST_DSN`` only what it created.

A developer's shell often has ``DATABASE_URL`` pointing at their own database; the plugin creates
and drops databases and schemas, so only the explicit ``SAM_DB_TEST_DSN`` may point it elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import pytest

from sam_db._ident import quote_ident
from sam_db.testing._server import with_database

INNER_SUITE = """
import json, os

import asyncpg
import pytest

RECORD = os.environ["RECORD"]


def record(kind, name):
    with open(RECORD, "a") as f:
        f.write(json.dumps({"kind": kind, "name": name}) + "\\n")


def test_dsn(sam_db_dsn):
    record("database", sam_db_dsn.rsplit("/", 1)[1].split("?")[0])


def test_schema(sam_db_schema):
    record("schema", sam_db_schema.schema)


@pytest.mark.asyncio
async def test_tx(sam_db_tx):
    record("database", await sam_db_tx.fetchval("SELECT current_database()"))
    await sam_db_tx.execute("INSERT INTO workflows (id, name) VALUES ('w', 'w')")


@pytest.mark.asyncio
async def test_store(memory_store, sam_db_pool):
    await memory_store.add("a note")
    record("database", await sam_db_pool.fetchval("SELECT current_database()"))
"""


async def _fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def _execute(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


def _databases(dsn: str) -> set[str]:
    rows = asyncio.run(_fetch(dsn, "SELECT datname FROM pg_database"))
    return {r["datname"] for r in rows}


def _relations_outside_plugin_schemas(dsn: str) -> set[tuple[str, str]]:
    """Every table, index, view and sequence of ``dsn``'s database but the plugin's schemas."""
    rows = asyncio.run(
        _fetch(
            dsn,
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' "
            "AND n.nspname NOT LIKE 'sam\\_db\\_s\\_%'",
        )
    )
    return {(r["nspname"], r["relname"]) for r in rows}


@pytest.mark.slow
def test_database_url_is_never_used(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, no_server_env: None
) -> None:
    # A server that does not exist: a plugin that read DATABASE_URL would fail to connect.
    monkeypatch.setenv("DATABASE_URL", "postgresql://someone:secret@127.0.0.1:1/their_own_db")
    pytester.makepyfile(
        """
        def test_uses_an_embedded_server(sam_db_server, sam_db_dsn):
            assert "their_own_db" not in sam_db_server
            assert "127.0.0.1:1/" not in sam_db_dsn
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*DATABASE_URL is ignored*SAM_DB_TEST_DSN*"])


def test_existing_server_keeps_what_the_plugin_did_not_create(
    pytester: pytest.Pytester, shared_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On ``SAM_DB_TEST_DSN`` the plugin creates, and drops, only its own databases and schemas."""
    suffix = uuid.uuid4().hex[:12]
    their_db, their_schema = f"their_app_{suffix}", f"their_schema_{suffix}"
    their_dsn = with_database(shared_server, their_db)
    asyncio.run(
        _execute(
            shared_server,
            f"CREATE DATABASE {quote_ident(their_db)}",
            f"CREATE SCHEMA {quote_ident(their_schema)}",
            f"CREATE TABLE {quote_ident(their_schema)}.notes (body text)",
            f"INSERT INTO {quote_ident(their_schema)}.notes VALUES ('keep me')",  # noqa: S608
        )
    )
    try:
        asyncio.run(
            _execute(
                their_dsn,
                "CREATE TABLE workflows (id text PRIMARY KEY, name text)",
                "INSERT INTO workflows VALUES ('mine', 'my own workflow')",
            )
        )
        databases_before = _databases(shared_server)
        relations_before = _relations_outside_plugin_schemas(shared_server)

        record = pytester.path / "record.jsonl"
        monkeypatch.setenv("RECORD", str(record))
        pytester.makepyfile(INNER_SUITE)
        pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=4)

        created = [json.loads(line) for line in record.read_text().splitlines()]
        assert {c["kind"] for c in created} == {"database", "schema"}
        assert all(c["name"].startswith("sam_db_") for c in created)  # named as its own
        databases_after = _databases(shared_server)
        # Its databases and schemas are gone at the end of the session ...
        assert not {c["name"] for c in created if c["kind"] == "database"} & databases_after
        schemas = asyncio.run(_fetch(shared_server, "SELECT nspname FROM pg_namespace"))
        assert not {c["name"] for c in created if c["kind"] == "schema"} & {
            r["nspname"] for r in schemas
        }
        # ... and nothing else changed: no database of anyone else's dropped, their rows intact.
        others = {d for d in databases_before if not d.startswith("sam_db_")}
        assert others <= databases_after
        assert _relations_outside_plugin_schemas(shared_server) == relations_before
        kept = asyncio.run(
            _fetch(
                shared_server,
                f"SELECT body FROM {quote_ident(their_schema)}.notes",  # noqa: S608
            )
        )
        assert [r["body"] for r in kept] == ["keep me"]
        rows = asyncio.run(_fetch(their_dsn, "SELECT id, name FROM workflows"))
        assert [tuple(r) for r in rows] == [("mine", "my own workflow")]
        tables = asyncio.run(
            _fetch(
                their_dsn,
                "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace",
            )
        )
        assert sorted(r["relname"] for r in tables) == ["workflows", "workflows_pkey"]
    finally:
        asyncio.run(
            _execute(
                shared_server,
                f"DROP DATABASE IF EXISTS {quote_ident(their_db)} WITH (FORCE)",
                f"DROP SCHEMA IF EXISTS {quote_ident(their_schema)} CASCADE",
            )
        )


def test_a_key_value_dsn_names_the_variable_to_fix() -> None:
    from sam_db.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="SAM_DB_TEST_DSN") as caught:
        with_database("host=localhost dbname=x", "y")
    assert "DATABASE_URL" not in str(caught.value)


TEMPLATE_RECORDER = """
import json, os

def test_record_template(_sam_db_runtime, sam_db_dsn):
    with open(os.environ["RECORD"], "a") as f:
        f.write(json.dumps(_sam_db_runtime.template().name) + "\\n")
"""


def _run_with_own_template(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> str:
    """One inner session whose template nobody else uses (a schema of its own); its name."""
    record = pytester.path / "record.jsonl"
    monkeypatch.setenv("RECORD", str(record))
    pytester.makepyfile(TEMPLATE_RECORDER)
    schema = f"svc_{uuid.uuid4().hex[:8]}"
    pytester.runpytest("-p", "no:cacheprovider", f"--sam-db-schema={schema}").assert_outcomes(
        passed=1
    )
    name: str = json.loads(record.read_text().splitlines()[-1])
    return name


def test_its_template_is_dropped_at_the_end_of_the_session(
    pytester: pytest.Pytester, shared_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = _run_with_own_template(pytester, monkeypatch)
    assert template.startswith("sam_db_tpl_")
    assert template not in _databases(shared_server)


def test_sam_db_keep_template_keeps_it_for_the_next_session(
    pytester: pytest.Pytester, shared_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nsam_db_keep_template = true\n"
    )
    template = _run_with_own_template(pytester, monkeypatch)
    try:
        assert template in _databases(shared_server)
    finally:
        asyncio.run(
            _execute(
                shared_server,
                f"ALTER DATABASE {quote_ident(template)} WITH IS_TEMPLATE false",
                f"DROP DATABASE IF EXISTS {quote_ident(template)} WITH (FORCE)",
            )
        )


def test_a_template_another_session_uses_is_left_to_it(
    pytester: pytest.Pytester, shared_server: str, _sam_db_runtime: Any
) -> None:
    """An inner session sharing this session's template does not drop it from under us."""
    ours = _sam_db_runtime.template().name
    pytester.makepyfile("def test_uses_it(sam_db_dsn):\n    pass\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert ours in _databases(shared_server)
