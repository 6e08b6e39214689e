"""``sam-db lint``: squawk's checks of migration files for operations that lock or break live traffic.

squawk (extra ``lint``, the ``squawk-cli`` wheel) reads each file the way sam_db runs it: in one
transaction, or statement by statement for a ``-- sam_db: no-transaction`` file. Its settings ship
as ``sam_db/squawk.toml``, which also holds what squawk has no setting for: rules that do not
apply to a table created earlier in the same file, and findings accepted in released bundled files.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from ._migration import FILE_RE, is_transactional
from ._sources import Source, bundled, discover
from ._sqlsplit import SqlSyntaxError, split_statements
from .errors import ConfigurationError

#: ``sam-db lint``'s exit code when squawk found something (as ``status --check``'s).
EXIT_FINDINGS = 3

_INSTALL_HINT = "squawk is not installed: pip install 'sam-db[lint]' (the squawk-cli wheel)"

_NAME = r'(?:"(?:[^"]|"")+"|[^\s.(;"]+)'
_QUALIFIED = rf"{_NAME}(?:\s*\.\s*{_NAME})?"
_CREATE_TABLE = re.compile(
    rf"CREATE\s+(?:(?:GLOBAL\s+|LOCAL\s+)?(?:TEMP|TEMPORARY|UNLOGGED)\s+)?TABLE\s+"
    rf"(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>{_QUALIFIED})",
    re.I,
)
_TOUCHES_TABLE = re.compile(
    rf"(?:ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?|"
    rf"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:(?:IF\s+NOT\s+EXISTS\s+)?{_NAME}\s+)?"
    rf"ON\s+(?:ONLY\s+)?)(?P<name>{_QUALIFIED})",
    re.I,
)


_CONCURRENTLY_RULE = "ban-concurrent-index-creation-in-transaction"
_CONCURRENT = re.compile(
    r"(?:CREATE\s+(?:UNIQUE\s+)?INDEX|DROP\s+INDEX|REINDEX\s+(?:\(.*?\)\s*)?\w+)\s+CONCURRENTLY\b"
    r"|ALTER\s+TABLE\b.*\bDETACH\s+PARTITION\b.*\bCONCURRENTLY\b",
    re.I | re.S,
)


class Finding(NamedTuple):
    """One problem squawk found: where (1-based line and column), which rule, and its advice."""

    file: str
    line: int
    column: int
    rule: str
    message: str
    help: str

    def __str__(self) -> str:
        advice = f"\n  help: {self.help}" if self.help else ""
        return f"{self.file}:{self.line}:{self.column}: {self.rule}: {self.message}{advice}"


class LintConfig(NamedTuple):
    """The squawk configuration file and sam_db's own table in it."""

    path: Path
    same_file_rules: frozenset[str]
    accepted: frozenset[tuple[str, str]]  # (bundled file name, rule)


def shipped_config() -> Path:
    """The configuration that ships with sam_db (``sam_db/squawk.toml``)."""
    return Path(str(resources.files("sam_db") / "squawk.toml"))


def load_config(path: Path | None = None) -> LintConfig:
    """Read ``path`` (default: the shipped configuration); its ``[sam_db]`` table is optional."""
    path = shipped_config() if path is None else Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the squawk configuration {path}: {exc.strerror or exc}"
        ) from None
    module = importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")
    try:
        data: dict[str, Any] = module.loads(text)
    except ValueError as exc:  # TOMLDecodeError
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from None
    own = data.get("sam_db", {})
    try:
        same = frozenset(str(rule) for rule in own.get("same_file_rules", []))
        accepted = frozenset((str(a["file"]), str(a["rule"])) for a in own.get("accepted", []))
    except (AttributeError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"{path}: [sam_db] must hold same_file_rules = [rule, ...] and [[sam_db.accepted]] "
            f"tables with file, rule and reason ({type(exc).__name__}: {exc})"
        ) from None
    return LintConfig(path, same, accepted)


def squawk_binary() -> str:
    """The ``squawk`` program of this environment (the squawk-cli wheel), else one on PATH."""
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (scripts / "squawk", Path(sys.executable).parent / "squawk"):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("squawk")
    if found is None:
        raise ConfigurationError(_INSTALL_HINT)
    return found


def default_files(sources: Sequence[Source], include_bundled: bool) -> list[Path]:
    """The forward migration files ``migrate`` would see (rollback files undo them on purpose)."""
    return [Path(m.origin) for m in discover(sources, include_bundled=include_bundled)]


