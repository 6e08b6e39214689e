"""A small SQL tokenizer that splits a script into statements the way psql does.

Needed for non-transactional migrations: asyncpg sends a multi-statement string as one simple query,
which PostgreSQL runs as one implicit transaction, so ``CREATE INDEX CONCURRENTLY`` must be sent alone.
Handles '' strings, E'' strings with backslash escapes, "quoted" identifiers, $tag$ dollar quotes,
-- and nested /* */ comments, and ``BEGIN ATOMIC ... END`` function bodies.
"""

import re
from typing import NamedTuple

# PostgreSQL identifiers: a letter (any script) or _, then letters, digits, _ (and $ outside tags).
_DOLLAR_TAG = re.compile(r"\$(?:[^\W\d]\w*)?\$")
_WORD = re.compile(r"[^\W\d][\w$]*")


class Statement(NamedTuple):
    """One statement of a script: its text (without the final ``;``) and 1-based first line."""

    sql: str
    line: int


class SqlSyntaxError(ValueError):
    """The script ends inside a string, quoted identifier, dollar quote or comment."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(f"{message} (starting on line {line})")
        self.line = line


def split_statements(script: str) -> list[Statement]:
    """Split ``script`` into statements, dropping empty ones and comment-only ones."""
    out: list[Statement] = []
    i, n = 0, len(script)
    start = 0
    atomic_depth = 0  # > 0 inside BEGIN ATOMIC ... END, where ';' does not end the statement
    prev_word = ""
    has_code = False
    while i < n:
        c = script[i]
        if c == "-" and script.startswith("--", i):
            j = script.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if c == "/" and script.startswith("/*", i):
            i = _skip_block_comment(script, i)
            continue
        if c == "'":
            escapes = i > 0 and script[i - 1] in "eE" and not _is_word_char(script, i - 2)
            i = _skip_quoted(script, i, "'", backslash=escapes)
            has_code = True
            continue
        if c == '"':
            i = _skip_quoted(script, i, '"', backslash=False)
            has_code = True
            continue
        if c == "$" and not _is_word_char(script, i - 1):
            m = _DOLLAR_TAG.match(script, i)
            if m:
                tag = m.group(0)
                end = script.find(tag, m.end())
                if end < 0:
                    raise SqlSyntaxError("unterminated dollar-quoted string", _line_of(script, i))
                i = end + len(tag)
                has_code = True
                continue
        if c == ";" and atomic_depth == 0:
            _emit(out, script, start, i)
            i += 1
            start = i
            has_code = False
            prev_word = ""
            continue
        m = _WORD.match(script, i) if (c.isalpha() or c == "_") else None
        if m and not _is_word_char(script, i - 1):
            word = m.group(0).upper()
            if (word == "ATOMIC" and prev_word == "BEGIN") or (atomic_depth and word == "CASE"):
                atomic_depth += 1
            elif atomic_depth and word == "END":
                atomic_depth -= 1
            prev_word = word
            has_code = True
            i = m.end()
            continue
        if not c.isspace():
            has_code = True
        i += 1
    if has_code:
        _emit(out, script, start, n)
    return out


def _emit(out: list[Statement], script: str, start: int, end: int) -> None:
    text = script[start:end]
    code_at = _first_code(text)
    if code_at < 0:
        return
    out.append(Statement(sql=text.strip(), line=_line_of(script, start + code_at)))


def _first_code(text: str) -> int:
    """Offset of the first character of ``text`` that is not a comment or whitespace, or -1."""
    i, n = 0, len(text)
    while i < n:
        if text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
        elif text.startswith("/*", i):
            i = _skip_block_comment(text, i)
        elif text[i].isspace():
            i += 1
        else:
            return i
    return -1


def _skip_block_comment(script: str, i: int) -> int:
    depth, j, n = 0, i, len(script)
    while j < n:
        if script.startswith("/*", j):
            depth += 1
            j += 2
        elif script.startswith("*/", j):
            depth -= 1
            j += 2
            if depth == 0:
                return j
        else:
            j += 1
    raise SqlSyntaxError("unterminated /* comment", _line_of(script, i))


def _skip_quoted(script: str, i: int, quote: str, *, backslash: bool) -> int:
    j, n = i + 1, len(script)
    while j < n:
        ch = script[j]
        if backslash and ch == "\\":
            j += 2
            continue
        if ch == quote:
            if j + 1 < n and script[j + 1] == quote:  # doubled quote is an escaped quote
                j += 2
                continue
            return j + 1
        j += 1
    kind = "quoted identifier" if quote == '"' else "string literal"
    raise SqlSyntaxError(f"unterminated {kind}", _line_of(script, i))


def _is_word_char(script: str, i: int) -> bool:
    if i < 0:
        return False
    ch = script[i]
    return ch.isalnum() or ch in "_$"


def _line_of(script: str, offset: int) -> int:
    return script.count("\n", 0, offset) + 1


def line_and_column(script: str, position: int) -> tuple[int, int]:
    """1-based line and column of PostgreSQL's 1-based character ``position`` in ``script``."""
    offset = max(position - 1, 0)
    line = _line_of(script, offset)
    col = offset - (script.rfind("\n", 0, offset) + 1) + 1
    return line, col
