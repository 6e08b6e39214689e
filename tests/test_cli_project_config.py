"""The CLI reads the project configuration: real ``sam-db`` processes in a project folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import write_migrations

PYPROJECT = '[project]\nname = "svc"\n\n[tool.sam_db]\nsources = ["db/migrations"]\n'


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SAM_DB_") and k not in ("DATABASE_URL",)
    }
    return {**env, **extra}


def sam_db(cwd: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sam_db", *argv],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _project(tmp_path: Path, pyproject: str = PYPROJECT) -> Path:
    root = tmp_path / "svc"
    (root / "src" / "svc").mkdir(parents=True)
    (root / "pyproject.toml").write_text(pyproject)
    return root


def test_new_writes_into_the_first_source_and_migrate_and_status_see_it(
    db_dsn: str, tmp_path: Path
) -> None:
    root = _project(tmp_path)
    sub = root / "src" / "svc"  # run from a subfolder: the config is found upwards
    made = sam_db(sub, "new", "add_tags")
    assert made.returncode == 0, made.stderr
    [forward] = (root / "db" / "migrations").glob("*_add_tags.sql")
    assert forward.with_name(forward.name.replace(".sql", ".rollback.sql")).exists()
    done = sam_db(sub, "migrate", "--dsn", db_dsn)
    assert done.returncode == 0 and f"applied {forward.name}" in done.stdout, done.stderr
    status = sam_db(sub, "status", "--check", "--dsn", db_dsn)
    assert status.returncode == 0 and forward.stem.split("_")[0] in status.stdout


def test_the_dsn_comes_from_the_variable_the_config_names(db_dsn: str, tmp_path: Path) -> None:
    root = _project(tmp_path, PYPROJECT + 'dsn_env = "SVC_DATABASE_URL"\n')
    (root / "db" / "migrations").mkdir(parents=True)
    proc = sam_db(root, "status", SVC_DATABASE_URL=db_dsn)
    assert proc.returncode == 0 and "001" in proc.stdout and "pending" in proc.stdout
    assert "embedded" not in proc.stderr


def test_command_line_options_override_the_environment_and_the_file(tmp_path: Path) -> None:
    root = _project(tmp_path, PYPROJECT + 'schema = "from_file"\n')
    shown = json.loads(sam_db(root, "config", "--json", SAM_DB_SCHEMA="from_env").stdout)
    assert shown["schema"] == {"value": "from_env", "from": "$SAM_DB_SCHEMA"}
    shown = json.loads(
        sam_db(root, "config", "--json", "--schema", "from_cli", SAM_DB_SCHEMA="e").stdout
    )
    assert shown["schema"] == {"value": "from_cli", "from": "--schema"}
    assert shown["sources"]["value"] == [str(root / "db" / "migrations")]


def test_config_prints_each_setting_with_where_it_came_from_and_no_password(
    tmp_path: Path,
) -> None:
    root = _project(tmp_path)
    proc = sam_db(root, "config", DATABASE_URL="postgresql://svc:s3cret-pw@db.example:5432/svc")
    assert proc.returncode == 0, proc.stderr
    assert "s3cret-pw" not in proc.stdout + proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines()}
    assert "$DATABASE_URL" in lines["dsn"] and "db.example" in lines["dsn"]
    assert "pyproject.toml [tool.sam_db]" in lines["sources"]
    assert "[default]" in lines["lock_wait"]


def test_a_bad_setting_is_a_one_line_error(tmp_path: Path) -> None:
    root = _project(tmp_path, PYPROJECT + "lock_retries = -1\n")
    proc = sam_db(root, "config")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: lock_retries from") and "Traceback" not in proc.stderr


def test_new_without_a_configured_source_says_how_to_make_migrate_see_it(tmp_path: Path) -> None:
    root = _project(tmp_path, '[project]\nname = "svc"\n')
    proc = sam_db(root / "src", "new", "first")
    assert proc.returncode == 0, proc.stderr
    assert len(list((root / "migrations").glob("*_first.sql"))) == 1
    assert 'sources = ["migrations"]' in proc.stderr


def test_source_options_replace_the_configured_sources(db_dsn: str, tmp_path: Path) -> None:
    root = _project(tmp_path)
    write_migrations(root / "db" / "migrations", {"900_a.sql": "CREATE TABLE a (id int);"})
    other = write_migrations(tmp_path / "other", {"900_b.sql": "CREATE TABLE b (id int);"})
    proc = sam_db(root, "migrate", "--dsn", db_dsn, "--source", str(other))
    assert proc.returncode == 0 and "applied 900_b.sql" in proc.stdout, proc.stderr
    assert "900_a" not in proc.stdout
