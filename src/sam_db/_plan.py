"""Planning, with no I/O: where each migration stands and which step comes next.

Everything here works on the migration files found and the tracking rows read: the states
``status`` reports, the version a ``target`` names, the drift check (applied files changed since),
and the choice of the next step to apply or roll back, made afresh from the rows read under the
migration lock before every step.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal, NamedTuple

from ._indexes import Broken
from ._migration import MigrationFile
from ._run import Step
from ._tracking import AppliedRow
from .errors import (
    MigrationModifiedError,
    RollbackUnavailableError,
    UnknownMigrationError,
    UnknownTargetError,
)

log = logging.getLogger("sam_db")

State = Literal["applied", "pending", "modified", "missing", "failed"]


class StatusRow(NamedTuple):
    version: str
    name: str
    state: State
    applied_at: datetime | None
    checksum: str | None
    applied_checksum: str | None
    execution_ms: float | None
    origin: str | None
    transactional: bool | None
    has_rollback: bool | None
    #: INVALID indexes a no-transaction file names (its state is then ``failed``).
    invalid_indexes: tuple[str, ...] = ()


def version_number(version: str | int, what: str) -> int:
    """The number of a version as the user wrote it (``"003"``, ``3``); ``what`` names it in errors."""
    text = str(version).strip()
    if not text.isdigit():
        raise UnknownTargetError(
            f"{what} {version!r} is not a migration version (digits, e.g. '003')"
        )
    return int(text)


def resolve_target(
    files: Sequence[MigrationFile], target: str | int | None, *, allow_zero: bool
) -> int | None:
    """The numeric version a ``target`` names, checked against the known files."""
    if target is None:
        return None
    number = version_number(target, "target")
    if allow_zero and number == 0:
        return 0
    if not any(f.number == number for f in files):
        known = ", ".join(f.version for f in files) or "none"
        raise UnknownTargetError(f"target {target!r} names no migration (known versions: {known})")
    return number


def modified(
    files: Sequence[MigrationFile], applied: Sequence[AppliedRow]
) -> list[tuple[MigrationFile, AppliedRow]]:
    """The applied migrations whose file changed since: (file, tracking row), by version."""
    by_number = {f.number: f for f in files}
    return [
        (by_number[r.number], r)
        for r in applied
        if r.number in by_number and by_number[r.number].checksum != r.checksum
    ]


def pending(
    files: Sequence[MigrationFile], applied: Sequence[AppliedRow], limit: int | None
) -> list[MigrationFile]:
    """The files not applied yet (up to version ``limit``), in version order."""
    done = {r.number for r in applied}
    return [f for f in files if f.number not in done and (limit is None or f.number <= limit)]


def compute_status(
    files: Sequence[MigrationFile],
    applied: Sequence[AppliedRow] | None,
    broken: Mapping[int, Broken] | None = None,
) -> list[StatusRow]:
    """One row per known file and per applied version without a file, ordered by version.

    A file in ``broken`` is ``failed`` when applied, or when pending and nobody builds its index.
    """
    rows = {r.number: r for r in applied or ()}
    changed = {f.number for f, _ in modified(files, applied or ())}
    out: list[StatusRow] = []
    for f in files:
        r = rows.pop(f.number, None)
        state: State = (
            "pending" if r is None else ("modified" if f.number in changed else "applied")
        )
        bad = (broken or {}).get(f.number)
        if bad is not None and (r is not None or not bad.building):
            state = "failed"
        out.append(
            StatusRow(
                version=f.version,
                name=f.name,
                state=state,
                applied_at=r.applied_at if r else None,
                checksum=f.checksum,
                applied_checksum=r.checksum if r else None,
                execution_ms=r.execution_ms if r else None,
                origin=f.origin,
                transactional=f.transactional,
                has_rollback=f.rollback_sql is not None,
                invalid_indexes=bad.indexes if bad is not None else (),
            )
        )
    for r in rows.values():
        out.append(
            StatusRow(
                version=r.version,
                name=r.name,
                state="missing",
                applied_at=r.applied_at,
                checksum=r.checksum,
                applied_checksum=r.checksum,
                execution_ms=r.execution_ms,
                origin=None,
                transactional=None,
                has_rollback=None,
            )
        )
    out.sort(key=lambda s: int(s.version))
    return out


def check_drift(
    files: Sequence[MigrationFile], applied: Sequence[AppliedRow], strict: bool, *, warn: bool
) -> None:
    """Refuse applied files that changed since; refuse (``strict``) or log unknown applied versions."""
    changed = modified(files, applied)
    if changed:
        raise MigrationModifiedError.drift(
            [f"{f.origin} (applied {r.checksum[:12]}, now {f.checksum[:12]})" for f, r in changed],
            files=[f.filename for f, _ in changed],
            versions=[f.version for f, _ in changed],
        )
    known = {f.number for f in files}
    missing = [r.version for r in applied if r.number not in known]
    if missing:
        if strict:
            raise UnknownMigrationError.applied_unknown(missing)
        if warn:
            log.warning(
                "database has applied migration(s) with no file here: %s "
                "(probably from a newer release during a rolling deploy); continuing",
                ", ".join(missing),
            )


def summary(rows: Sequence[StatusRow]) -> list[str]:
    """The next migrate as ``status`` shows it: one line per file it would apply, in order."""
    changed = [r.version for r in rows if r.state == "modified"]
    if changed:
        return [
            f"migrate would refuse: {', '.join(changed)} changed since applied "
            "(restore the file, or accept it with `sam-db repair`)"
        ]
    todo = [r for r in rows if r.applied_at is None and r.state in ("pending", "failed")]
    lines = [
        f"next migrate: {r.version}_{r.name}.sql "
        + ("in one transaction" if r.transactional else "outside a transaction, one by one")
        for r in todo
    ]
    return [*lines, "(`sam-db migrate --dry-run` prints their SQL)"] if lines else []


class Forward:
    """What ``migrate`` applies next, decided from the tracking rows read under the lock."""

    __slots__ = ("files", "limit", "strict", "warned")

    def __init__(self, files: Sequence[MigrationFile], limit: int | None, strict: bool) -> None:
        self.files = files
        self.limit = limit
        self.strict = strict
        self.warned = False

    def done(self, applied: Sequence[AppliedRow] | None) -> bool:
        """Whether nothing is left to apply (``None``: no tracking table yet)."""
        return applied is not None and not pending(self.files, applied, self.limit)

    def next_step(self, applied: list[AppliedRow]) -> Step | None:
        """The first pending file as a step, after the drift check of the rows it runs on top of."""
        todo = pending(self.files, applied, self.limit)
        if not todo:
            return None
        check_drift(self.files, applied, self.strict, warn=not self.warned)
        self.warned = True
        mig = todo[0]
        if applied and mig.number < applied[-1].number:
            log.warning(
                "applying %s out of order: %s is already applied", mig.filename, applied[-1].version
            )
        return Step.apply(mig)


class Backward:
    """What ``rollback`` undoes next: the chosen versions, newest first, skipping those gone."""

    __slots__ = ("by_number", "wanted")

    def __init__(
        self,
        files: Sequence[MigrationFile],
        applied: Sequence[AppliedRow],
        *,
        steps: int,
        limit: int | None,
    ) -> None:
        newest_first = sorted(applied, key=lambda r: r.number, reverse=True)
        chosen = (
            [r for r in newest_first if r.number > limit]
            if limit is not None
            else newest_first[:steps]
        )
        self.by_number = {f.number: f for f in files}
        # Check every one before undoing any: a gap must not leave the schema half rolled back.
        for r in chosen:
            _check_undoable(r, self.by_number.get(r.number))
        self.wanted = [r.number for r in chosen]

    def next_step(self, applied: list[AppliedRow]) -> Step | None:
        present = {r.number for r in applied}
        while self.wanted and self.wanted[0] not in present:  # rolled back by another process
            self.wanted.pop(0)
        if not self.wanted:
            return None
        return Step.rollback(self.by_number[self.wanted.pop(0)])

    def done(self, applied: Sequence[AppliedRow] | None) -> bool:
        """Whether every chosen version is gone (``None``: no tracking table)."""
        present = {r.number for r in applied or ()}
        return not any(number in present for number in self.wanted)


def _check_undoable(r: AppliedRow, f: MigrationFile | None) -> None:
    if f is None:
        raise RollbackUnavailableError.no_file(f"{r.version}_{r.name}")
    if f.rollback_sql is None:
        raise RollbackUnavailableError.no_rollback_file(
            f.filename, f"{f.version}_{f.name}.rollback.sql", f.origin
        )
