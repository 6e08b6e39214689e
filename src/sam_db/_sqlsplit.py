"""Splits a script into statements where psql would, for no-transaction files and error messages.

Needed for non-transactional migrations: asyncpg sends a multi-statement string as one simple query,
which PostgreSQL runs as one implicit transaction, so ``CREATE INDEX CONCURRENTLY`` must be sent alone.
The tokens are PostgreSQL's (see ``_sqllex``); the boundaries are psql's: a ``;`` ends a statement unless
it is inside parentheses or inside the ``BEGIN ATOMIC ... END`` body of ``CREATE [OR REPLACE]
FUNCTION/PROCEDURE``. ``SET``/``RESET standard_conforming_strings`` statements are followed, since they
change how the server reads the statements sent after them.
"""

from __future__ import annotations

from typing import NamedTuple

from ._sqllex import Lexer, SqlSyntaxError, Token, line_of

__all__ = ["SqlSyntaxError", "Statement", "has_statements", "line_and_column", "split_statements"]

_ROUTINE_HEADS = (
    ("CREATE", "FUNCTION"),
    ("CREATE", "PROCEDURE"),
    ("CREATE", "OR", "REPLACE", "FUNCTION"),
    ("CREATE", "OR", "REPLACE", "PROCEDURE"),
)
_RESETS = {("RESET", "ALL"), ("RESET", "STANDARD_CONFORMING_STRINGS"), ("DISCARD", "ALL")}
_HEAD_LEN = 8  # leading tokens kept per statement: enough to recognise SET, RESET and routine heads


class Statement(NamedTuple):
    """One statement of a script: its text (without the final ``;``) and 1-based first line.

    ``start``/``end`` are the offsets in the script of its first token and just past its last one.
    """

    sql: str
    line: int
    start: int = 0
    end: int = 0


def split_statements(script: str, *, standard_conforming_strings: bool = True) -> list[Statement]:
    """Split ``script`` into statements, dropping empty ones and comment-only ones.

    ``standard_conforming_strings`` is the session's setting when the script starts (the server's
    default is on); the script's own ``SET``/``RESET`` of it are followed from there.
    """
    lexer = Lexer(script, standard_strings=standard_conforming_strings)
    strings = _StandardStrings(standard_conforming_strings)
    out: list[Statement] = []
    current = _Open()
    chunk_start = 0
    for tok in lexer:
        if tok.text == ";" and tok.kind == "other" and current.depth == 0 and current.atomic == 0:
            _emit(out, script, chunk_start, tok.start, current)
            strings.after(current.head)
            lexer.standard_strings = strings.value
            current = _Open()
            chunk_start = tok.end
            continue
        current.add(tok)
    _emit(out, script, chunk_start, len(script), current)
    return out


def has_statements(script: str) -> bool:
    """False when ``script`` holds only spaces, comments and ``;``: nothing for the server to run.

    Such a script must not be sent: asyncpg fails on the server's empty-query answer. Reads only up
    to the first token; a script that does not lex is left for the server to report.
    """
    try:
        return any(tok.text != ";" for tok in Lexer(script))
    except SqlSyntaxError:
        return True


class _Open:
    """The statement being read: its leading tokens, parenthesis depth and ``BEGIN ATOMIC`` depth."""

    __slots__ = ("atomic", "depth", "end", "head", "start")

    def __init__(self) -> None:
        self.head: list[Token] = []
        self.depth = 0  # psql's paren_depth: a ';' inside parentheses does not end the statement
        self.atomic = 0  # > 0 inside BEGIN ATOMIC ... END, where CASE ... END nests
        self.start = -1
        self.end = -1

    def add(self, tok: Token) -> None:
        if self.start < 0:
            self.start = tok.start
        self.end = tok.end
        if len(self.head) < _HEAD_LEN:
            self.head.append(tok)
        word = tok.text.upper() if tok.kind == "word" else ""
        if tok.kind == "other":
            if tok.text == "(":
                self.depth += 1
            elif tok.text == ")" and self.depth > 0:  # psql never lets the depth go below zero
                self.depth -= 1
        elif word and self.depth == 0 and self._is_routine():
            # psql counts BEGIN itself, whatever follows it (psqlscan.l): BEGIN ATOMIC is the only
            # valid use, and a mistyped "BEGIN ATOMICX" still holds the ';' that psql would hold.
            if word == "BEGIN" or (self.atomic and word == "CASE"):
                self.atomic += 1
            elif self.atomic and word == "END":
                self.atomic -= 1

    def _is_routine(self) -> bool:
        # Like psql, look at the statement's first words only (not strings, numbers, symbols).
        words = tuple(t.text.upper() for t in self.head if t.kind == "word")[:4]
        return any(words[: len(head)] == head for head in _ROUTINE_HEADS)


