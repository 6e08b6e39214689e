"""Each fixture in a small example suite, run by pytester against the shared server."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("shared_server")

QUERY = """
import asyncio
import asyncpg


def fetchval(dsn, sql):
    async def go():
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(go())
"""


def test_plain_suite_with_pytest_asyncio_strict(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        QUERY.replace("def fetchval", "def _fetchval")
        + "\nimport pytest\nfetchval = pytest.fixture(lambda: _fetchval)\n"
    )
    pytester.makepyfile(
        """
        import time

        import asyncpg
        import pytest
        from sam_db.testing import HashEmbedder
        from sam_db.testing import MigratedSchema

        SEEN = []

        def test_sync_test_gets_a_migrated_database(sam_db_dsn, fetchval):
            SEEN.append(sam_db_dsn)
            assert fetchval(sam_db_dsn, "SELECT count(*) FROM schema_migrations") == 5
            assert fetchval(sam_db_dsn, "SELECT to_regclass('memory_entries') IS NOT NULL")

        def test_each_test_gets_its_own_database(sam_db_dsn, fetchval):
            assert SEEN and sam_db_dsn != SEEN[0]
            name = SEEN[0].rsplit("/", 1)[1].split("?")[0]
            # The previous test's database is dropped in the background: give it a moment.
            sql = f"SELECT count(*) FROM pg_database WHERE datname = '{name}'"
            for _ in range(100):
                if fetchval(sam_db_dsn, sql) == 0:
                    break
                time.sleep(0.05)
            assert fetchval(sam_db_dsn, sql) == 0

        @pytest.mark.asyncio
        async def test_async_test_uses_the_sync_dsn_fixture(sam_db_dsn):
            conn = await asyncpg.connect(sam_db_dsn)
            try:
                assert await conn.fetchval("SELECT count(*) FROM memory_collections") == 0
            finally:
                await conn.close()

        def test_schema_fixture_is_a_migrated_schema(sam_db_schema, fetchval):
            assert isinstance(sam_db_schema, MigratedSchema) and isinstance(sam_db_schema, str)
            assert sam_db_schema == sam_db_schema.schema  # the value is the schema name
            sql = f'SELECT count(*) FROM "{sam_db_schema}".schema_migrations'
            assert fetchval(sam_db_schema.dsn, sql) == 5

        @pytest.mark.asyncio
        async def test_pool_has_the_vector_codec(sam_db_pool):
            value = await sam_db_pool.fetchval("SELECT '[1,2,3]'::vector")
            # pgvector-python < 0.5 decodes to a numpy array, 0.5+ to pgvector.Vector
            assert (value.to_list() if hasattr(value, "to_list") else value.tolist()) == [1.0, 2.0, 3.0]

        @pytest.mark.asyncio
        async def test_conn_has_the_vector_codec(sam_db_conn):
            value = await sam_db_conn.fetchval("SELECT '[4,5]'::vector")
            # pgvector-python < 0.5 decodes to a numpy array, 0.5+ to pgvector.Vector
            assert (value.to_list() if hasattr(value, "to_list") else value.tolist()) == [4.0, 5.0]

        @pytest.mark.asyncio
        async def test_memory_store_uses_the_hash_embedder(memory_store):
            entry = await memory_store.add("the cat sat on the mat")
            hits = await memory_store.search("the cat sat on the mat", k=1)
            assert hits[0].entry.id == entry.id
            assert entry.embedding_model == HashEmbedder().model

        @pytest.mark.asyncio
        async def test_tx_writes(sam_db_tx):
            await sam_db_tx.execute("INSERT INTO memory_collections (name) VALUES ('kept?')")
            assert await sam_db_tx.fetchval("SELECT count(*) FROM memory_collections") == 1

        @pytest.mark.asyncio
        async def test_tx_writes_were_rolled_back(sam_db_tx):
            assert await sam_db_tx.fetchval("SELECT count(*) FROM memory_collections") == 0
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=9)


