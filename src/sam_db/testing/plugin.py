"""The sam_db pytest plugin: fresh, fully migrated PostgreSQL databases for every test.

Registered through the ``pytest11`` entry point (``pip install 'sam-db[testing]'``); nothing happens
until a test asks for one of the fixtures. See ``docs/testing.md``.

Synchronous, value fixtures (usable from sync and async tests, no asyncio plugin needed):
``sam_db_server`` (session), ``sam_db_dsn``, ``sam_db_schema``. Asynchronous fixtures (need
pytest-asyncio or anyio): ``sam_db_pool``, ``sam_db_conn``, ``memory_store``, ``sam_db_tx``.
"""

from __future__ import annotations

import asyncio
import types
import warnings
import weakref
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import asyncpg
import pytest

from .._pgvector import vector_schema
from ._claim import TemplateClaim
from ._loop import BackgroundLoop
from ._options import (  # noqa: F401 -- hooks: pytest finds them on this module
    pytest_addoption,
    pytest_report_header,
    read_options,
)
from ._runtime import Runtime, search_path
from ._server import (
    apply_non_durable,
    dsn_from_environment,
    server_datadir,
    sigterm_interrupts,
    start_server,
)
from ._template import template_name
from ._values import MigratedSchema
from ._xdist import (  # noqa: F401 -- hooks: the run's controller holds what workers share
    leave_template_to_run,
    pytest_configure_node,
    pytest_testnodedown,
    pytest_unconfigure,
    run_pid,
)

if TYPE_CHECKING:
    from ..memory import MemoryStore

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - anyio-only installations
    pytest_asyncio = None  # type: ignore[assignment]

__all__ = ["MigratedSchema"]

F = TypeVar("F", bound=Callable[..., Any])


# -- async fixtures that work under pytest-asyncio (auto or strict) and anyio ------------------

#: Our async fixture functions as registered (marked for pytest-asyncio) -> their unmarked twins.
_UNMARKED: dict[Callable[..., Any], Callable[..., Any]] = {}


def _async_fixture(fn: F) -> F:
    """Register ``fn`` as an async fixture that pytest-asyncio runs in strict mode too.

    With pytest-asyncio installed the fixture is a ``pytest_asyncio.fixture``. For a test run by
    anyio (one using ``anyio_backend``) :func:`pytest_fixture_setup` swaps in an unmarked copy so
    that anyio, not pytest-asyncio, runs it in the test's own loop.
    """
    if pytest_asyncio is None:
        return pytest.fixture(fn)
    twin = types.FunctionType(
        fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__
    )
    twin.__doc__, twin.__module__, twin.__qualname__ = fn.__doc__, fn.__module__, fn.__qualname__
    twin.__annotations__ = fn.__annotations__
    _UNMARKED[fn] = twin
    return cast(F, pytest_asyncio.fixture(fn))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, Any, Any]:
    twin = _UNMARKED.get(fixturedef.func)
    if twin is None or "anyio_backend" not in request.fixturenames:
        return (yield)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fixturedef, "func", twin)
        return (yield)


# -- session fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _sam_db_loop() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    try:
        yield loop
    finally:
        loop.close()


