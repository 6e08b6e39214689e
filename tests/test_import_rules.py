"""The package's layers, checked from its source: which modules may import which.

- The migration engine (every module outside ``sam_db.memory`` and ``sam_db.testing``) never
  imports ``sam_db.memory`` or ``sam_db.testing``; ``sam_db/__init__.py`` re-exports the store
  lazily, by name, and is the one exception.
- Nothing in the library imports ``sam_db.testing`` (the pytest plugin and its helpers).
- ``openai`` is imported only by ``sam_db/memory/_openai.py``, the OpenAI embedder.
- ``import sam_db`` imports neither ``openai`` nor ``pydantic`` (checked in a fresh interpreter).

Every import counts, including those inside functions (lazy imports), except those under
``if TYPE_CHECKING:``, which never run.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sam_db"


def module_name(path: Path) -> str:
    """``src/sam_db/memory/_store.py`` → ``sam_db.memory._store``."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """The absolute names of the modules ``source`` (the text of ``module``) imports.

    ``from X import y`` yields both ``X`` and ``X.y`` (``y`` may be a submodule).
    """
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for other in node.orelse:
                visit(other)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found


def library_imports() -> dict[str, set[str]]:
    """Every module of the installed-from-source package and what it imports."""
    out: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        out[name] = imported_modules(
            path.read_text(encoding="utf-8"), name, is_package=path.name == "__init__.py"
        )
    return out


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def offenders(forbidden: str, *, skip: tuple[str, ...] = ()) -> list[str]:
    """``module -> import`` for each import of ``forbidden`` by a module outside ``skip``."""
    return [
        f"{module} -> {name}"
        for module, names in library_imports().items()
        if not any(_within(module, s) for s in skip)
        for name in sorted(names)
        if _within(name, forbidden)
    ]


def test_the_import_walker_sees_relative_lazy_and_aliased_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import openai as oa\n"
        "from ..memory import _store\n"
        "if TYPE_CHECKING:\n"
        "    from ..testing import plugin\n"
        "def later():\n"
        "    from .._redact import redact\n"
    )
    found = imported_modules(source, "sam_db.memory._x")
    assert {"openai", "sam_db.memory", "sam_db.memory._store", "sam_db._redact"} <= found
    assert not any(_within(n, "sam_db.testing") for n in found)


def test_the_package_is_found() -> None:
    modules = library_imports()
    assert {"sam_db", "sam_db.memory._openai", "sam_db.testing.plugin"} <= set(modules)


def engine_offenders(forbidden: str) -> list[str]:
    """Imports of ``forbidden`` by the migration engine: all but memory, testing and the
    package's ``__init__`` (whose lazy re-exports name the store)."""
    return [
        item
        for item in offenders(forbidden, skip=("sam_db.memory", "sam_db.testing"))
        if not item.startswith("sam_db -> ")
    ]


def test_the_migration_engine_never_imports_memory() -> None:
    assert engine_offenders("sam_db.memory") == []


def test_the_migration_engine_never_imports_testing() -> None:
    assert engine_offenders("sam_db.testing") == []


def test_nothing_in_the_library_imports_testing() -> None:
    assert offenders("sam_db.testing", skip=("sam_db.testing",)) == []


def test_only_the_openai_embedder_imports_openai() -> None:
    assert offenders("openai", skip=("sam_db.memory._openai",)) == []


def _loaded_after(code: str) -> set[str]:
    script = f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("absent", ["openai", "pydantic", "sam_db.memory", "sam_db.testing"])
def test_import_sam_db_does_not_import(absent: str) -> None:
    loaded = _loaded_after("import sam_db")
    assert "sam_db" in loaded
    assert not any(_within(name, absent) for name in loaded)
