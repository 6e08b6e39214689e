"""``sam-db lint``: squawk's checks of migration files, with sam_db's shipped settings.

Run as a real process (the ``squawk`` program of the ``lint`` extra); no database involved.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sam_db._lint import shipped_config, squawk_binary
from sam_db.errors import ConfigurationError
from tests.helpers import write_migrations

try:
    squawk_binary()
except ConfigurationError:  # pragma: no cover - the dev extra installs it
    pytest.skip(
        "the squawk program (squawk-cli, extra 'lint') is not installed", allow_module_level=True
    )


def _sam_db(cwd: Path, *argv: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAM_DB_", "DATABASE_URL"))}
    proc = subprocess.run(
        [sys.executable, "-m", "sam_db", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_lint_finds_no_problem_in_the_bundled_migrations(tmp_path: Path) -> None:
    code, out, err = _sam_db(tmp_path, "lint")
    assert code == 0, out + err
    assert "no problems" in out and re.search(r"checked [4-9] files", out)


def test_lint_flags_an_index_that_blocks_writes_on_an_existing_table(tmp_path: Path) -> None:
    src = write_migrations(
        tmp_path / "migrations",
        {
            "005_model_idx.sql": "-- by model\nCREATE INDEX sessions_model_idx ON sessions (model);\n"
        },
    )
    code, out, _ = _sam_db(tmp_path, "lint", "--source", str(src), "--no-bundled")
    assert code == 3
    assert f"{src / '005_model_idx.sql'}:2:1: require-concurrent-index-creation" in out
    assert "help: Use `concurrently`" in out
    assert "1 problem in 1 file" in out


def test_lint_checks_the_configured_sources_by_default(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.sam_db]\nsources = ["db/migrations"]\n')
    write_migrations(
        tmp_path / "db" / "migrations",
        {"100_rename.sql": "ALTER TABLE workflows RENAME COLUMN name TO title;\n"},
    )
    (tmp_path / "sub").mkdir()
    code, out, _ = _sam_db(tmp_path / "sub", "lint")  # the project is found from a subfolder
    assert code == 3
    assert f"{tmp_path / 'db' / 'migrations' / '100_rename.sql'}:1:" in out
    assert "renaming-column" in out and "1 problem in" in out


def test_lint_allows_changes_to_a_table_created_in_the_same_file(tmp_path: Path) -> None:
    src = write_migrations(
        tmp_path / "m",
        {
            "005_tags.sql": "CREATE TABLE tags (id bigint PRIMARY KEY, name text);\n"
            "ALTER TABLE tags ADD COLUMN owner text NOT NULL;\n"
            "ALTER TABLE tags ALTER COLUMN name SET NOT NULL;\n"
            "ALTER TABLE tags RENAME COLUMN owner TO created_by;\n"
            "CREATE INDEX tags_name_idx ON tags (name);\n"
        },
    )
    code, out, _ = _sam_db(tmp_path, "lint", str(src / "005_tags.sql"))
    assert code == 0, out


def test_lint_still_flags_the_same_change_to_an_existing_table(tmp_path: Path) -> None:
    src = write_migrations(
        tmp_path / "m",
        {
            "005_tags.sql": "CREATE TABLE tags (id bigint PRIMARY KEY, name text);\n"
            "ALTER TABLE sessions ADD COLUMN owner text NOT NULL;\n"
            "ALTER TABLE workflows RENAME COLUMN name TO title;\n"
        },
    )
    code, out, _ = _sam_db(tmp_path, "lint", str(src))
    assert code == 3
    assert ":2:" in out and "adding-required-field" in out
    assert ":3:" in out and "renaming-column" in out


def test_lint_does_not_ask_for_timeouts_that_sam_db_sets_itself(tmp_path: Path) -> None:
    src = write_migrations(
        tmp_path / "m", {"005_note.sql": "ALTER TABLE sessions ADD COLUMN note text;\n"}
    )
    code, out, _ = _sam_db(tmp_path, "lint", str(src))
    assert code == 0, out
    assert "lock_timeout" not in out and "statement_timeout" not in out


def test_lint_reads_a_no_transaction_file_statement_by_statement(tmp_path: Path) -> None:
    build = "CREATE INDEX CONCURRENTLY {}sessions_model_idx ON sessions (model);\n"
    src = write_migrations(
        tmp_path / "m",
        {
            # Outside a transaction a re-run must be able to skip what a failed run built.
            "005_a.sql": "-- sam_db: no-transaction\n" + build.format(""),
            "006_b.sql": "-- sam_db: no-transaction\n" + build.format("IF NOT EXISTS "),
            # Inside the transaction sam_db opens, CONCURRENTLY cannot run at all.
            "007_c.sql": build.format("IF NOT EXISTS "),
        },
    )
    code, out, _ = _sam_db(tmp_path, "lint", str(src))
    assert code == 3
    assert "005_a.sql:2:1: prefer-robust-stmts" in out
    assert "006_b.sql" not in out
    assert "007_c.sql:1:" in out and "ban-concurrent-index-creation-in-transaction" in out


def test_lint_accepts_the_reviewed_findings_only_in_the_bundled_files(tmp_path: Path) -> None:
    bundled = Path(str(shipped_config().parent / "migrations" / "003_workflow_lifecycle.sql"))
    copy = write_migrations(tmp_path / "m", {bundled.name: bundled.read_text()})
    code, out, _ = _sam_db(tmp_path, "lint", str(copy / bundled.name))
    assert code == 3 and "require-concurrent-index-creation" in out
    assert _sam_db(tmp_path, "lint", str(bundled))[0] == 0


def test_lint_skips_a_finding_marked_deliberate_in_the_file(tmp_path: Path) -> None:
    src = write_migrations(
        tmp_path / "m",
        {
            "005_x.sql": "-- sessions is small here; reviewed in PR 12\n"
            "-- squawk-ignore require-concurrent-index-creation\n"
            "CREATE INDEX sessions_model_idx ON sessions (model);\n"
        },
    )
    code, out, _ = _sam_db(tmp_path, "lint", str(src))
    assert code == 0, out


def test_lint_uses_a_configuration_given_with_config(tmp_path: Path) -> None:
    src = write_migrations(
        tmp_path / "m", {"005_x.sql": "CREATE INDEX sessions_model_idx ON sessions (model);\n"}
    )
    own = tmp_path / "squawk.toml"
    own.write_text(
        "assume_in_transaction = true\nexcluded_rules = ["
        '"require-concurrent-index-creation", "require-lock-timeout", "require-statement-timeout"]\n'
    )
    assert _sam_db(tmp_path, "lint", str(src))[0] == 3
    code, out, _ = _sam_db(tmp_path, "lint", "--config", str(own), str(src))
    assert code == 0 and str(own) in out


def test_lint_names_a_missing_file(tmp_path: Path) -> None:
    code, _, err = _sam_db(tmp_path, "lint", "nowhere.sql")
    assert code == 1 and "no such file or folder to lint: nowhere.sql" in err


def test_every_rule_the_shipped_configuration_turns_off_has_a_reason() -> None:
    text = shipped_config().read_text()
    for table in ("excluded_rules", "same_file_rules"):
        body = text.split(f"{table} = [", 1)[1].split("\n]", 1)[0]
        entries = [line.strip() for line in body.splitlines() if line.strip()]
        assert entries, table
        for entry in entries:
            rule, _, reason = entry.partition("#")
            assert re.fullmatch(r'"[a-z-]+",', rule.strip()), entry
            assert len(reason.strip()) > 20, f"{table}: {entry} says no reason"
    accepted = re.findall(r'\[\[sam_db\.accepted\]\]\n(?:.+\n){2}reason = "(.+)"', text)
    assert len(accepted) == text.count("[[sam_db.accepted]]") > 0
    assert all(len(reason) > 20 for reason in accepted)


def test_lint_without_squawk_says_which_extra_installs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sysconfig

    monkeypatch.setattr(sysconfig, "get_path", lambda name: str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigurationError, match=r"pip install 'sam-db\[lint\]'"):
        squawk_binary()
