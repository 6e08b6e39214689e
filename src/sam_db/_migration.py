"""One migration: a numbered ``NNN_name.sql`` file, its optional rollback, and its directives."""

import re
from typing import NamedTuple

from ._checksum import checksum, normalise

# NNN_name.sql; the rollback is NNN_name.rollback.sql. Versions are digits, ordered numerically.
FILE_RE = re.compile(r"^(?P<version>\d+)_(?P<name>[A-Za-z0-9][A-Za-z0-9_\-]*)\.sql$")
ROLLBACK_RE = re.compile(r"^(?P<version>\d+)_(?P<name>[A-Za-z0-9][A-Za-z0-9_\-]*)\.rollback\.sql$")

# First-line directive that runs a file outside a transaction, one statement at a time.
NO_TRANSACTION_RE = re.compile(r"^\s*--\s*sam_db\s*:\s*no-transaction\s*$", re.I)


class MigrationFile(NamedTuple):
    """A parsed migration file. ``origin`` says where it came from (a path or a package resource)."""

    version: str
    name: str
    sql: str
    checksum: str
    origin: str
    transactional: bool
    rollback_sql: str | None = None
    rollback_origin: str | None = None
    rollback_transactional: bool = True

    @property
    def number(self) -> int:
        """The version as a number: what migrations are ordered by."""
        return int(self.version)

    @property
    def filename(self) -> str:
        return f"{self.version}_{self.name}.sql"


def is_transactional(text: str) -> bool:
    """False when the first line is the ``-- sam_db: no-transaction`` directive."""
    first = normalise(text).split("\n", 1)[0]
    return NO_TRANSACTION_RE.match(first) is None


def parse(
    version: str,
    name: str,
    text: str,
    origin: str,
    rollback_text: str | None = None,
    rollback_origin: str | None = None,
) -> MigrationFile:
    """Build a :class:`MigrationFile` from a file's text (and its rollback's, when there is one)."""
    sql = normalise(text)
    rollback_sql = normalise(rollback_text) if rollback_text is not None else None
    return MigrationFile(
        version=version,
        name=name,
        sql=sql,
        checksum=checksum(text),
        origin=origin,
        transactional=is_transactional(sql),
        rollback_sql=rollback_sql,
        rollback_origin=rollback_origin,
        rollback_transactional=rollback_sql is None or is_transactional(rollback_sql),
    )
