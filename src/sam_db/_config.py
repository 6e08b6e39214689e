"""The project configuration: ``[tool.sam_db]`` in pyproject.toml, or a ``sam_db.toml`` file.

Found by walking up from the current directory, as ruff and pytest find theirs: the first folder
holding a ``sam_db.toml``, or a ``pyproject.toml`` with a ``[tool.sam_db]`` table, is the project
root and its file the configuration. Without one, the project root is the nearest folder holding a
``pyproject.toml`` or ``.git`` (else the current directory): the embedded server keeps its data
there, whichever subfolder a command runs from.

Each setting comes from, in rising precedence: its default, the file, its ``SAM_DB_*`` environment
variable, then an explicit argument (a command-line option, or a keyword of :func:`config`).
Paths in the file are relative to the file's folder; paths in the environment or on the command
line, to the current directory.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

#: The file names looked for in each folder, in this order (a sam_db.toml wins in its folder).
CONFIG_FILES = ("sam_db.toml", "pyproject.toml")
#: Folders holding one of these are a project root even without a configuration.
ROOT_MARKERS = ("pyproject.toml", "sam_db.toml", ".git")

DEFAULT_DSN_ENV = "DATABASE_URL"
DEFAULT_EMBEDDED_PATH = ".sam_db"


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError("a number of seconds (0 or more)")
    return float(value)


def _optional_seconds(value: Any) -> float | None:
    return None if value is None else _seconds(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("a whole number (0 or more)")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a non-empty string")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def _env_name(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError("the name of an environment variable, e.g. DATABASE_URL")
    return value


def _paths(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise ValueError('a list of folder paths, e.g. ["migrations"]')
    return tuple(value)


@dataclass(frozen=True)
class _Key:
    default: Any
    check: Callable[[Any], Any]
    #: How an environment variable's text becomes a value the check accepts.
    parse_env: Callable[[str], Any] = str


def _env_number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return float(text)  # a ValueError here is reported by the caller


def _env_flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("true or false")


def _env_paths(text: str) -> tuple[str, ...]:
    # Separated like PATH (os.pathsep), or by commas.
    return tuple(part.strip() for part in re.split(f"[,{os.pathsep}]", text) if part.strip())


#: Every setting, its default and how its value is checked. The environment variable of ``key``
#: is ``SAM_DB_`` + ``key.upper()``.
KEYS: dict[str, _Key] = {
    "sources": _Key((), _paths, _env_paths),
    "include_bundled": _Key(True, _flag, _env_flag),
    "schema": _Key(None, _optional_text),
    "dsn_env": _Key(DEFAULT_DSN_ENV, _env_name),
    "lock_wait": _Key(300.0, _seconds, _env_number),
    "lock_timeout": _Key(5.0, _seconds, _env_number),
    "lock_retries": _Key(5, _count, _env_number),
    "stall_timeout": _Key(None, _optional_seconds, _env_number),
    "embedded_path": _Key(DEFAULT_EMBEDDED_PATH, _text),
}
#: Settings that are folder paths (made absolute against the folder they were given in).
PATH_KEYS = frozenset({"sources", "embedded_path"})


def env_var(key: str) -> str:
    """The environment variable that overrides setting ``key``."""
    return f"SAM_DB_{key.upper()}"


@dataclass
class Setting:
    """One effective setting: its value and where it came from (for ``sam-db config``)."""

    value: Any
    origin: str


@dataclass
class Project:
    """The project root, its configuration file (if any) and every effective setting."""

    root: Path
    file: Path | None
    settings: dict[str, Setting] = field(default_factory=dict)

    def value(self, key: str) -> Any:
        return self.settings[key].value

    def override(self, key: str, value: Any, origin: str, *, base: Path | None = None) -> None:
        """Set ``key`` from an explicit argument (checked; relative paths against ``base``)."""
        self.settings[key] = Setting(_checked(key, value, origin, base or Path.cwd()), origin)

    @property
    def data_dir(self) -> Path:
        """The embedded server's folder (its PostgreSQL data is in ``pgdata/`` inside)."""
        return Path(self.value("embedded_path"))


def _checked(key: str, value: Any, origin: str, base: Path) -> Any:
    try:
        checked = KEYS[key].check(value)
    except ValueError as exc:
        raise ConfigurationError(f"{key} from {origin}: expected {exc}, got {value!r}") from None
    if key == "sources":
        return tuple(_absolute(p, base) for p in checked)
    if key == "embedded_path":
        return _absolute(checked, base)
    return checked


def _absolute(path: str, base: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base / p


def find_config(start: Path) -> tuple[Path | None, dict[str, Any]]:
    """The first configuration file at or above ``start`` and its sam_db table (``None``, {})."""
    for folder in (start, *start.parents):
        for name in CONFIG_FILES:
            path = folder / name
            if not path.is_file():
                continue
            table = _read_table(path)
            if table is not None:
                return path, table
    return None, {}


def find_root(start: Path) -> Path:
    """The project root without a configuration: nearest folder with a root marker, else start."""
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in ROOT_MARKERS):
            return folder
    return start


# pyproject.toml files are only parsed when this is in them: most never mention sam_db.
_MENTION = re.compile(
    r"^\s*\[\s*tool\s*\.\s*[\"']?sam_db[\"']?\s*[\].]|^\s*tool\s*\.\s*sam_db", re.M
)