def _server_dir(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp()
    if hasattr(config, "workerinput"):  # a pytest-xdist worker
        # Worker basetemps are <run basetemp>/gwN: their parent is shared by the run's workers.
        base = base.parent
    return server_datadir(base)


@pytest.fixture(scope="session")
def sam_db_server(
    _sam_db_loop: BackgroundLoop,
    tmp_path_factory: pytest.TempPathFactory,
    pytestconfig: pytest.Config,
) -> Iterator[str]:
    """DSN of the test server's maintenance database (a superuser login for the embedded one).

    ``SAM_DB_TEST_DSN`` when set (an explicit opt-in; ``DATABASE_URL`` is never used); otherwise
    an embedded PostgreSQL started in a temporary directory with durability off, shared by the
    xdist workers of the run and stopped (and deleted) at the end of the session, also on Ctrl-C
    or SIGTERM.
    """
    external = dsn_from_environment()
    if external:
        yield external
        return
    with sigterm_interrupts():
        server = start_server(
            _server_dir(pytestconfig, tmp_path_factory), run_pid=run_pid(pytestconfig)
        )
        try:
            _sam_db_loop.run(apply_non_durable(server.dsn))
            yield server.dsn
        finally:
            server.stop()


@pytest.fixture(scope="session")
def _sam_db_runtime(
    sam_db_server: str, _sam_db_loop: BackgroundLoop, pytestconfig: pytest.Config
) -> Iterator[Runtime]:
    options = read_options(pytestconfig)
    # Held by every session (embedded ones too: other sessions may share their server), so the
    # last user of the template, on a SAM_DB_TEST_DSN server, drops it at the end (see _claim).
    claim = TemplateClaim(sam_db_server, template_name(options.sources, options.schema))
    _sam_db_loop.run(claim.hold())
    runtime = Runtime(sam_db_server, options, _sam_db_loop)
    try:
        yield runtime
    finally:
        try:
            runtime.close()
        finally:
            drop = dsn_from_environment() is not None and not pytestconfig.getini(
                "sam_db_keep_template"
            )
            # An xdist worker may finish before the others start: its controller drops it.
            if drop and leave_template_to_run(pytestconfig, claim.template):
                drop = False
            _sam_db_loop.run(claim.release(drop=drop))


# -- value fixtures ----------------------------------------------------------------------------


@pytest.fixture
def sam_db_dsn(_sam_db_runtime: Runtime) -> Iterator[str]:
    """DSN of a brand-new database with every migration applied, dropped after the test.

    Cloned from a template database migrated once (``CREATE DATABASE … TEMPLATE``); the template is
    rebuilt when a migration file changes, dropped by the last session using it on a
    ``SAM_DB_TEST_DSN`` server unless ``sam_db_keep_template`` keeps it for the next one.
    """
    name = _sam_db_runtime.take_database()
    try:
        yield _sam_db_runtime.dsn(name)
    finally:
        _sam_db_runtime.give_back_database(name)


@pytest.fixture
def sam_db_schema(_sam_db_runtime: Runtime) -> Iterator[MigratedSchema]:
    """A fresh schema with every migration applied, in the server's own database; dropped after.

    For servers where the test login may not create databases. Returns a :class:`MigratedSchema`.
    """
    name = _sam_db_runtime.take_schema()
    try:
        yield MigratedSchema(dsn=_sam_db_runtime.admin_dsn, schema=name)
    finally:
        _sam_db_runtime.give_back_schema(name)


# -- async fixtures ----------------------------------------------------------------------------


async def _codec_init(runtime: Runtime) -> Callable[[asyncpg.Connection], Any]:
    async def init(conn: asyncpg.Connection) -> None:
        if runtime.vector_schema is None:
            runtime.vector_schema = await vector_schema(conn) or ""
        if runtime.vector_schema:
            from ..memory._connections import register_codec

            await register_codec(conn, runtime.vector_schema)

    return init


async def _open(dsn: str, runtime: Runtime) -> asyncpg.Connection:
    conn: asyncpg.Connection = await asyncpg.connect(
        dsn, server_settings=search_path(runtime.options.schema)
    )
    try:
        await (await _codec_init(runtime))(conn)
    except BaseException:
        await conn.close()
        raise
    return conn


@_async_fixture
async def sam_db_pool(
    sam_db_dsn: str, _sam_db_runtime: Runtime
) -> AsyncIterator[asyncpg.Pool[Any]]:
    """An asyncpg pool (1 to 10 connections, pgvector codec registered) on a fresh ``sam_db_dsn``."""
    pool: asyncpg.Pool[Any] = await asyncpg.create_pool(
        sam_db_dsn,
        min_size=1,
        max_size=10,
        init=await _codec_init(_sam_db_runtime),
        server_settings=search_path(_sam_db_runtime.options.schema),
    )
    try:
        yield pool
    finally:
        try:
            await asyncio.wait_for(pool.close(), timeout=5)
        except asyncio.TimeoutError:  # a connection the test never released
            pool.terminate()


@_async_fixture
async def sam_db_conn(
    sam_db_dsn: str, _sam_db_runtime: Runtime
) -> AsyncIterator[asyncpg.Connection]:
    """An asyncpg connection (pgvector codec registered) on a fresh ``sam_db_dsn``."""
    conn = await _open(sam_db_dsn, _sam_db_runtime)
    try:
        yield conn
    finally:
        await conn.close(timeout=5)


@_async_fixture
async def memory_store(
    sam_db_pool: asyncpg.Pool[Any], _sam_db_runtime: Runtime
) -> AsyncIterator[MemoryStore]:
    """A ``MemoryStore`` on ``sam_db_pool`` with the offline, NOT semantic ``HashEmbedder``."""
    from ..memory import MemoryStore
    from ._embedder import HashEmbedder

    async with MemoryStore(
        sam_db_pool, HashEmbedder(), schema=_sam_db_runtime.options.schema
    ) as store:
        yield store


#: sam_db_tx connections, one per event loop, reused while that loop lives.
_TX_CONNECTIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncpg.Connection] = (
    weakref.WeakKeyDictionary()
)
#: The tasks closing them (asyncio holds tasks weakly: without this they could be collected).
_TX_CLOSERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
    weakref.WeakKeyDictionary()
)


