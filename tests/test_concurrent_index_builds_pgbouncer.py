"""Replicas racing on a `CREATE INDEX CONCURRENTLY` file through PgBouncer in transaction pooling.

Waiting for the migration lock must hold no snapshot there too: the tries are short transactions
that any pooled server connection can serve.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

import sam_db
from tests.helpers import fetchval, write_migrations
from tests.test_pgbouncer import _PGBOUNCER, Bouncer, bouncer  # noqa: F401 (the fixture)

pytestmark = pytest.mark.skipif(
    _PGBOUNCER is None,
    reason="the `pgbouncer` binary is not installed (Debian/Ubuntu: apt-get install -y pgbouncer)",
)


async def test_replicas_racing_on_a_concurrent_index_through_pgbouncer_all_succeed(
    bouncer: Bouncer,  # noqa: F811
    db_dsn: str,
    tmp_path: Path,
) -> None:
    src = write_migrations(
        tmp_path,
        {
            "001_t.sql": "CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 2000);",
            "002_idx.sql": "-- sam_db: no-transaction\n"
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_x_idx ON public.t (x);\n",
        },
    )
    bounced = bouncer.via(db_dsn)
    results = await asyncio.wait_for(
        asyncio.gather(
            *(
                sam_db.migrate(bounced, sources=[src], include_bundled=False, lock_timeout=3)
                for _ in range(4)
            )
        ),
        timeout=60,
    )
    assert Counter(m.version for r in results for m in r) == Counter(["001", "002"])
    assert await fetchval(
        db_dsn,
        "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = 't_x_idx'::regclass",
    )
