"""``sam-db new``: write the next numbered migration file and its rollback."""

from __future__ import annotations

import re
from pathlib import Path

from ._engine import Settings
from ._sources import discover
from .errors import ConfigurationError

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


def new_migration(name: str, folder: Path, settings: Settings) -> tuple[Path, Path]:
    """Create ``NNN_name.sql`` and ``NNN_name.rollback.sql`` in ``folder``; return their paths.

    NNN is one more than the highest version among the bundled migrations, ``settings.sources``
    and ``folder`` itself, since they all share one ordering.
    """
    slug = re.sub(r"[\s]+", "_", name.strip())
    if not _NAME_RE.match(slug):
        raise ConfigurationError(
            f"migration name {name!r}: use letters, digits, '_' and '-' (e.g. add_session_tags)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    sources = [*settings.sources]
    if folder.resolve() not in {Path(str(s)).resolve() for s in sources}:
        sources.append(folder)
    existing = discover(sources, include_bundled=settings.include_bundled)
    width = max((len(m.version) for m in existing), default=3)
    number = max((m.number for m in existing), default=0) + 1
    stem = f"{number:0{width}d}_{slug}"
    forward, back = folder / f"{stem}.sql", folder / f"{stem}.rollback.sql"
    forward.write_text(
        f"-- {stem}: describe what this migration does and why.\n"
        "-- Runs in one transaction with its tracking row. For CREATE INDEX CONCURRENTLY, make the\n"
        "-- first line `-- sam_db: no-transaction` (see docs/migrations.md for the risks).\n\n",
        encoding="utf-8",
    )
    back.write_text(f"-- Undo exactly what {stem}.sql does.\n\n", encoding="utf-8")
    return forward, back
