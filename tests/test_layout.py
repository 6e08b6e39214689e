"""The package's layout: small modules and short functions, so each behaviour has one findable home.

No module in ``src/sam_db`` is over ~400 lines, no function over ~60 (counted from its ``def``
to its last line, docstring included). Building an argparse parser is exempt: a flat list of
``add_argument`` calls reads best in one place.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sam_db"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
_ARGPARSE = {
    "add_argument",
    "add_argument_group",
    "add_mutually_exclusive_group",
    "add_parser",
    "add_subparsers",
    "set_defaults",
}
#: A function making at least this many argparse calls is a parser's set-up.
_ARGPARSE_SETUP = 5


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _where(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def is_argparse_setup(node: ast.AST) -> bool:
    calls = sum(
        1
        for call in ast.walk(node)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr in _ARGPARSE
    )
    return calls >= _ARGPARSE_SETUP


def long_functions(source: str) -> list[tuple[str, int]]:
    """``(qualified name, lines)`` of each function in ``source`` over the limit."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    lines = (child.end_lineno or child.lineno) - child.lineno + 1
                    if lines > MAX_FUNCTION_LINES and not is_argparse_setup(child):
                        found.append((name, lines))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def test_a_long_function_is_found_and_a_parser_setup_is_not() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    setup = "".join(f"    p.add_argument('--o{i}')\n" for i in range(MAX_FUNCTION_LINES))
    source = f"class C:\n  def long(self):\n{body}\ndef _parser(p):\n{setup}"
    source = source.replace("\n    x", "\n      x")
    assert long_functions(source) == [("C.long", MAX_FUNCTION_LINES + 1)]


def test_no_module_is_over_the_line_limit() -> None:
    over = {
        _where(p): n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert over == {}


def test_no_function_is_over_the_line_limit() -> None:
    over = {
        f"{_where(p)}:{name}": n
        for p in _modules()
        for name, n in long_functions(p.read_text(encoding="utf-8"))
    }
    assert over == {}
