"""``sam-db seed``: load the optional sample data (a few workflows, sessions, events)."""

from __future__ import annotations

from importlib import resources

from . import _engine
from ._connect import Target, open_link
from ._engine import Settings
from ._ident import quote_ident
from ._search_path import search_path
from .errors import MigrationError

_TABLES = ("workflows", "sessions", "session_events", "session_metrics")


async def seed(target: Target, settings: Settings) -> dict[str, int]:
    """Run the bundled sample-data script (idempotent); return row counts of the seeded tables."""
    script = (resources.files("sam_db") / "seed" / "sample_data.sql").read_text(encoding="utf-8")
    async with open_link(target, purpose="seed") as link:
        conn = link.conn
        # The status check reuses this connection rather than opening one of its own.
        rows = await _engine.status(conn, settings)
        behind = [r.version for r in rows if r.state in ("pending", "modified")]
        if behind:
            raise MigrationError(
                f"the database is not fully migrated (pending or modified: {', '.join(behind)}); "
                "run `sam-db migrate` first"
            )
        async with conn.transaction():
            if settings.schema:
                await conn.execute(
                    "SELECT set_config('search_path', $1, true)", search_path(settings.schema)
                )
            await conn.execute(script)
            counts = {}
            for table in _TABLES:
                counts[table] = int(
                    await conn.fetchval(f"SELECT count(*) FROM {quote_ident(table)}")  # noqa: S608
                )
    return counts
