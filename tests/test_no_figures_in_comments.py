"""No timings or percentages in the comments and docstrings of ``src/sam_db``: they go stale.

Figures belong in ``bench/`` output and ``docs/``; a comment says what and why, and an invariant
belongs in a test.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sam_db"

#: A duration, a share or a ratio: "12 ms", "0.9 µs", "27 %", "+27%", "~72", "≈ 2", "4x".
FIGURE = re.compile(
    r"\d(?:[\d.,]*\d)?\s?(?:ms|µs|us|ns)\b"
    r"|\d\s?%"
    r"|[~≈]\s?\d"
    r"|\b\d+(?:\.\d+)?\s?[x\u00d7](?!\w)",
    re.IGNORECASE,
)


def prose(source: str) -> Iterator[tuple[int, str]]:
    """``(line, text)`` of every comment and docstring line of ``source``."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc is not None:
                first = node.body[0].lineno
                for offset, line in enumerate(doc.splitlines()):
                    yield first + offset, line


def figures(source: str) -> list[tuple[int, str]]:
    return [(n, text.strip()) for n, text in prose(source) if FIGURE.search(text)]


def test_a_timing_or_a_percentage_is_found_in_comments_and_docstrings() -> None:
    source = (
        '"""Module: took ~72 ms here."""\n'
        "def f():\n"
        '    """Fine."""\n'
        "    x = 1  # measured: +27 %\n"
        "    y = '5 ms'  # a string, not prose\n"
    )
    assert [n for n, _ in figures(source)] == [4, 1]


def test_no_timings_or_percentages_in_comments_or_docstrings() -> None:
    found = {
        f"{path.relative_to(PACKAGE.parent).as_posix()}:{line}": text
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, text in figures(path.read_text(encoding="utf-8"))
    }
    assert found == {}
