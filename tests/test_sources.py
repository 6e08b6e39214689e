"""Finding migration files: naming, ordering, merging sources, checksums."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import pytest

from sam_db._checksum import checksum
from sam_db._sources import discover
from sam_db.errors import DuplicateMigrationError, MigrationFileError
from tests.helpers import write_migrations


def test_bundled_migrations_are_001_to_005_in_order() -> None:
    found = discover()
    assert [(m.version, m.name) for m in found] == [
        ("001", "initial_schema"),
        ("002", "session_metrics"),
        ("003", "workflow_lifecycle"),
        ("004", "memory_system"),
        ("005", "memory_text_search"),
    ]


def test_every_bundled_migration_has_a_rollback() -> None:
    assert all(m.rollback_sql is not None for m in discover())


def test_versions_order_numerically_not_alphabetically(tmp_path: Path) -> None:
    write_migrations(tmp_path, {"9_nine.sql": "", "10_ten.sql": "", "0100_hundred.sql": ""})
    assert [m.version for m in discover([tmp_path], include_bundled=False)] == ["9", "10", "0100"]


def test_extra_source_merges_with_bundled(tmp_path: Path) -> None:
    write_migrations(tmp_path, {"006_my_feature.sql": "SELECT 1;"})
    assert [m.version for m in discover([tmp_path])][-2:] == ["005", "006"]


def test_package_resource_source_is_accepted() -> None:
    folder = resources.files("sam_db") / "migrations"
    assert len(discover([folder], include_bundled=False)) == 5


def test_same_version_in_two_sources_is_an_error(tmp_path: Path) -> None:
    write_migrations(tmp_path, {"004_clash.sql": "SELECT 1;"})
    with pytest.raises(DuplicateMigrationError, match="004"):
        discover([tmp_path])


def test_same_number_with_different_padding_is_an_error(tmp_path: Path) -> None:
    write_migrations(tmp_path, {"5_a.sql": "", "005_b.sql": ""})
    with pytest.raises(DuplicateMigrationError):
        discover([tmp_path], include_bundled=False)


def test_badly_named_sql_file_is_an_error(tmp_path: Path) -> None:
    write_migrations(tmp_path, {"add_things.sql": ""})
    with pytest.raises(MigrationFileError, match=r"NNN_name\.sql"):
        discover([tmp_path], include_bundled=False)


def test_rollback_without_migration_is_an_error(tmp_path: Path) -> None:
    write_migrations(tmp_path, {"007_x.rollback.sql": ""})
    with pytest.raises(MigrationFileError, match=r"007_x\.rollback\.sql"):
        discover([tmp_path], include_bundled=False)


def test_missing_source_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MigrationFileError, match="not a folder"):
        discover([tmp_path / "nope"])


def test_non_sql_files_are_ignored(tmp_path: Path) -> None:
    write_migrations(tmp_path, {"README.md": "# notes", "001_a.sql": ""})
    assert [m.name for m in discover([tmp_path], include_bundled=False)] == ["a"]


def test_checksum_is_sha256_of_the_file() -> None:
    text = "CREATE TABLE t (x int);\n"
    assert checksum(text) == hashlib.sha256(text.encode()).hexdigest()


def test_checksum_ignores_line_ending_style() -> None:
    assert checksum("SELECT 1;\r\nSELECT 2;\r\n") == checksum("SELECT 1;\nSELECT 2;\n")


def test_no_transaction_directive_on_first_line(tmp_path: Path) -> None:
    write_migrations(
        tmp_path,
        {
            "001_a.sql": "-- sam_db: no-transaction\nCREATE INDEX CONCURRENTLY i ON t (x);",
            "002_b.sql": "SELECT 1;",
        },
    )
    assert [m.transactional for m in discover([tmp_path], include_bundled=False)] == [False, True]


def test_your_migration_with_a_bundled_version_says_how_to_renumber_it(tmp_path: Path) -> None:
    write_migrations(tmp_path, {"005_mine.sql": "SELECT 1;"})
    with pytest.raises(DuplicateMigrationError) as caught:
        discover([tmp_path])
    text = str(caught.value)
    assert "bundled 005_memory_text_search.sql" in text and "1005_mine.sql" in text
    assert "UPDATE schema_migrations SET version = '1005' WHERE version = '005'" in text
