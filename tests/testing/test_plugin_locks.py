"""The plugin's advisory locks (template build, first schema) are bounded, logged waits."""

from __future__ import annotations

import asyncpg
import pytest

from sam_db.errors import MigrationLockTimeoutError
from sam_db.testing import _runtime, _template
from sam_db.testing._runtime import SCHEMA_LOCK_KEY, Options, Runtime
from sam_db.testing._template import TEMPLATE_LOCK_KEY, ensure_template


async def _holder(dsn: str, key: tuple[int, int]) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn, server_settings={"application_name": "other pytest session"})
    await conn.execute("SELECT pg_advisory_lock($1, $2)", *key)
    return conn


async def test_waiting_for_the_template_lock_is_bounded_and_names_the_holder(
    pg_admin_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_template, "LOCK_WAIT", 0.3)
    holder = await _holder(pg_admin_dsn, TEMPLATE_LOCK_KEY)
    admin = await asyncpg.connect(pg_admin_dsn)
    try:
        with pytest.raises(
            MigrationLockTimeoutError, match=r"test template lock held by .*other pytest session"
        ):
            await ensure_template(admin, pg_admin_dsn, sources=(), schema=None, strategy="wal_log")
    finally:
        await admin.close()
        await holder.close()


async def test_waiting_for_the_first_schema_lock_is_bounded_and_names_the_holder(
    pg_admin_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_runtime, "LOCK_WAIT", 0.3)
    holder = await _holder(pg_admin_dsn, SCHEMA_LOCK_KEY)
    runtime = Runtime(pg_admin_dsn, Options(), loop=None)  # type: ignore[arg-type]
    try:
        with pytest.raises(
            MigrationLockTimeoutError, match=r"first-schema lock held by .*other pytest session"
        ):
            await runtime._new_schema()
    finally:
        await runtime._aclose()
        await holder.close()
