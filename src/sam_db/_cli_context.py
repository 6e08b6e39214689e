"""What every ``sam-db`` command needs from its options: the project settings and the database.

Command-line options override the environment, which overrides the project configuration
(``sam_db._config``); the DSN comes from ``--dsn``, else the environment variable the
configuration names (``DATABASE_URL``), else the embedded server in the project's data folder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from . import _config
from ._engine import Settings

#: Options that override a setting of the same name (``None`` when not given).
_OVERRIDES = {
    "schema": "--schema",
    "lock_wait": "--lock-wait",
    "lock_timeout": "--lock-timeout",
    "lock_retries": "--lock-retries",
    "stall_timeout": "--stall-timeout",
    "embedded_path": "--embedded-path",
}

EMBEDDED_DATABASE = "super_agent_monitor"


def project(args: argparse.Namespace) -> _config.Project:
    """The project and its effective settings for this command (loaded once per command)."""
    cached = getattr(args, "_project", None)
    if isinstance(cached, _config.Project):
        return cached
    loaded = _config.load()
    if getattr(args, "source", None):
        loaded.override("sources", list(args.source), "--source")
    if getattr(args, "no_bundled", False):
        loaded.override("include_bundled", False, "--no-bundled")
    for key, option in _OVERRIDES.items():
        value = getattr(args, key, None)
        if value is not None:
            loaded.override(key, value, option)
    args._project = loaded
    return loaded


def settings(args: argparse.Namespace, **extra: Any) -> Settings:
    """The engine's settings: the project's, with ``extra`` (e.g. ``strict``) on top."""
    p = project(args)
    return Settings(
        schema=p.value("schema"),
        sources=tuple(p.value("sources")),
        include_bundled=p.value("include_bundled"),
        lock_wait=p.value("lock_wait"),
        lock_timeout=p.value("lock_timeout"),
        lock_retries=p.value("lock_retries"),
        stall_timeout=p.value("stall_timeout"),
        **extra,
    )


def given_dsn(args: argparse.Namespace) -> tuple[str, str] | None:
    """The DSN given by ``--dsn`` or the configured environment variable, and where it came from."""
    if getattr(args, "dsn", None):
        return str(args.dsn), "--dsn"
    name = project(args).value("dsn_env")
    value = os.environ.get(name, "")
    return (value, f"${name}") if value.strip() else None


def pgdata(args: argparse.Namespace) -> Any:
    """The embedded server's PostgreSQL data directory for this project."""
    return project(args).data_dir.resolve() / "pgdata"


def resolve_dsn(args: argparse.Namespace) -> str:
    """The database this command works on; starts (or joins) the embedded server if none is given."""
    given = given_dsn(args)
    if given is not None:
        return given[0]
    from ._embedded import embedded_dsn, ensure_database, start_embedded

    datadir = pgdata(args)
    name = project(args).value("dsn_env")
    print(
        f"sam-db: no --dsn or ${name}: using the embedded PostgreSQL in {datadir} "
        f"(database {EMBEDDED_DATABASE})",
        file=sys.stderr,
    )
    server = start_embedded(datadir, cleanup="stop")
    asyncio.run(ensure_database(embedded_dsn(server), EMBEDDED_DATABASE))
    return embedded_dsn(server, EMBEDDED_DATABASE)
