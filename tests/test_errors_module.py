"""sam_db.errors: one list of public errors, shown under the public module; the driver-error
translator recognises a missing extension from a real server's error."""

from __future__ import annotations

import asyncpg
import pytest

import sam_db
from sam_db import errors
from sam_db._driver_errors import missing_extension, write_error


def _error_classes() -> set[type[BaseException]]:
    found: set[type[BaseException]] = set()
    todo: list[type[BaseException]] = [errors.SamDbError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("sam_db.errors") and cls not in found:
            found.add(cls)
            todo.extend(cls.__subclasses__())
    return found


def test_every_error_class_is_in___all__() -> None:
    assert {cls.__name__ for cls in _error_classes()} == set(errors.__all__)


def test___all__lists_each_name_once() -> None:
    assert len(errors.__all__) == len(set(errors.__all__))


def test_errors_are_shown_under_sam_db_errors() -> None:
    assert {getattr(errors, name).__module__ for name in errors.__all__} == {"sam_db.errors"}
    assert repr(errors.InvalidIndexError) == "<class 'sam_db.errors.InvalidIndexError'>"


def test_the_module_docstring_shows_every_error_in_the_hierarchy() -> None:
    assert errors.__doc__ is not None
    for name in errors.__all__:
        assert f" {name}" in errors.__doc__, name


def test_sam_db_errors_is_the_errors_package() -> None:
    assert sam_db.errors is errors


def test_invalid_index_error_keeps_file_indexes_statement_line_and_sqlstate() -> None:
    error = errors.InvalidIndexError.left_behind(
        "x failed.", file="f.sql", indexes=["i"], statement="CREATE", line=3, sqlstate="23505"
    )
    assert (error.file, error.indexes, error.statement, error.line, error.sqlstate) == (
        "f.sql",
        ["i"],
        "CREATE",
        3,
        "23505",
    )
    assert isinstance(error, errors.MigrationFailedError)
    assert "DROP INDEX CONCURRENTLY" in str(error)


@pytest.mark.parametrize(
    ("error", "maybe_applied"),
    [
        (errors.ConnectionLostError.lost_reading("X"), False),
        (errors.ConnectionLostError.lost_writing("X"), True),
        (errors.ConnectionLostError.lost_committing("X"), True),
        (errors.ConnectionLostError.lost_in_transaction(None, committed=True), True),
        (errors.ConnectionLostError.lost_in_transaction("X", committed=False), False),
        (errors.ConnectionLostError.cannot_connect("s", "X", committed=False), False),
        (errors.ConnectionLostError.ended_in_a_row(3, "X", committed=True), True),
    ],
)
def test_connection_lost_constructors_say_whether_a_write_may_have_applied(
    error: errors.ConnectionLostError, maybe_applied: bool
) -> None:
    assert error.maybe_applied is maybe_applied


def test_connection_lost_says_when_statements_before_it_were_committed() -> None:
    before = "statements before it were committed"
    assert before in str(errors.ConnectionLostError.cannot_connect("s", "X", committed=True))
    assert before not in str(errors.ConnectionLostError.cannot_connect("s", "X", committed=False))


def test_the_store_s_missing_pgvector_error_says_how_to_install_it() -> None:
    error = errors.ExtensionMissingError.for_store()
    assert error.extension == "vector"
    assert "apt install postgresql-<major>-pgvector" in str(error)
    assert "sam_db.migrate" in str(error)


async def _server_error(dsn: str, sql: str) -> asyncpg.PostgresError:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    except asyncpg.PostgresError as exc:
        return exc
    finally:
        await conn.close()
    raise AssertionError(f"{sql} did not fail")


async def test_a_missing_extension_is_recognised_from_the_server_s_error(db_dsn: str) -> None:
    exc = await _server_error(db_dsn, "CREATE EXTENSION sam_db_no_such_extension")
    assert missing_extension(exc) == "sam_db_no_such_extension"


async def test_other_server_errors_are_no_missing_extension(db_dsn: str) -> None:
    exc = await _server_error(db_dsn, "CREATE TABLE t (x no_such_type)")
    assert missing_extension(exc) is None


async def test_a_write_that_met_a_deleted_collection_is_collection_not_found(db_dsn: str) -> None:
    exc = await _server_error(
        db_dsn,
        "CREATE TABLE c (id int PRIMARY KEY); CREATE TABLE e (c int REFERENCES c);"
        "INSERT INTO e VALUES (1)",
    )
    assert isinstance(write_error(exc), errors.CollectionNotFoundError)
