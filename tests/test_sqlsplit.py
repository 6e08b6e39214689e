"""The SQL tokenizer used to run no-transaction migrations one statement at a time."""

from __future__ import annotations

import pytest

from sam_db._sqlsplit import SqlSyntaxError, line_and_column, split_statements


def sqls(script: str) -> list[str]:
    return [s.sql for s in split_statements(script)]


def test_splits_on_semicolons() -> None:
    assert sqls("SELECT 1; SELECT 2;") == ["SELECT 1", "SELECT 2"]


def test_last_statement_needs_no_semicolon() -> None:
    assert sqls("SELECT 1;\nSELECT 2") == ["SELECT 1", "SELECT 2"]


def test_semicolon_inside_string_does_not_split() -> None:
    assert sqls("INSERT INTO t VALUES ('a;b''c;'); SELECT 1") == [
        "INSERT INTO t VALUES ('a;b''c;')",
        "SELECT 1",
    ]


def test_escape_string_with_backslash_quote() -> None:
    assert sqls(r"SELECT E'it\'s; fine'; SELECT 2") == [r"SELECT E'it\'s; fine'", "SELECT 2"]


def test_quoted_identifier_with_semicolon() -> None:
    assert sqls('CREATE TABLE "a;b" (x int); SELECT 1') == [
        'CREATE TABLE "a;b" (x int)',
        "SELECT 1",
    ]


def test_dollar_quoted_function_body() -> None:
    script = "CREATE FUNCTION f() RETURNS int AS $fn$ BEGIN RETURN 1; END $fn$ LANGUAGE plpgsql; SELECT 1"
    assert len(split_statements(script)) == 2


def test_anonymous_dollar_quote() -> None:
    assert len(split_statements("DO $$ BEGIN PERFORM 1; END $$; SELECT 1")) == 2


def test_nested_block_comment() -> None:
    assert sqls("/* a; /* b; */ c; */ SELECT 1; SELECT 2") == [
        "/* a; /* b; */ c; */ SELECT 1",
        "SELECT 2",
    ]


def test_line_comment_with_semicolon() -> None:
    assert sqls("SELECT 1 -- not; a split\n; SELECT 2") == ["SELECT 1 -- not; a split", "SELECT 2"]


def test_comment_only_chunks_are_dropped() -> None:
    assert sqls("-- header\n;\n/* nothing */;\nSELECT 1;\n-- trailer\n") == ["SELECT 1"]


def test_begin_atomic_body_is_one_statement() -> None:
    script = (
        "CREATE FUNCTION g(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC "
        "SELECT CASE WHEN x > 0 THEN 1 ELSE 2 END; SELECT 3; END; SELECT 4"
    )
    assert len(split_statements(script)) == 2


def test_statement_line_is_its_first_code_line() -> None:
    stmts = split_statements("-- c\n\nSELECT 1;\n\n  SELECT\n 2;")
    assert [s.line for s in stmts] == [3, 5]


def test_unterminated_string_is_an_error() -> None:
    with pytest.raises(SqlSyntaxError, match="unterminated string"):
        split_statements("SELECT 'oops;")


def test_unterminated_dollar_quote_is_an_error() -> None:
    with pytest.raises(SqlSyntaxError, match="dollar"):
        split_statements("DO $x$ BEGIN")


def test_line_and_column_of_position() -> None:
    assert line_and_column("SELECT 1;\nSELEC 2;", 11) == (2, 1)