def test_sync_fixtures_need_no_asyncio_plugin(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(QUERY)
    pytester.makepyfile(
        """
        from conftest import fetchval

        def test_dsn(sam_db_dsn):
            assert fetchval(sam_db_dsn, "SELECT count(*) FROM schema_migrations") == 5

        def test_schema(sam_db_schema):
            assert fetchval(sam_db_schema.dsn, f'SELECT count(*) FROM "{sam_db_schema.schema}".schema_migrations') == 5
        """
    )
    result = pytester.runpytest("-p", "no:asyncio", "-p", "no:anyio")
    result.assert_outcomes(passed=2)


def test_anyio_tests_get_connections_on_their_own_loop(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.anyio

        @pytest.fixture
        def anyio_backend():
            return "asyncio"

        async def test_conn(sam_db_conn):
            assert await sam_db_conn.fetchval("SELECT count(*) FROM schema_migrations") == 5

        async def test_tx_insert(sam_db_tx):
            await sam_db_tx.execute("INSERT INTO memory_collections (name) VALUES ('a')")

        async def test_tx_clean(sam_db_tx):
            assert await sam_db_tx.fetchval("SELECT count(*) FROM memory_collections") == 0

        async def test_store(memory_store):
            await memory_store.add("anyio")
        """
    )
    result = pytester.runpytest("-p", "no:randomly")  # pytest-asyncio present, strict mode
    result.assert_outcomes(passed=4)


def test_tx_connection_is_reused_on_a_session_loop(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        asyncio_mode = auto
        asyncio_default_fixture_loop_scope = session
        asyncio_default_test_loop_scope = session
        """
    )
    pytester.makepyfile(
        """
        PIDS = []

        async def test_first(sam_db_tx):
            PIDS.append(await sam_db_tx.fetchval("SELECT pg_backend_pid()"))
            await sam_db_tx.execute("SET statement_timeout = 1234")

        async def test_second_same_connection_clean_state(sam_db_tx):
            assert await sam_db_tx.fetchval("SELECT pg_backend_pid()") == PIDS[0]
            assert await sam_db_tx.fetchval("SHOW statement_timeout") == "0"
        """
    )
    result = pytester.runpytest(
        "-p",
        "no:randomly",
        "-W",
        "error::ResourceWarning",
        "-W",
        "error::pytest.PytestUnraisableExceptionWarning",
    )
    result.assert_outcomes(passed=2)


def test_commit_inside_tx_is_reported_and_the_database_replaced(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(
        """
        async def test_commits(sam_db_tx):
            await sam_db_tx.execute("INSERT INTO memory_collections (name) VALUES ('x')")
            await sam_db_tx.execute("COMMIT")

        async def test_next_test_sees_a_clean_database(sam_db_tx):
            assert await sam_db_tx.fetchval("SELECT count(*) FROM memory_collections") == 0
        """
    )
    # pgvector-python < 0.5 imports numpy, which warns when pytester's in-process runs re-import it.
    numpy_reload = "ignore:The NumPy module was reloaded:UserWarning"
    result = pytester.runpytest("-p", "no:randomly", "-W", numpy_reload)
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(["*sam_db_tx: the test ended the fixture's transaction*"])


def test_extra_sources_and_schema_from_the_command_line(pytester: pytest.Pytester) -> None:
    mig = pytester.mkdir("migrations")
    (mig / "100_service.sql").write_text("CREATE TABLE service_things (id int PRIMARY KEY);\n")
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(
        """
        async def test_dsn_has_service_table_in_schema(sam_db_conn):
            assert await sam_db_conn.fetchval("SELECT to_regclass('svc.service_things') IS NOT NULL")
            # the connection's search_path starts with the configured schema
            assert await sam_db_conn.fetchval("SELECT count(*) FROM schema_migrations") == 6

        async def test_memory_store_in_schema(memory_store, sam_db_pool):
            await memory_store.add("in svc")
            assert await sam_db_pool.fetchval("SELECT count(*) FROM svc.memory_entries") == 1

        def test_schema_fixture_applies_sources(sam_db_schema):
            import asyncio, asyncpg

            async def go():
                conn = await asyncpg.connect(sam_db_schema.dsn)
                try:
                    sql = "SELECT to_regclass($1) IS NOT NULL"
                    return await conn.fetchval(sql, f'"{sam_db_schema.schema}".service_things')
                finally:
                    await conn.close()

            assert asyncio.run(go())
        """
    )
    result = pytester.runpytest(
        "--sam-db-sources=migrations", "--sam-db-schema=svc", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=3)


def test_extra_sources_from_the_ini_file(pytester: pytest.Pytester) -> None:
    mig = pytester.mkdir("db")
    (mig / "200_from_ini.sql").write_text("CREATE TABLE from_ini (id int);\n")
    pytester.makeini(
        "[pytest]\nsam_db_sources = db\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makeconftest(QUERY)
    pytester.makepyfile(
        """
        from conftest import fetchval

        def test_table_from_ini_source(sam_db_dsn):
            assert fetchval(sam_db_dsn, "SELECT to_regclass('from_ini') IS NOT NULL")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
