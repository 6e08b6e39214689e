"""Finding migrations: the bundled folder plus any extra sources, merged into one ordering."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Union

if sys.version_info >= (3, 11):
    from importlib.resources.abc import Traversable
else:  # pragma: no cover - Python 3.10
    from importlib.abc import Traversable

from ._migration import FILE_RE, ROLLBACK_RE, MigrationFile, parse
from .errors import DuplicateMigrationError, MigrationFileError

#: What ``sources=`` accepts: a folder path, or a package resource such as
#: ``importlib.resources.files("myservice") / "migrations"``.
Source = Union[str, "os.PathLike[str]", Traversable]


def bundled() -> Traversable:
    """The folder of migrations shipped inside the sam_db package."""
    return resources.files("sam_db") / "migrations"


def _as_traversable(source: Source) -> Traversable:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_dir():
            raise MigrationFileError(
                f"migration source {str(path)!r} is not a folder: pass an existing directory "
                "of NNN_name.sql files (or a package resource)"
            )
        return path
    if isinstance(source, Traversable):
        if not source.is_dir():
            raise MigrationFileError(f"migration source {source!s} is not a folder")
        return source
    raise MigrationFileError(
        f"cannot use {source!r} as a migration source: pass a path or an importlib.resources folder"
    )


def _read(entry: Traversable) -> str:
    try:
        return str(entry.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise MigrationFileError(f"cannot read migration file {entry!s}: {exc}") from exc


def _scan(folder: Traversable) -> list[MigrationFile]:
    forward: dict[str, tuple[str, Traversable]] = {}
    back: dict[str, Traversable] = {}
    for entry in folder.iterdir():
        fname = entry.name
        if not fname.endswith(".sql") or not entry.is_file():
            continue
        if m := ROLLBACK_RE.match(fname):
            back[f"{m['version']}_{m['name']}"] = entry
        elif m := FILE_RE.match(fname):
            forward[f"{m['version']}_{m['name']}"] = (m["version"], entry)
        else:
            raise MigrationFileError(
                f"{entry!s}: a migration file must be named NNN_name.sql "
                "(or NNN_name.rollback.sql); rename it or move it out of the folder"
            )
    orphans = sorted(set(back) - set(forward))
    if orphans:
        raise MigrationFileError(
            f"rollback file(s) with no migration in {folder!s}: "
            + ", ".join(f"{o}.rollback.sql" for o in orphans)
        )
    found = []
    for stem, (version, entry) in forward.items():
        rb = back.get(stem)
        found.append(
            parse(
                version,
                stem[len(version) + 1 :],
                _read(entry),
                str(entry),
                _read(rb) if rb is not None else None,
                str(rb) if rb is not None else None,
            )
        )
    return found


def discover(
    sources: Sequence[Source] | Iterable[Source] = (), *, include_bundled: bool = True
) -> list[MigrationFile]:
    """All migrations of the bundled folder and ``sources``, ordered by numeric version.

    Two files with the same numeric version (``005`` twice, or ``5`` and ``005``) are an error:
    the order between them would be arbitrary.
    """
    by_number: dict[int, MigrationFile] = {}
    if include_bundled:
        by_number = {mig.number: mig for mig in _scan(bundled())}
    ours = set(by_number)
    for folder in (_as_traversable(s) for s in sources):
        for mig in _scan(folder):
            other = by_number.get(mig.number)
            if other is not None and other.number in ours:
                raise DuplicateMigrationError.taken_by_bundled(
                    mig.version, mig.name, mig.origin, other.filename
                )
            if other is not None:
                raise DuplicateMigrationError.same_version(mig.version, other.origin, mig.origin)
            by_number[mig.number] = mig
    return [by_number[k] for k in sorted(by_number)]
