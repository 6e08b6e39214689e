"""PostgreSQL's lexical rules, as far as splitting a script into statements needs them.

Follows the server's scanner (``scan.l``): every non-ASCII character may be part of an identifier or a
dollar-quote tag; ``'...'`` strings take backslash escapes only when ``standard_conforming_strings`` is
off, ``E''`` strings always, ``B''``, ``X''`` and ``U&''`` strings never; a string continued on a new
line (``'a'`` newline ``'b'``) keeps the rules it started with; ``/* */`` comments nest; a number
swallows the identifier characters that follow it (the server rejects such junk, without splitting).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

# Character classes written as "not these ASCII characters": a letter, '_' or any non-ASCII
# character starts an identifier or a dollar-quote tag; digits (and '$' in identifiers) may follow.
# A positive class spanning every non-ASCII code point costs `re` a noticeable time to compile at
# import, and every `sam-db` command imports this module.
_START = r"[^\x00-@\[-^`{-\x7f]"
_CONT = r"[^\x00-/:-@\[-^`{-\x7f]"
_CONT_OR_DOLLAR = r"[^\x00-#%-/:-@\[-^`{-\x7f]"
_SPACE = " \t\n\r\f\v"
_JUNK = f"(?:{_START}{_CONT_OR_DOLLAR}*)?"  # an identifier glued to a number: one (bad) token

# One alternative per kind of token, tried at a token's first character. The E, B/X and U& prefixes
# come before words: a word that merely ends in e, b or x (``name'x'``) is matched whole as a word.
_TOKEN = re.compile(
    rf"""
    (?P<space>[{_SPACE}]+)
    |(?P<comment>--[^\n\r]*)
    |(?P<block>/\*)
    |(?P<estring>[eE]')
    |(?P<bstring>[bBxX]')
    |(?P<ustring>[uU]&')
    |(?P<uident>[uU]&")
    |(?P<word>{_START}{_CONT_OR_DOLLAR}*)
    |(?P<number>[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)
    |(?P<string>')
    |(?P<ident>")
    |(?P<dollar>\$(?:{_START}{_CONT}*)?\$)
    |(?P<param>\$[0-9]+)
    |(?P<other>.)
    """,
    re.X | re.S,
)

# What may separate two parts of one string literal: spaces or -- comments including a newline.
_CONTINUATION = re.compile(r"(?:[ \t\f\v]|--[^\n\r]*)*[\n\r](?:[ \t\n\r\f\v]|--[^\n\r]*[\n\r])*'")
# After a number's digits: an exponent, or an identifier glued on (which may itself begin with e and
# swallow the exponent's digits and a '$'); the server's scanner takes the longer.
_EXPONENT = re.compile(rf"(?:[eE][-+]?[0-9][0-9_]*)?{_JUNK}")
_GLUED = re.compile(_JUNK)
_E_INSIDE = re.compile(r"[^\\']*")
_COMMENT_MARK = re.compile(r"/\*|\*/")


class Token(NamedTuple):
    """A significant token (not space or comment): its kind, its text and where it starts and ends."""

    kind: str  # word, number, string, ident, dollar, param, other
    text: str
    start: int
    end: int


class SqlSyntaxError(ValueError):
    """The script ends inside a string, quoted identifier, dollar quote or comment."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(f"{message} (starting on line {line})")
        self.line = line


def line_of(script: str, offset: int) -> int:
    """1-based line number of ``offset`` in ``script``."""
    return script.count("\n", 0, offset) + 1


class Lexer:
    """Yields the significant tokens of a script; ``standard_strings`` may change between tokens.

    A statement such as ``SET standard_conforming_strings = off`` changes how the server reads the
    statements sent after it, so the splitter updates ``standard_strings`` as it goes.
    """

    def __init__(self, script: str, *, standard_strings: bool = True) -> None:
        self.script = script
        self.standard_strings = standard_strings

    def __iter__(self) -> Iterator[Token]:
        script, i, n = self.script, 0, len(self.script)
        while i < n:
            m = _TOKEN.match(script, i)
            assert m is not None  # the last alternative matches any character
            kind = m.lastgroup or "other"
            if kind in ("space", "comment"):
                i = m.end()
                continue
            if kind == "block":
                i = skip_block_comment(script, i)
                continue
            if kind in ("estring", "bstring", "ustring", "string"):
                escapes = kind == "estring" or (kind == "string" and not self.standard_strings)
                end = self._string(m.end() - 1, escapes=escapes, doubling=kind != "bstring")
                yield Token("string", script[i:end], i, end)
                i = end
                continue
            if kind in ("ident", "uident"):
                end = self._quoted_ident(m.end() - 1)
                yield Token("ident", script[i:end], i, end)
                i = end
                continue
            if kind == "dollar":
                close = script.find(m.group(), m.end())
                if close < 0:
                    raise SqlSyntaxError("unterminated dollar-quoted string", line_of(script, i))
                end = close + len(m.group())
                yield Token("dollar", script[i:end], i, end)
                i = end
                continue
            end = m.end()
            if kind == "number":
                end = max(_EXPONENT.match(script, end).end(), _GLUED.match(script, end).end())  # type: ignore[union-attr]
            yield Token(kind, script[i:end], i, end)
            i = end

    def _string(self, quote: int, *, escapes: bool, doubling: bool) -> int:
        """End of the literal whose (first) opening quote is at ``quote``, continuations included."""
        script = self.script
        j = quote + 1
        while True:
            j = self._string_part(j, escapes=escapes, doubling=doubling, start=quote)
            m = _CONTINUATION.match(script, j)
            if m is None:
                return j
            j = m.end()

    def _string_part(self, j: int, *, escapes: bool, doubling: bool, start: int) -> int:
        script, n = self.script, len(self.script)
        while True:
            if escapes:
                j = _E_INSIDE.match(script, j).end()  # type: ignore[union-attr]
                if j < n and script[j] == "\\":
                    j += 2
                    continue
            else:
                j = script.find("'", j)
                if j < 0:
                    j = n
            if j >= n:
                raise SqlSyntaxError("unterminated string literal", line_of(script, start))
            # script[j] is a quote: doubled, it stands for one quote inside the string.
            if doubling and script.startswith("''", j):
                j += 2
                continue
            return j + 1

    def _quoted_ident(self, quote: int) -> int:
        script, j = self.script, quote + 1
        while True:
            j = script.find('"', j)
            if j < 0:
                raise SqlSyntaxError("unterminated quoted identifier", line_of(script, quote))
            if script.startswith('""', j):
                j += 2
                continue
            return j + 1


def skip_block_comment(script: str, i: int) -> int:
    """End of the (nested) ``/* */`` comment that starts at ``i``."""
    depth, j = 0, i
    while (m := _COMMENT_MARK.search(script, j)) is not None:
        depth += 1 if m.group() == "/*" else -1
        j = m.end()
        if depth == 0:
            return j
    raise SqlSyntaxError("unterminated /* comment", line_of(script, i))
