"""Where a benchmark runs: the server of ``--dsn`` / ``SAM_DB_TEST_DSN`` when given, otherwise an
embedded PostgreSQL (default durability settings) in a temporary directory, deleted afterwards."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any


def run_on_server(dsn: str | None, job: Callable[[str], Coroutine[Any, Any, object]]) -> None:
    """Run ``job(dsn)`` to completion on that server, or on a throwaway embedded one."""
    if dsn:
        asyncio.run(job(dsn))
        return
    from sam_db._embedded import embedded_dsn, start_embedded

    with tempfile.TemporaryDirectory(prefix="sam_db_bench_") as tmp:
        server = start_embedded(Path(tmp) / "data", cleanup="delete")
        try:
            print("embedded PostgreSQL (default durability settings)", flush=True)
            asyncio.run(job(embedded_dsn(server)))
        finally:
            server.cleanup()
