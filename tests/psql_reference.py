"""A reference for where psql ends statements, built on PostgreSQL's own lexer (pglast = libpg_query).

``emulate(text)`` reads a psql script the way psql does: tokens from ``pglast.parser.scan`` (the
server's scanner, with ``standard_conforming_strings`` as the script last set it), statements ended
by a ``;`` outside parentheses and outside psql's ``BEGIN ... END`` tracking in ``CREATE [OR REPLACE]
FUNCTION/PROCEDURE``, psql meta-commands (``\\...`` to the end of the line) cut out and ``COPY ...
FROM stdin`` data skipped. It returns the script without meta-commands and data (what a migration
could contain) and each statement's span there, to compare with ``sam_db._sqlsplit``.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass, field

import pglast
from pglast import ast, enums, parser

_COMMENTS = {"SQL_COMMENT", "C_COMMENT"}
_COPY_STDIN = re.compile(r"^\s*\\?copy\b.*\bfrom\s+p?stdin\b", re.I | re.S)
_META_LINE = re.compile(r"^[ \t]*\\", re.M)
_UNTERMINATED = "unterminated"
_CONTINUES = re.compile(r"(?:[ \t\n\r\f\v]|--[^\n\r]*)*'")
_END_OF_DATA = re.compile(r"^\\\.[ \t]*$", re.M)
_NUMBER_RUN = re.compile(r"\$?[0-9A-Za-z_.]+")


class StandardStrings:
    """Sets libpg_query's ``standard_conforming_strings`` (a C global) for ``pglast.parser.scan``."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(parser.__file__)
        self._flag = ctypes.c_bool.in_dll(lib, "standard_conforming_strings")

    def works(self) -> bool:
        """True when the scanner follows the flag (it reads it in this thread)."""
        try:
            self.set(False)
            tokens = parser.scan("SELECT 'a\\';b'")
        except pglast.parser.ParseError:
            return False
        finally:
            self.set(True)
        return len(tokens) == 2

    def set(self, on: bool) -> None:
        self._flag.value = on


@dataclass
class Result:
    cleaned: str
    spans: list[tuple[int, int]] = field(default_factory=list)  # first token start, last token end
    standard: list[bool] = field(default_factory=list)  # each statement read with standard strings
    unterminated: bool = False  # the script ends inside a string or comment


@dataclass
class _Stmt:
    first: int = -1  # in the cleaned text
    last: int = -1
    orig_first: int = -1  # in the original text
    orig_last: int = -1
    depth: int = 0
    begin: int = 0
    idents: list[str] = field(default_factory=list)


