"""Generated scripts of tricky SQL fragments: sam_db's split equals psql's on PostgreSQL's tokens."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pglast import parser

from sam_db._sqlsplit import SqlSyntaxError, split_statements
from tests.corpora import missing
from tests.psql_reference import StandardStrings, emulate

pytestmark = pytest.mark.slow

FRAGMENTS = [
    # words, including the ones that start special strings or routine bodies
    "SELECT", "x", "e", "E", "b", "X", "U", "N", "name", "a$b", "é", "→",
    "CREATE FUNCTION f() LANGUAGE sql", "CREATE OR REPLACE PROCEDURE p()", "BEGIN ATOMIC",
    "CASE WHEN 1 THEN 2 END", "END",
    # strings of every kind
    "'a'", "'a''b'", "'a\\'", "'\\\\'", "E'a\\'b'", "e'\\\\'", "E'x'\n'\\''", "'a'\n'b'",
    "B'01'", "X'1F'", "U&'d\\0061'", "N'n'", "'a;b'", "E';'", "B'1''0'", "U&'a''b'",
    "'a' -- c;\n 'b;'", "E'\\\\''", "'x'\n\n'y'",
    # identifiers, dollar quotes, comments
    '"q;"', 'U&"x"', '"a""b"', "$$;$$", "$a$ ; $b$ ; $a$", "$é$;$é$", "1$$;$$",
    "-- c;\n", "/* ; /* ; */ */", "/*/ ; */",
    # numbers, parameters, operators
    "1", "1.5e3", ".5", "$1", "::", "+", "-", "/", "*", "=", ",", ".",
    # structure
    ";", ";", ";", "(", ")", "(", ")", "\n",
    # the setting that changes how strings read
    "SET standard_conforming_strings = off;", "SET standard_conforming_strings TO on;",
    "RESET standard_conforming_strings;", "RESET ALL;",
]  # fmt: skip

scripts = st.lists(
    st.tuples(st.sampled_from(FRAGMENTS), st.sampled_from([" ", " ", "\n", ""])),
    min_size=1,
    max_size=30,
).map(lambda parts: "".join(f + sep for f, sep in parts))


@pytest.fixture(scope="module")
def scs() -> StandardStrings:
    if parser.get_postgresql_version() < (18, 0):
        # PostgreSQL 17's scanner did not allow a -- comment inside a string continuation
        pytest.skip("pglast >= 8 (PostgreSQL 18's lexer, which the splitter follows)")
    flag = StandardStrings()
    if not flag.works():
        missing("pglast's scanner does not follow its standard_conforming_strings global")
    return flag


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(script=scripts)
def test_generated_scripts_split_like_psql(scs: StandardStrings, script: str) -> None:
    ref = emulate(script, scs)
    # A backslash left outside a literal is a psql meta-command: psql's business, not a migration's.
    assume(ref.cleaned == script)
    if ref.unterminated:
        with pytest.raises(SqlSyntaxError):
            split_statements(ref.cleaned)
        return
    mine = [(s.start, s.end) for s in split_statements(ref.cleaned)]
    assert mine == ref.spans, ref.cleaned