async def _close_with_loop(conn: asyncpg.Connection) -> None:
    """Wait until the loop shuts down (its runner cancels every task), then close ``conn``."""
    try:
        await asyncio.Event().wait()
    finally:
        # terminate(), not close(): no goodbye round trip while the loop shuts down (one per test
        # with function-scoped loops); the transaction was rolled back, nothing is lost.
        conn.terminate()


@_async_fixture
async def sam_db_tx(_sam_db_runtime: Runtime) -> AsyncIterator[asyncpg.Connection]:
    """A connection inside a transaction that is rolled back after the test: the cheapest isolation.

    The database is one migrated clone per session (per xdist worker). The connection is reused by
    the next test running on the same event loop (loop scope ``session`` or ``module``); a test
    that ends the transaction itself (``COMMIT``) makes the plugin replace the database.
    """
    loop = asyncio.get_running_loop()
    conn = _TX_CONNECTIONS.get(loop)
    if conn is None or conn.is_closed():
        conn = await _open(_sam_db_runtime.dsn(_sam_db_runtime.tx_database()), _sam_db_runtime)
        _TX_CONNECTIONS[loop] = conn
        previous = _TX_CLOSERS.get(loop)
        if previous is not None:
            previous.cancel()
        _TX_CLOSERS[loop] = loop.create_task(
            _close_with_loop(conn), name="sam_db_tx connection closer"
        )
    tx = conn.transaction()
    await tx.start()
    try:
        yield conn
    finally:
        if conn.is_closed():
            _TX_CONNECTIONS.pop(loop, None)
        elif conn.is_in_transaction():
            try:
                await tx.rollback()
                await conn.reset()
            except (asyncpg.InterfaceError, asyncpg.PostgresError):
                # e.g. a nested transaction the test left open: start afresh next time.
                _TX_CONNECTIONS.pop(loop, None)
                await conn.close(timeout=5)
        else:
            warnings.warn(
                "sam_db_tx: the test ended the fixture's transaction itself (COMMIT?); its changes "
                "were kept, so the shared sam_db_tx database is being replaced",
                stacklevel=1,
            )
            _TX_CONNECTIONS.pop(loop, None)
            await conn.close()
            _sam_db_runtime.reset_tx_database()
