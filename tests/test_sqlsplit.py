"""The SQL tokenizer used to run no-transaction migrations one statement at a time."""

from __future__ import annotations

import pytest

from sam_db._sqlsplit import SqlSyntaxError, line_and_column, split_statements


def sqls(script: str) -> list[str]:
    return [s.sql for s in split_statements(script)]


def sqls_with(script: str, *, std: bool) -> list[str]:
    return [s.sql for s in split_statements(script, standard_conforming_strings=std)]


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


# Issue 9, item 7: psql does not end a statement at a ';' inside parentheses.
def test_semicolon_inside_parentheses_does_not_split() -> None:
    script = "CREATE RULE r AS ON INSERT TO y DO INSTEAD (NOTIFY foo; NOTIFY bar); SELECT 1"
    assert sqls(script) == [
        "CREATE RULE r AS ON INSERT TO y DO INSTEAD (NOTIFY foo; NOTIFY bar)",
        "SELECT 1",
    ]


def test_unbalanced_closing_parenthesis_does_not_hide_later_semicolons() -> None:
    # psql never lets the depth go below zero: a stray ')' is an error for the server, not a reason
    # to merge the statements that follow.
    assert sqls("SELECT 1); SELECT (2; 3); SELECT 4") == ["SELECT 1)", "SELECT (2; 3)", "SELECT 4"]


# Issue 9, item 8: after SET standard_conforming_strings = off, '...' strings take backslash escapes.
def test_standard_conforming_strings_off_is_followed() -> None:
    script = r"SET standard_conforming_strings = off; SELECT 'a\';b'; SELECT 2;"
    assert sqls(script) == [
        "SET standard_conforming_strings = off",
        r"SELECT 'a\';b'",
        "SELECT 2",
    ]


@pytest.mark.parametrize(
    "setting",
    [
        "SET standard_conforming_strings TO 'off'",
        "SET SESSION standard_conforming_strings = false",
        "set STANDARD_CONFORMING_STRINGS to of",
        "SET standard_conforming_strings = 0",
    ],
)
def test_spellings_of_turning_standard_conforming_strings_off(setting: str) -> None:
    assert sqls(setting + r"; SELECT 'a\';b'; SELECT 2") == [setting, r"SELECT 'a\';b'", "SELECT 2"]


def test_reset_and_set_on_restore_standard_strings() -> None:
    for back in (
        "RESET standard_conforming_strings",
        "SET standard_conforming_strings = on",
        "SET standard_conforming_strings TO DEFAULT",
        "RESET ALL",
    ):
        script = f"SET standard_conforming_strings = off; {back}; SELECT 'a\\'; SELECT 2"
        assert sqls(script)[2:] == ["SELECT 'a\\'", "SELECT 2"], back


def test_session_default_of_standard_conforming_strings_can_be_off() -> None:
    script = r"SELECT 'a\';b'; SELECT 2"
    assert sqls_with(script, std=False) == [r"SELECT 'a\';b'", "SELECT 2"]
    assert sqls_with("RESET ALL; " + script, std=False)[1:] == [r"SELECT 'a\';b'", "SELECT 2"]


def test_set_local_lasts_until_the_end_of_its_transaction() -> None:
    script = (
        "BEGIN; SET LOCAL standard_conforming_strings = off; SELECT 'a\\';b'; COMMIT; "
        "SELECT 'c\\'; SELECT 2"
    )
    assert sqls(script)[2:] == ["SELECT 'a\\';b'", "COMMIT", "SELECT 'c\\'", "SELECT 2"]


def test_rollback_undoes_a_session_set_made_in_its_transaction() -> None:
    script = "BEGIN; SET standard_conforming_strings = off; ROLLBACK; SELECT 'c\\'; SELECT 2"
    assert sqls(script)[3:] == ["SELECT 'c\\'", "SELECT 2"]


def test_bit_hex_and_unicode_strings_take_no_backslash_escapes() -> None:
    # Even with standard_conforming_strings off, B'', X'' and U&'' strings end at the next quote.
    script = "SELECT B'1\\', X'F\\', U&'d\\0061t\\'; SELECT 2"
    assert sqls_with(script, std=False) == ["SELECT B'1\\', X'F\\', U&'d\\0061t\\'", "SELECT 2"]


def test_string_continued_on_a_new_line_keeps_its_escape_rules() -> None:
    # E'a' followed by a newline and '...' is one literal, lexed as an E'' string throughout.
    script = "SELECT E'a'\n'b\\';c'; SELECT 2"
    assert sqls(script) == ["SELECT E'a'\n'b\\';c'", "SELECT 2"]


def test_word_ending_in_e_does_not_start_an_escape_string() -> None:
    assert sqls("SELECT name'x\\'; SELECT 2") == ["SELECT name'x\\'", "SELECT 2"]


def test_dollar_quote_after_a_number_and_inside_identifiers() -> None:
    assert sqls("SELECT 1$$;$$; SELECT a$b$; SELECT 2") == [
        "SELECT 1$$;$$",
        "SELECT a$b$",
        "SELECT 2",
    ]


def test_non_ascii_characters_are_identifier_characters() -> None:
    # Every non-ASCII character may be part of an identifier (and of a dollar-quote tag).
    assert sqls("SELECT 1 AS a→$x$; SELECT $é$;$é$; SELECT 2") == [
        "SELECT 1 AS a→$x$",
        "SELECT $é$;$é$",
        "SELECT 2",
    ]


def test_begin_atomic_counts_only_in_create_function_or_procedure() -> None:
    # 'begin' and 'atomic' are unreserved words: a column and its alias here, not a routine body.
    assert sqls("SELECT begin atomic FROM t; SELECT 2") == [
        "SELECT begin atomic FROM t",
        "SELECT 2",
    ]
    proc = "CREATE OR REPLACE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END"
    assert sqls(proc + "; SELECT 2") == [proc, "SELECT 2"]


def test_begin_in_a_routine_holds_semicolons_whatever_follows_it_as_psql_does() -> None:
    # psql counts BEGIN itself in CREATE FUNCTION/PROCEDURE, so a glued "BEGIN ATOMICSET" still
    # holds the ';' before END; found by the generated-scripts differential test.
    head = "CREATE FUNCTION f() LANGUAGE sql BEGIN ATOMICSET x = 1; END"
    assert sqls(head + "; SELECT 2") == [head, "SELECT 2"]


def test_statement_offsets_cover_its_code() -> None:
    script = "-- c\nSELECT 1 /* x */ ;\n  SELECT (2)"
    stmts = split_statements(script)
    assert [script[s.start : s.end] for s in stmts] == ["SELECT 1", "SELECT (2)"]


def test_number_with_an_identifier_glued_on_is_one_token() -> None:
    # The server reads 1.5e3$$ as one (rejected) token, not 1.5e3 then a dollar quote.
    assert sqls("SELECT 1.5e3$$; SELECT 2") == ["SELECT 1.5e3$$", "SELECT 2"]


def test_parameter_then_escape_string() -> None:
    # PostgreSQL 18 reads $1E'...' as the parameter $1, then an E'' string.
    assert sqls("SELECT $1E'a\\';b'; SELECT 2") == ["SELECT $1E'a\\';b'", "SELECT 2"]