class _Emulator:
    def __init__(self, text: str, scs: StandardStrings) -> None:
        self.text = text
        self.scan_text = text  # text with the tokens that the scanner rejects masked
        self.scs = scs
        self.standard = True
        self.session = True
        self.pieces: list[str] = []
        self.copied = 0  # original offset copied into pieces so far
        self.delta = 0  # cleaned offset - original offset, from ``copied`` on
        self.result = Result("")
        self.stmt = _Stmt()
        self.copies = 0  # COPY ... FROM stdin statements whose data is still to skip
        self.copy_line_end = -1  # end of the line their data follows

    def run(self) -> Result:
        text, pos = self.text, 0
        while pos < len(text):
            pos = self._chunk(pos)
        self._end_statement(len(text), at_eof=True)
        self.pieces.append(text[self.copied :])
        self.result.cleaned = "".join(self.pieces)
        return self.result

    def _scan(self, pos: int) -> tuple[list[parser.Token], int]:
        """Tokens of the text from ``pos`` up to a line that may hold a meta-command.

        A token the scanner rejects past the first line ends the chunk before its line: a statement
        before it may change standard_conforming_strings, and so how that line reads. A rejected
        token in the first line is masked (see ``_mask``).
        """
        text = self.text
        if self.copy_line_end >= 0:  # only the rest of a COPY ... FROM stdin statement's line
            return self._tokens(pos, self.copy_line_end), self.copy_line_end
        end = pos
        while True:
            m = _META_LINE.search(text, end + 1) if end + 1 < len(text) else None
            end = m.start() if m else len(text)
            while True:
                try:
                    return self._tokens(pos, end), end
                except pglast.parser.ParseError as exc:
                    unterminated_at = exc.args[1] if _UNTERMINATED in str(exc) else None
                    if unterminated_at is not None:
                        # An unterminated literal runs to the end of the chunk: where it starts
                        # is surer from its text (an older pglast miscounts non-ASCII).
                        near = re.search(r'at or near "(.+)"', str(exc), re.S)
                        chunk = self.scan_text[pos:end]
                        if near and chunk.endswith(near.group(1)):
                            unterminated_at = len(chunk) - len(near.group(1))
                        break
                    clean = self._clean_prefix(pos, end, exc.args[1])
                    if clean is not None:
                        return clean
                    self._mask(pos, pos + exc.args[1], str(exc))
            if end >= len(text):
                # The script ends inside a literal, as read from here: the statements before it
                # may still change standard_conforming_strings, so read up to the literal first.
                if unterminated_at:
                    try:
                        return self._tokens(pos, pos + unterminated_at), pos + unterminated_at
                    except pglast.parser.ParseError:
                        pass
                self.result.unterminated = True
                return [], len(text)

    def _tokens(self, pos: int, end: int) -> list[parser.Token]:
        self.scs.set(self.standard)
        try:
            return parser.scan(self.scan_text[pos:end])
        finally:
            self.scs.set(True)

    def _clean_prefix(
        self, pos: int, end: int, error_at: int | None
    ) -> tuple[list[parser.Token], int] | None:
        """The longest run of whole lines from ``pos`` that scans cleanly, up to the error's line."""
        text = self.text
        stop = end if error_at is None else text.rfind("\n", pos, pos + error_at) + 1
        cut = text.rfind("\n", pos, stop - 1) + 1 if stop == end else stop
        while cut > pos:  # from the longest prefix down
            try:
                tokens = self._tokens(pos, cut)
                # A string literal may go on after the cut ('a' newline 'b'): cut elsewhere.
                if not (
                    tokens and tokens[-1].name.endswith("CONST") and _CONTINUES.match(text, cut)
                ):
                    return tokens, cut
            except pglast.parser.ParseError:
                pass
            cut = text.rfind("\n", pos, cut - 1) + 1
        return None

    def _mask(self, pos: int, at: int, error: str) -> None:
        """Hide from the reference's scanner a token it rejects (the regression tests' bad literals).

        The masked text has the same length and the same token boundaries: a malformed number
        becomes an identifier, a bad Unicode escape in an E'' string loses its backslash.
        """
        t = self.scan_text
        near = re.search(r'at or near "(.+)"', error)
        if near and not t.startswith(
            near.group(1), at
        ):  # an older pglast counts bytes, not characters
            found = t.find(near.group(1), pos)
            at = found if found >= 0 else at
        if "unsafe use of string constant" in error:
            # U&'' with standard_conforming_strings off: psql still reads it as a U&'' string (no
            # backslash escapes). Its extent, read as such, becomes a plain 'xxx' literal.
            end = self._literal_end(at)
            self.scan_text = t[:at] + "'" + "x" * (end - at - 2) + "'" + t[end:]
            return
        if "Unicode" in error:
            escape = max(t.rfind("\\u", 0, at + 2), t.rfind("\\U", 0, at + 2))
            assert escape >= 0, (error, t[at - 50 : at + 20])
            self.scan_text = t[:escape] + "x" + t[escape + 1 :]
            return
        m = _NUMBER_RUN.match(t, at)
        assert m is not None and any(w in error for w in ("numeric", "integer", "parameter")), error
        self.scan_text = t[:at] + "x" * len(m.group()) + t[m.end() :]

    def _literal_end(self, at: int) -> int:
        """End of the U&'' literal at ``at``, read with standard_conforming_strings on."""
        t, width = self.scan_text, 64
        while True:
            window = t[at : at + width]
            try:
                tokens = parser.scan(window)  # the flag is on between scans
            except pglast.parser.ParseError as exc:
                if _UNTERMINATED in str(exc) and at + width < len(t):
                    width *= 2
                    continue
                assert exc.args[1], exc  # another bad token after the literal: stop before it
                width = exc.args[1]
                continue
            end = tokens[0].end + 1
            if window[end:].strip() or at + width >= len(t):  # nothing could continue it
                return at + end
            width *= 2

    def _chunk(self, pos: int) -> int:
        tokens, end = self._scan(pos)
        for tok in tokens:
            a, b = pos + tok.start, pos + tok.end + 1
            if tok.name in _COMMENTS:
                continue
            if tok.name == "ASCII_92":  # a backslash outside quotes: a psql meta-command
                return self._meta(a)
            if tok.name == "ASCII_59" and self.stmt.depth == 0 and self.stmt.begin == 0:
                nxt = self._end_statement(a, at_eof=False)
                if nxt is not None:
                    return max(nxt, b)
                continue
            self._token(tok, a, b)
        if self.copy_line_end >= 0:  # the rest of a COPY's line was read: its data follows
            return self._skip_copy_data()
        return end

    def _token(self, tok: parser.Token, a: int, b: int) -> None:
        st = self.stmt
        if st.first < 0:
            st.first, st.orig_first = a + self.delta, a
        st.last, st.orig_last = b + self.delta, b
        if tok.name == "ASCII_40":
            st.depth += 1
        elif tok.name == "ASCII_41" and st.depth > 0:
            st.depth -= 1
        elif (tok.name == "IDENT" and self.text[a] != '"') or tok.kind != "NO_KEYWORD":
            self._psql_begin_tracking(self.text[a:b].lower())

    def _psql_begin_tracking(self, word: str) -> None:
        """psql's heuristic (psqlscan.l) for semicolons inside a routine's BEGIN ... END body."""
        st = self.stmt
        if word in ("create", "function", "procedure", "or", "replace"):
            st.idents.append(word[0])
        else:
            st.idents.append("")
        ids = [*st.idents[:4], "", "", "", ""]
        routine = ids[0] == "c" and (
            ids[1] in ("f", "p") or (ids[1] == "o" and ids[2] == "r" and ids[3] in ("f", "p"))
        )
        if routine and st.depth == 0:
            if word == "begin" or (word == "case" and st.begin >= 1):
                st.begin += 1
            elif word == "end" and st.begin > 0:
                st.begin -= 1

    def _meta(self, a: int) -> int:
        """Cut the meta-command at ``a`` to the end of its line; it may send the statement."""
        text = self.text
        line_end = text.find("\n", a)
        line_end = len(text) if line_end < 0 else line_end
        command = text[a:line_end]
        if command.startswith(("\\;", "\\:")):  # psql's escapes for a literal ';' or ':'
            self._replace(a, a + 1, " ")
            return a + 1
        # Meta-commands that send the buffer (\\g and the like), and any other one met between
        # statements' lines, end the statement here: a ';' takes their place in the cleaned text.
        st = self.stmt
        sends = st.first >= 0 and st.depth == 0 and st.begin == 0
        self._replace(a, line_end, ";" if sends else "")
        if sends:
            self._finish(a)
        if _COPY_STDIN.match(command):
            self.copies += 1
            self.copy_line_end = line_end
            return self._skip_copy_data()
        return line_end

    def _end_statement(self, a: int, *, at_eof: bool) -> int | None:
        """End the statement at ``a``; returns where to rescan from when the lexer must change."""
        st = self.stmt
        if st.first < 0:
            self.stmt = _Stmt()
            return None
        body = self.text[st.orig_first : st.orig_last]
        self._finish(a)
        if at_eof:
            return None
        before = self.standard
        self._follow_setting(body)
        if _COPY_STDIN.match(body):
            # psql reads the data after the line, for each COPY on it (joined by \\;) in turn.
            self.copies += 1
            if self.copy_line_end < 0:
                line_end = self.text.find("\n", a)
                self.copy_line_end = len(self.text) if line_end < 0 else line_end
            return a + 1
        return a + 1 if self.standard != before else None

    def _finish(self, a: int) -> None:
        st = self.stmt
        if st.first >= 0:
            self.result.spans.append((st.first, st.last))
            self.result.standard.append(self.standard)
        self.stmt = _Stmt()

    def _skip_copy_data(self) -> int:
        """Drop COPY ... FROM stdin data: the lines after the statement up to a ``\\.`` line."""
        text, line_end = self.text, self.copy_line_end
        stop = line_end
        for _ in range(self.copies):
            m = _END_OF_DATA.search(text, stop)
            stop = len(text) if m is None else m.end()
        self._replace(line_end, stop, "")
        self.copies, self.copy_line_end = 0, -1
        return stop

    def _replace(self, a: int, b: int, new: str) -> None:
        self.pieces.append(self.text[self.copied : a])
        self.pieces.append(new)
        self.copied = b
        self.delta += len(new) - (b - a)

    def _follow_setting(self, body: str) -> None:
        """What the server does with standard_conforming_strings for this statement."""
        try:
            stmts = pglast.parse_sql(body)
        except pglast.parser.ParseError:
            return
        for raw in stmts:
            node = raw.stmt
            if isinstance(node, ast.VariableSetStmt):
                self._variable_set(node)
            elif isinstance(node, ast.DiscardStmt) and node.target == enums.DiscardMode.DISCARD_ALL:
                self.standard = self.session = True

    def _variable_set(self, node: ast.VariableSetStmt) -> None:
        kinds = enums.VariableSetKind
        if node.kind == kinds.VAR_RESET_ALL or (
            node.name == "standard_conforming_strings"
            and node.kind in (kinds.VAR_RESET, kinds.VAR_SET_DEFAULT)
        ):
            value = True
        elif node.name == "standard_conforming_strings" and node.kind == kinds.VAR_SET_VALUE:
            val = node.args[0].val
            value = _bool(str(getattr(val, "sval", None) or getattr(val, "ival", "")))
        else:
            return
        if value is None or node.is_local:
            return
        self.standard = self.session = value


def _bool(raw: str) -> bool | None:
    v = raw.strip().lower()
    for word, value in (("true", True), ("yes", True), ("false", False), ("no", False)):
        if v and word.startswith(v):
            return value
    return {"on": True, "1": True, "of": False, "off": False, "0": False}.get(v)


def emulate(text: str, scs: StandardStrings) -> Result:
    """The script without psql meta-commands and COPY data, and psql's statements in it."""
    return _Emulator(text, scs).run()