def _read_table(path: Path) -> dict[str, Any] | None:
    """sam_db's settings in ``path``; ``None`` for a pyproject.toml with no ``[tool.sam_db]``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc
    if path.name == "pyproject.toml" and not _MENTION.search(text):
        return None
    try:
        data = _toml_loads(text)
    except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from exc
    if path.name == "pyproject.toml":
        table = data.get("tool", {}).get("sam_db")
        if table is None:
            return None
    else:  # sam_db.toml: the keys at the top level (or under [tool.sam_db], as in pyproject)
        table = data.get("tool", {}).get("sam_db", data)
    if not isinstance(table, dict):
        raise ConfigurationError(f"{path}: [tool.sam_db] must be a table of settings")
    return table


def _toml_loads(text: str) -> dict[str, Any]:
    # tomllib on 3.11+; tomli (the same parser, a dependency only on 3.10) before.
    module = importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")
    loaded: dict[str, Any] = module.loads(text)
    return loaded


def _origin_of(path: Path) -> str:
    return str(path) + (" [tool.sam_db]" if path.name == "pyproject.toml" else "")


def load(start: Path | None = None, environ: Mapping[str, str] | None = None) -> Project:
    """The project found from ``start`` (the current directory) and its effective settings.

    Raises :class:`ConfigurationError` naming the file or variable of an unknown key or a bad value.
    """
    start = (start or Path.cwd()).resolve()
    if start.is_file():  # a configuration file given itself: start from its folder
        start = start.parent
    environ = os.environ if environ is None else environ
    file, table = find_config(start)
    root = file.parent if file is not None else find_root(start)
    project = Project(root=root, file=file)
    given = {str(k).replace("-", "_"): v for k, v in table.items()}
    unknown = sorted(set(given) - set(KEYS))
    if unknown and file is not None:
        raise ConfigurationError(
            f"{_origin_of(file)}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(KEYS)}"
        )
    for key, spec in KEYS.items():
        text = environ.get(env_var(key), "")
        if text.strip():
            origin = f"${env_var(key)}"
            try:
                raw = spec.parse_env(text)
            except ValueError:
                raise ConfigurationError(
                    f"{key} from {origin}: cannot read {text!r} (see docs/cli.md#configuration)"
                ) from None
            project.settings[key] = Setting(_checked(key, raw, origin, Path.cwd()), origin)
        elif key in given and file is not None:
            origin = _origin_of(file)
            project.settings[key] = Setting(_checked(key, given[key], origin, root), origin)
        else:
            value = _checked(key, spec.default, "default", root)
            project.settings[key] = Setting(value, "default")
    return project


#: The settings :func:`config` returns as keywords of :func:`sam_db.migrate` (and ``rollback``).
MIGRATE_KEYS = (
    "schema",
    "sources",
    "include_bundled",
    "lock_wait",
    "lock_timeout",
    "lock_retries",
    "stall_timeout",
)
EMBEDDED_DATABASE = "super_agent_monitor"


class Config(dict):  # type: ignore[type-arg]
    """The project's settings as keyword arguments: ``await sam_db.migrate(**sam_db.config())``.

    Keys: ``dsn`` and every key of :data:`MIGRATE_KEYS`. Attributes: ``root`` (the project root),
    ``file`` (the configuration file, or ``None``), ``data_dir`` (the embedded server's folder),
    ``dsn_env`` and ``origins`` (where each key's value came from).
    """

    root: Path
    file: Path | None
    data_dir: Path
    dsn_env: str
    origins: dict[str, str]


def config(path: str | os.PathLike[str] | None = None, **overrides: Any) -> Config:
    """The settings the CLI would use, found from ``path`` (default: the current directory).

    ``dsn`` is, in order: ``overrides["dsn"]``, the environment variable the configuration's
    ``dsn_env`` names (``DATABASE_URL``), the DSN of the project's embedded server while one runs
    (``sam-db serve``, :func:`sam_db.embedded.server`), else ``None``. ``overrides`` (any setting
    name) win over everything, like command-line options. Paths come back absolute.
    """
    unknown = sorted(set(overrides) - set(KEYS) - {"dsn"})
    if unknown:
        raise ConfigurationError(
            f"config(): unknown setting(s) {', '.join(unknown)}; known: dsn, {', '.join(KEYS)}"
        )
    project = load(Path(path) if path is not None else None)
    for key, value in overrides.items():
        if key != "dsn":
            project.override(key, value, "config() argument")
    out = Config({key: project.value(key) for key in MIGRATE_KEYS})
    out.origins = {key: project.settings[key].origin for key in MIGRATE_KEYS}
    dsn_env = project.value("dsn_env")
    dsn, origin = overrides.get("dsn"), "config() argument"
    if dsn is None and os.environ.get(dsn_env, "").strip():
        dsn, origin = os.environ[dsn_env], f"${dsn_env}"
    if dsn is None:
        from ._embedded import running_dsn

        dsn = running_dsn(project.data_dir.resolve() / "pgdata", EMBEDDED_DATABASE)
        origin = "the running embedded server" if dsn else "none found"
    out["dsn"] = dsn
    out.origins["dsn"] = origin
    out.root, out.file, out.dsn_env = project.root, project.file, dsn_env
    out.data_dir = project.data_dir.resolve()
    return out