def expand(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; a folder stands for its ``NNN_name.sql`` migration files."""
    out: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.is_file() and FILE_RE.match(p.name))
        elif path.is_file():
            out.append(path)
        else:
            raise ConfigurationError(f"no such file or folder to lint: {path}")
    return out


def lint(files: Sequence[Path], config: LintConfig | None = None) -> list[Finding]:
    """squawk's findings in ``files``, less those the configuration turns off or accepts."""
    config = load_config() if config is None else config
    findings: list[Finding] = []
    texts = {f: f.read_text(encoding="utf-8", errors="replace") for f in files}
    in_transaction = [f for f in files if is_transactional(texts[f])]
    one_by_one = [f for f in files if f not in in_transaction]
    for group, assume in ((in_transaction, True), (one_by_one, False)):
        if group:
            findings += _run_squawk(group, config.path, assume)
    flagged = {(f.file, f.line) for f in findings if f.rule == _CONCURRENTLY_RULE}
    for path in in_transaction:
        findings += [f for f in _concurrently(path, texts[path]) if (f.file, f.line) not in flagged]
    by_name = {str(f): f for f in files}
    return [
        f
        for f in findings
        if not _is_accepted(f, by_name.get(f.file), config)
        and not _on_new_table(f, texts.get(by_name.get(f.file, Path())), config)
    ]


def _concurrently(path: Path, text: str) -> list[Finding]:
    """``CONCURRENTLY`` in a file sam_db runs in a transaction, where PostgreSQL refuses it.

    squawk reports it only next to other statements (a lone one may run outside a transaction
    with other tools); sam_db always opens one unless the file says ``no-transaction``.
    """
    try:
        statements = split_statements(text)
    except SqlSyntaxError:
        return []
    return [
        Finding(
            str(path),
            stmt.line,
            1,
            _CONCURRENTLY_RULE,
            "sam_db runs this file in a transaction, where PostgreSQL refuses CONCURRENTLY.",
            "Make `-- sam_db: no-transaction` the file's first line (see docs/migrations.md).",
        )
        for stmt in statements
        if _CONCURRENT.match(text[stmt.start : stmt.end])
    ]


def _run_squawk(files: Sequence[Path], config: Path, assume_in_transaction: bool) -> list[Finding]:
    command = [squawk_binary(), "--config", str(config), "--reporter", "json"]
    command.append(
        "--assume-in-transaction" if assume_in_transaction else "--no-assume-in-transaction"
    )
    try:
        done = subprocess.run(
            [*command, *map(str, files)], capture_output=True, text=True, check=False
        )
    except OSError as exc:
        raise ConfigurationError(f"cannot run squawk ({exc}); {_INSTALL_HINT}") from None
    try:
        rows = json.loads(done.stdout or "[]")
    except ValueError:
        rows = None
    if not isinstance(rows, list) or done.returncode not in (0, 1):
        said = (done.stderr or done.stdout).strip().splitlines()
        raise ConfigurationError(
            f"squawk failed (exit status {done.returncode}): {' / '.join(said[-3:]) or 'no output'}"
        )
    return [
        Finding(
            file=str(r["file"]),
            line=int(r["line"]) + 1,  # squawk counts lines and columns from 0
            column=int(r["column"]) + 1,
            rule=str(r["rule_name"]),
            message=str(r["message"]),
            help=str(r.get("help") or ""),
        )
        for r in rows
    ]


def _is_accepted(finding: Finding, path: Path | None, config: LintConfig) -> bool:
    if path is None or (path.name, finding.rule) not in config.accepted:
        return False
    return path.resolve().parent == Path(str(bundled())).resolve()


def _on_new_table(finding: Finding, text: str | None, config: LintConfig) -> bool:
    """Whether ``finding`` is about a table created earlier in the same file (and its rule says
    that does not matter)."""
    if text is None or finding.rule not in config.same_file_rules:
        return False
    try:
        statements = split_statements(text)
    except SqlSyntaxError:
        return False
    lines = text.split("\n")
    offset = sum(len(line) + 1 for line in lines[: finding.line - 1]) + finding.column - 1
    created: set[str] = set()
    for stmt in statements:
        sql = text[stmt.start : stmt.end]
        if stmt.start <= offset < max(stmt.end, stmt.start + 1):
            touched = _TOUCHES_TABLE.match(sql)
            return touched is not None and _table_key(touched["name"]) in created
        if made := _CREATE_TABLE.match(sql):
            created.add(_table_key(made["name"]))
    return False


def _table_key(name: str) -> str:
    """A table's name as PostgreSQL folds it, without its schema."""
    last = re.split(r"\s*\.\s*(?=(?:[^\"]|\"[^\"]*\")*$)", name)[-1]
    return last[1:-1].replace('""', '"') if last.startswith('"') else last.lower()


def cmd_lint(args: argparse.Namespace) -> int:
    """``sam-db lint [FILES]``: print each finding; exit 3 when there is any.

    Without FILES it lints the forward migration files of the configured sources (and the bundled
    ones unless ``--no-bundled``), as ``migrate`` sees them.
    """
    cfg = load_config(Path(args.config) if args.config else None)
    if args.files:
        paths = expand(args.files)
    else:
        from ._cli_context import settings

        chosen = settings(args)
        paths = default_files(chosen.sources, chosen.include_bundled)
    if not paths:
        print("no migration files to lint")
        return 0
    found = lint(paths, cfg)
    for finding in found:
        print(finding)
    checked = f"{len(paths)} file{'s' if len(paths) != 1 else ''}"
    if found:
        print(
            f"\n{len(found)} problem{'s' if len(found) != 1 else ''} in {checked} "
            f"(squawk, settings: {cfg.path})"
        )
        return EXIT_FINDINGS
    print(f"checked {checked}: no problems (squawk, settings: {cfg.path})")
    return 0
