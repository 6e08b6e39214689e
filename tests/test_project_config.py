"""The project configuration: [tool.sam_db] / sam_db.toml, found upwards; env and arguments win."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import sam_db
from sam_db import migrate
from sam_db.errors import ConfigurationError
from tests.helpers import write_migrations


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in (
        "SAM_DB_SOURCES",
        "SAM_DB_SCHEMA",
        "SAM_DB_LOCK_WAIT",
        "SAM_DB_LOCK_TIMEOUT",
        "SAM_DB_LOCK_RETRIES",
        "SAM_DB_DSN_ENV",
        "SAM_DB_EMBEDDED_PATH",
        "SAM_DB_INCLUDE_BUNDLED",
        "SAM_DB_STALL_TIMEOUT",
        "DATABASE_URL",
    ):
        monkeypatch.delenv(key, raising=False)


def _project(root: Path, pyproject: str | None = None, sam_db_toml: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if pyproject is not None:
        (root / "pyproject.toml").write_text(pyproject)
    if sam_db_toml is not None:
        (root / "sam_db.toml").write_text(sam_db_toml)
    (root / "src" / "deep").mkdir(parents=True, exist_ok=True)
    return root


def test_tool_sam_db_in_pyproject_is_found_from_a_subfolder(tmp_path: Path) -> None:
    root = _project(
        tmp_path / "proj",
        '[project]\nname = "svc"\n\n[tool.sam_db]\nsources = ["db/migrations"]\n'
        'schema = "svc"\nlock_wait = 12\nlock_timeout = 1.5\nlock_retries = 2\n',
    )
    cfg = sam_db.config(root / "src" / "deep")
    assert cfg["sources"] == (root / "db" / "migrations",)
    assert (cfg["schema"], cfg["lock_wait"], cfg["lock_timeout"], cfg["lock_retries"]) == (
        "svc",
        12.0,
        1.5,
        2,
    )
    assert cfg.root == root and cfg.file == root / "pyproject.toml"
    assert cfg.origins["schema"].endswith("pyproject.toml [tool.sam_db]")


def test_sam_db_toml_holds_the_same_keys_at_the_top_level(tmp_path: Path) -> None:
    root = _project(tmp_path / "proj", sam_db_toml='sources = ["sql"]\nlock-retries = 7\n')
    cfg = sam_db.config(root / "src")
    assert cfg["sources"] == (root / "sql",) and cfg["lock_retries"] == 7


def test_sam_db_toml_wins_over_pyproject_in_the_same_folder(tmp_path: Path) -> None:
    root = _project(
        tmp_path / "proj", '[tool.sam_db]\nschema = "from_pyproject"\n', 'schema = "from_toml"\n'
    )
    assert sam_db.config(root)["schema"] == "from_toml"


def test_a_pyproject_without_the_table_is_passed_over_for_one_above(tmp_path: Path) -> None:
    outer = _project(tmp_path / "mono", sam_db_toml='schema = "outer"\n')
    inner = _project(outer / "pkg", '[project]\nname = "pkg"\n')
    cfg = sam_db.config(inner / "src")
    assert cfg["schema"] == "outer" and cfg.root == outer


def test_without_a_config_the_project_root_is_the_nearest_pyproject_folder(tmp_path: Path) -> None:
    root = _project(tmp_path / "proj", '[project]\nname = "svc"\n')
    cfg = sam_db.config(root / "src" / "deep")
    assert cfg.file is None and cfg.root == root
    assert cfg.data_dir == (root / ".sam_db").resolve()


def test_environment_variables_override_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path / "proj", '[tool.sam_db]\nsources = ["a"]\nlock_wait = 1\n')
    monkeypatch.chdir(root)
    monkeypatch.setenv("SAM_DB_SOURCES", os.pathsep.join(["x", "y"]) + ", z")
    monkeypatch.setenv("SAM_DB_LOCK_WAIT", "42")
    cfg = sam_db.config()
    assert cfg["sources"] == (root / "x", root / "y", root / "z") and cfg["lock_wait"] == 42.0
    assert cfg.origins["lock_wait"] == "$SAM_DB_LOCK_WAIT"


def test_arguments_override_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path / "proj", '[tool.sam_db]\nschema = "file"\n')
    monkeypatch.setenv("SAM_DB_SCHEMA", "env")
    assert sam_db.config(root, schema="arg")["schema"] == "arg"


def test_dsn_comes_from_the_variable_dsn_env_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path / "proj", '[tool.sam_db]\ndsn_env = "SVC_DB"\n')
    monkeypatch.setenv("DATABASE_URL", "postgresql://other/db")
    monkeypatch.setenv("SVC_DB", "postgresql://svc/db")
    cfg = sam_db.config(root)
    assert cfg["dsn"] == "postgresql://svc/db" and cfg.origins["dsn"] == "$SVC_DB"


def test_an_unknown_key_is_an_error_naming_the_file(tmp_path: Path) -> None:
    root = _project(tmp_path / "proj", '[tool.sam_db]\nsource = ["typo"]\n')
    with pytest.raises(ConfigurationError, match=r"pyproject.toml.*unknown setting.*source"):
        sam_db.config(root)


def test_a_value_of_the_wrong_type_is_an_error_naming_the_key(tmp_path: Path) -> None:
    root = _project(tmp_path / "proj", sam_db_toml='lock_timeout = "soon"\n')
    with pytest.raises(ConfigurationError, match=r"lock_timeout from .*sam_db.toml"):
        sam_db.config(root)


def test_a_bad_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAM_DB_LOCK_RETRIES", "many")
    with pytest.raises(ConfigurationError, match=r"\$SAM_DB_LOCK_RETRIES"):
        sam_db.config(_project(tmp_path / "proj"))


def test_invalid_toml_is_an_error_naming_the_file(tmp_path: Path) -> None:
    root = _project(tmp_path / "proj", sam_db_toml="sources = [\n")
    with pytest.raises(ConfigurationError, match=r"sam_db.toml is not valid TOML"):
        sam_db.config(root)


async def test_migrate_accepts_every_key_config_returns(db_dsn: str, tmp_path: Path) -> None:
    root = _project(
        tmp_path / "proj",
        '[tool.sam_db]\nsources = ["db"]\nschema = "svc"\nlock_wait = 30\n'
        "lock_timeout = 2\nlock_retries = 1\nstall_timeout = 20\ninclude_bundled = true\n",
    )
    write_migrations(root / "db", {"900_extra.sql": "CREATE TABLE extra (id int);"})
    applied = await migrate(**sam_db.config(root, dsn=db_dsn))
    assert applied[0].version == "001" and applied[-1].filename == "900_extra.sql"


async def test_migrate_with_a_config_that_found_no_database_says_how_to_give_one(
    tmp_path: Path,
) -> None:
    cfg = sam_db.config(_project(tmp_path / "proj"))
    assert cfg["dsn"] is None
    with pytest.raises(
        ConfigurationError, match=r"no database given: pass a DSN, set \$DATABASE_URL"
    ):
        await migrate(**cfg)
