"""The plugin's own tests: small example suites run with ``pytester``.

Most inner runs share the outer session's server through ``SAM_DB_TEST_DSN`` (fast, and it is how a
persistent server is used); the ones about the embedded server start their own.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture
def shared_server(sam_db_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point inner runs at the outer session's server."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SAM_DB_TEST_DSN", sam_db_server)
    return sam_db_server


@pytest.fixture
def no_server_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs start their own embedded server."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SAM_DB_TEST_DSN", raising=False)


@pytest.fixture(autouse=True)
def quiet_inner_runs(pytester: pytest.Pytester) -> None:
    """Inner runs get pytest-asyncio's loop scope set (tests may overwrite this ini file)."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
