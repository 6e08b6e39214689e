"""The sam-db command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sam_db.cli import EXIT_CHECK_FAILED, EXIT_ERROR, main
from tests.helpers import write_migrations


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_prints_a_table_of_pending_migrations(
    db_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "status", "--dsn", db_dsn)
    assert code == 0
    assert out.splitlines()[0].split() == ["VERSION", "NAME", "STATE", "APPLIED", "AT", "MS"]
    assert out.splitlines()[1].split() == ["001", "initial_schema", "pending"]
    assert "5 pending" in out


def test_migrate_then_status_json(db_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "migrate", "--dsn", db_dsn)
    assert code == 0 and "applied 004_memory_system.sql" in out
    code, out, _ = run(capsys, "status", "--dsn", db_dsn, "--json")
    rows = json.loads(out)
    assert [(r["version"], r["state"]) for r in rows] == [
        ("001", "applied"),
        ("002", "applied"),
        ("003", "applied"),
        ("004", "applied"),
        ("005", "applied"),
    ]


def test_migrate_when_up_to_date_says_so(
    migrated_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "migrate", "--dsn", migrated_dsn)
    assert code == 0 and "up to date" in out


def test_status_check_fails_while_migrations_are_pending(
    db_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "status", "--dsn", db_dsn, "--check")[0] == EXIT_CHECK_FAILED


def test_status_check_passes_when_up_to_date(
    migrated_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "status", "--dsn", migrated_dsn, "--check")[0] == 0


def test_status_check_fails_on_a_modified_file(
    db_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_migrations(tmp_path, {"006_x.sql": "CREATE TABLE x (id int);"})
    assert run(capsys, "migrate", "--dsn", db_dsn, "--source", str(src))[0] == 0
    (src / "006_x.sql").write_text("CREATE TABLE x (id bigint);")
    code, out, _ = run(capsys, "status", "--dsn", db_dsn, "--source", str(src), "--check")
    assert code == EXIT_CHECK_FAILED and "modified" in out


def test_migrate_target_and_rollback_steps(db_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "migrate", "--dsn", db_dsn, "--target", "003")[0] == 0
    code, out, _ = run(capsys, "rollback", "--dsn", db_dsn, "--steps", "2")
    assert code == 0
    done = [line for line in out.splitlines() if line.startswith("rolled back")]  # after the plan
    assert len(done) == 2
    assert done[0].startswith("rolled back 003_workflow_lifecycle.sql")
    assert done[1].startswith("rolled back 002_session_metrics.sql")


def test_rollback_to_target(migrated_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rollback", "--dsn", migrated_dsn, "--target", "0")
    assert code == 0 and out.count("rolled back") == 5


def test_dsn_comes_from_database_url(
    db_dsn: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_dsn)
    code, out, err = run(capsys, "status")
    assert code == 0 and "5 pending" in out and "embedded" not in err


def test_repair_accepts_a_modified_file(
    db_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_migrations(tmp_path, {"006_x.sql": "CREATE TABLE x (id int);"})
    run(capsys, "migrate", "--dsn", db_dsn, "--source", str(src))
    (src / "006_x.sql").write_text("-- documented\nCREATE TABLE x (id int);")
    code, _, err = run(capsys, "migrate", "--dsn", db_dsn, "--source", str(src))
    assert code == EXIT_ERROR and "006_x.sql" in err and "sam-db repair 006" in err
    code, out, _ = run(capsys, "repair", "--dsn", db_dsn, "--source", str(src), "006")
    assert code == 0 and "006" in out
    assert run(capsys, "status", "--dsn", db_dsn, "--source", str(src), "--check")[0] == 0


def test_new_creates_the_next_numbered_file_and_its_rollback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "migrations"
    code, _, _ = run(capsys, "new", "add tags", "--dir", str(folder))
    assert code == 0
    assert sorted(p.name for p in folder.iterdir()) == [
        "006_add_tags.rollback.sql",
        "006_add_tags.sql",
    ]
    run(capsys, "new", "more", "--dir", str(folder))
    assert (folder / "007_more.sql").exists()


def test_new_rejects_a_name_that_cannot_be_a_file_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "new", "../../etc", "--dir", str(tmp_path))
    assert code == EXIT_ERROR and "migration name" in err


def test_seed_loads_sample_data_and_is_idempotent(
    migrated_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, first, _ = run(capsys, "seed", "--dsn", migrated_dsn)
    assert code == 0 and "workflows" in first
    code, second, _ = run(capsys, "seed", "--dsn", migrated_dsn)
    assert code == 0 and first == second


def test_seed_refuses_an_unmigrated_database(
    db_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "seed", "--dsn", db_dsn)
    assert code == EXIT_ERROR and "sam-db migrate" in err


def test_schema_option(db_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "migrate", "--dsn", db_dsn, "--schema", "svc")[0] == 0
    code, out, _ = run(capsys, "status", "--dsn", db_dsn, "--schema", "svc", "--check")
    assert code == 0 and "5 applied" in out


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sam_db",
            "status",
            "--dsn",
            "postgresql://u:hunter2@127.0.0.1:1/db",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DATABASE_URL": ""},
    )
    assert proc.returncode == EXIT_ERROR
    assert proc.stderr.startswith("error: cannot reach PostgreSQL")
    assert "Traceback" not in proc.stderr and "hunter2" not in proc.stderr


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A fresh folder outside pytest's tmp_path, for the embedded server's data.

    As root the server runs as another user, which must traverse the parents, and every pytest
    session on the machine resets pytest's temporary root to mode 0700.
    """
    path = Path(tempfile.mkdtemp(prefix="sam_db_cli_"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_embedded_default_when_no_dsn(workdir: Path) -> None:
    tmp_path = workdir
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    proc = subprocess.run(
        [sys.executable, "-m", "sam_db", "migrate"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "embedded PostgreSQL" in proc.stderr and "applied 004_memory_system.sql" in proc.stdout
    assert (tmp_path / ".sam_db" / "pgdata" / "PG_VERSION").exists()
    again = subprocess.run(
        [sys.executable, "-m", "sam_db", "status", "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert again.returncode == 0 and "5 applied" in again.stdout


def test_main_leaves_the_sam_db_logger_as_it_found_it(
    db_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    logger = logging.getLogger("sam_db")
    before = (logger.level, list(logger.handlers))
    run(capsys, "status", "--dsn", db_dsn)
    assert (logger.level, list(logger.handlers)) == before