def _emit(out: list[Statement], script: str, start: int, end: int, stmt: _Open) -> None:
    if stmt.start < 0:  # nothing but spaces and comments
        return
    out.append(
        Statement(
            sql=script[start:end].strip(),
            line=line_of(script, stmt.start),
            start=stmt.start,
            end=stmt.end,
        )
    )


class _StandardStrings:
    """Follows ``standard_conforming_strings`` through a script's SET, RESET and transaction statements.

    A session ``SET`` lasts until changed (and is undone by a ROLLBACK of its transaction); ``SET
    LOCAL`` lasts until the end of a transaction the script began. Changes made any other way (a
    ``set_config`` call, a function's ``SET`` clause) are not seen.
    """

    def __init__(self, initial: bool) -> None:
        self.initial = initial
        self.session = initial
        self.value = initial
        self.saved: bool | None = None  # the session value when the script's open transaction began

    def after(self, head: list[Token]) -> None:
        """Update the setting after the statement that starts with ``head`` ran."""
        words = [_word(t) for t in head]
        first, second = [*words, "", ""][:2]
        if first == "BEGIN" or (first == "START" and second == "TRANSACTION"):
            if self.saved is None:
                self.saved = self.session
        elif first in ("COMMIT", "END") and second != "PREPARED":
            self.saved = None
            self.value = self.session
        elif first in ("ROLLBACK", "ABORT") and second not in ("TO", "PREPARED"):
            if self.saved is not None:
                self.session = self.saved
            self.saved = None
            self.value = self.session
        elif (first, second) in _RESETS:
            self._set(self.initial, local=False)
        elif first == "SET":
            self._after_set(head[1:])

    def _after_set(self, rest: list[Token]) -> None:
        local = False
        if rest and _word(rest[0]) in ("SESSION", "LOCAL"):
            local = _word(rest[0]) == "LOCAL"
            rest = rest[1:]
        if len(rest) < 3 or _word(rest[0]) != "STANDARD_CONFORMING_STRINGS":
            return
        if _word(rest[1]) != "TO" and rest[1].text != "=":
            return
        value = self.initial if _word(rest[2]) == "DEFAULT" else _parse_bool(rest[2])
        if value is not None:
            self._set(value, local=local)

    def _set(self, value: bool, *, local: bool) -> None:
        if local:
            if self.saved is not None:  # outside a transaction SET LOCAL has no effect
                self.value = value
        else:
            self.session = self.value = value


def _word(tok: Token) -> str:
    """A word upper-cased, a quoted identifier unquoted (setting names ignore case), else the text."""
    if tok.kind == "word":
        return tok.text.upper()
    if tok.kind == "ident" and tok.text.startswith('"'):
        return tok.text[1:-1].replace('""', '"').upper()
    return tok.text


def _parse_bool(tok: Token) -> bool | None:
    """PostgreSQL's reading of a boolean setting's value (``off``, ``'false'``, ``0``, ``n``...)."""
    text = tok.text
    if tok.kind == "string":
        if not text.startswith("'"):
            return None  # E'', U&'' and the like: too unusual to follow
        text = text[1:-1]
    elif tok.kind not in ("word", "number"):
        return None
    v = text.strip().lower()
    if v in ("1", "on") or (v and ("true".startswith(v) or "yes".startswith(v))):
        return True
    if v in ("0", "of", "off") or (v and ("false".startswith(v) or "no".startswith(v))):
        return False
    return None


def line_and_column(script: str, position: int) -> tuple[int, int]:
    """1-based line and column of PostgreSQL's 1-based character ``position`` in ``script``."""
    offset = max(position - 1, 0)
    line = line_of(script, offset)
    col = offset - (script.rfind("\n", 0, offset) + 1) + 1
    return line, col
