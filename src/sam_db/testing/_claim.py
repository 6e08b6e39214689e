"""Who still uses a template database: the last session that does drops it (SAM_DB_TEST_DSN).

On an existing server the plugin leaves nothing of its own behind, the template its clones are
copied from included, unless ``sam_db_keep_template`` keeps it for the next session (a faster
start on a persistent server). Sessions sharing a template (xdist workers, runs side by side, the
inner runs of the plugin's own tests) each hold a shared advisory lock named after it for the whole
session, taken before any template work; the session that can take that lock exclusively when it
ends is the last user, and drops the template.
"""

from __future__ import annotations

import hashlib
import logging

import asyncpg

from ._template import drop_database

log = logging.getLogger("sam_db.testing")

#: First half of the two-int4 advisory lock key (the second is a hash of the template's name).
CLAIM_CLASS = 0x5A4D_0C1A


def claim_key(template: str) -> tuple[int, int]:
    """The advisory lock key of ``template``'s users."""
    digest = hashlib.sha256(template.encode()).digest()
    return CLAIM_CLASS, int.from_bytes(digest[:4], "big", signed=True)


class TemplateClaim:
    """A session's shared hold on a template database, on a connection of its own."""

    def __init__(self, admin_dsn: str, template: str) -> None:
        self.admin_dsn = admin_dsn
        self.template = template
        self._conn: asyncpg.Connection | None = None

    async def hold(self) -> None:
        """Take the shared lock (waits only while a last user is dropping the template)."""
        self._conn = await asyncpg.connect(
            self.admin_dsn,
            statement_cache_size=0,
            server_settings={"application_name": "sam_db pytest plugin"},
        )
        await self._conn.execute(
            "SELECT pg_advisory_lock_shared($1, $2)", *claim_key(self.template)
        )

    async def release(self, *, drop: bool) -> bool:
        """Let go; with ``drop``, drop the template when nobody else holds it. True if dropped."""
        conn, self._conn = self._conn, None
        if conn is None:
            return False
        key = claim_key(self.template)
        try:
            await conn.execute("SELECT pg_advisory_unlock_shared($1, $2)", *key)
            if not drop or not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *key):
                return False
            try:
                exists = await conn.fetchval(
                    "SELECT true FROM pg_database WHERE datname = $1", self.template
                )
                if exists:
                    log.info("dropping test template database %s", self.template)
                    await drop_database(conn, self.template, force=True, template=True)
                return bool(exists)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1, $2)", *key)
        finally:
            await conn.close()


async def drop_if_unused(admin_dsn: str, template: str) -> bool:
    """Drop ``template`` unless a session still holds it (the xdist controller, at a run's end)."""
    claim = TemplateClaim(admin_dsn, template)
    await claim.hold()
    return await claim.release(drop=True)
