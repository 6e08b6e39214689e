"""The built wheel carries the SQL files and its CLI works against the embedded server.

Runs ``.ci/wheel-smoke`` for the interpreter running the tests; CI runs the whole suite, this
test included, on Python 3.10, 3.11 and 3.13 (``.ci/run``, ``.ci/deps``). Deselect with
``-m 'not slow'`` (it builds a wheel and a venv: ~15 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".ci" / "wheel-smoke"
MIGRATIONS = ROOT / "src" / "sam_db" / "migrations"


def _forward_migrations() -> int:
    return sum(1 for p in MIGRATIONS.glob("*.sql") if not p.name.endswith(".rollback.sql"))


@pytest.mark.slow
@pytest.mark.versions
def test_wheel_installs_into_a_fresh_venv_and_its_cli_migrates_the_embedded_server() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTHONPATH")}
    env["BUILD_PYTHON"] = sys.executable
    result = subprocess.run(
        ["bash", str(SCRIPT), sys.executable],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    n = _forward_migrations()
    sql_files = len(list(MIGRATIONS.glob("*.sql")))
    assert f"wheel holds {sql_files} migration .sql files, the seed and py.typed" in result.stdout
    assert f"\n{n} pending\n" in result.stdout
    assert f"\n{n} applied\n" in result.stdout
    assert f"wheel-smoke: OK: {n} applied" in result.stdout
