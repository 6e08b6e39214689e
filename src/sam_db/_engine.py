"""The migration engine: ``status``, ``migrate``, ``rollback`` and ``repair``, top to bottom.

Works on plain records (no pydantic) so the CLI starts fast; ``sam_db._api`` wraps the results
in the public pydantic models. What each step does lives in ``_steps`` (one locked transaction per
step), ``_no_transaction`` (files that opt out of a transaction), ``_plan`` (which step comes
next, states, drift) and ``_diagnose`` (the errors).

Concurrency model: every step (one migration applied or rolled back) is one transaction that first
takes the schema's transaction-level advisory lock, then (re)creates the tracking table and re-reads
what is applied, and only then decides what to do. Many processes can therefore run ``migrate`` at
once: each step happens exactly once, the others wait (holding no transaction, see ``_lock``), see
it done and move on.
"""

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from . import _indexes, _lock, _steps, _tracking
from ._checksum import ALGORITHM
from ._connect import Target, open_link
from ._ident import quote_ident
from ._migration import MigrationFile
from ._plan import (
    Backward,
    Forward,
    StatusRow,
    check_drift,
    compute_status,
    modified,
    resolve_target,
    version_number,
)
from ._run import Executed, start_run
from ._sources import Source, discover
from ._tracking import TrackingSql
from .errors import ConfigurationError

if TYPE_CHECKING:
    from ._dry_run import Plan

__all__ = [
    "Executed",
    "Settings",
    "StatusRow",
    "migrate",
    "migrate_new_schema",
    "plan",
    "repair",
    "rollback",
    "status",
]

log = logging.getLogger("sam_db")


class Settings(NamedTuple):
    """Everything that shapes a run besides the database and the target version."""

    schema: str | None = None
    sources: tuple[Source, ...] = ()
    include_bundled: bool = True
    #: Seconds to wait for another process's migration lock before giving up.
    lock_wait: float = 300.0
    #: Seconds one DDL statement may wait for a table lock (PostgreSQL ``lock_timeout``).
    lock_timeout: float = 5.0
    #: How many times a migration that hit ``lock_timeout`` is retried (with backoff).
    lock_retries: int = 5
    #: Fail when the database has applied versions this code has no file for.
    strict: bool = False
    #: Seconds one attempt of a migration may take from its first statement to its end (a deadline
    #: across its statements, each run under what is left of it), so that no application query
    #: waits longer for the locks it holds or queues for. ``None``: only ``lock_timeout``, per
    #: statement.
    stall_timeout: float | None = None

    def validated(self) -> "Settings":
        """``self`` after checking the values; raises :class:`ConfigurationError`."""
        if self.schema is not None:
            try:
                quote_ident(self.schema)
            except ValueError as exc:
                raise ConfigurationError(f"schema: {exc}") from None
        if self.lock_wait < 0 or self.lock_timeout <= 0 or self.lock_retries < 0:
            raise ConfigurationError(
                "lock_wait must be >= 0, lock_timeout > 0 and lock_retries >= 0 (seconds/count)"
            )
        if self.stall_timeout is not None and not self.stall_timeout > 0:
            raise ConfigurationError(
                f"stall_timeout must be a positive number of seconds (or None), got {self.stall_timeout!r}"
            )
        return self

    @property
    def ddl_lock_timeout(self) -> float:
        """The ``lock_timeout`` each statement runs under: never longer than ``stall_timeout``."""
        if self.stall_timeout is None:
            return self.lock_timeout
        return min(self.lock_timeout, self.stall_timeout)

    def files(self) -> list[MigrationFile]:
        """The migration files these settings name, in version order."""
        return discover(self.sources, include_bundled=self.include_bundled)


async def status(target: Target, settings: Settings) -> list[StatusRow]:
    """Status of every migration; reads only, takes no lock, creates nothing."""
    settings = settings.validated()
    files = settings.files()
    async with open_link(target, purpose="status") as link:
        applied = await _tracking.read(link.conn, TrackingSql.for_schema(settings.schema))
        broken = await _indexes.broken_files(link.conn, files, settings.schema)
    return compute_status(files, applied, broken)


async def migrate(
    target: Target, settings: Settings, to: str | int | None = None
) -> list[Executed]:
    """Apply pending migrations (up to ``to``); returns what this call applied."""
    settings = settings.validated()
    files = settings.files()
    forward = Forward(files, resolve_target(files, to, allow_zero=False), settings.strict)
    sql = TrackingSql.for_schema(settings.schema)
    async with open_link(target, purpose="migrate") as link:
        # Fast path, the common start-up case: one query, no lock.
        applied = await _tracking.read(link.conn, sql)
        if applied is not None and forward.done(applied):
            check_drift(files, applied, settings.strict, warn=True)
            log.debug("database is up to date (%d migrations applied)", len(applied))
            return []
        run = await start_run(link, settings)

        async def all_applied() -> bool:
            return forward.done(await _tracking.read(link.conn, sql))

        return await _steps.run_steps(run, forward.next_step, all_applied)


async def plan(target: Target, settings: Settings, to: str | int | None = None) -> "Plan":
    """What :func:`migrate` would run now, as SQL with its framing; reads only, takes no lock.

    Raises what :func:`migrate` would raise before its first step (a changed applied file, an
    unknown target or, with ``strict``, unknown applied versions).
    """
    from . import _dry_run  # only here: not imported by every other command

    settings = settings.validated()
    files = settings.files()
    limit = resolve_target(files, to, allow_zero=False)
    async with open_link(target, purpose="plan") as link:
        applied = await _tracking.read(link.conn, TrackingSql.for_schema(settings.schema))
        run = await start_run(link, settings)
        return _dry_run.build(run, files, applied, limit)


async def migrate_new_schema(target: Target, settings: Settings) -> list[Executed]:
    """Every migration into a schema that does not exist yet, all in one transaction.

    The engine's entry point for throw-away schemas (the pytest plugin's ``sam_db_schema``).
    Nobody can see the schema before the commit, so there is nothing to lock and no reason for a
    transaction per file: all files land, with their tracking rows, or none. A failing file is
    re-run through :func:`migrate` for its usual diagnostics (file, line, statement), which leaves
    the files before it applied. Sources with no-transaction files take :func:`migrate` from the
    start.
    """
    settings = settings.validated()
    if settings.schema is None:
        raise ConfigurationError("migrate_new_schema needs the schema to create")
    files = settings.files()
    if not all(m.transactional for m in files):
        return await migrate(target, settings)
    async with open_link(target, purpose="migrate") as link:
        run = await start_run(link, settings)
        if run.schema_exists:
            raise ConfigurationError(f"schema {run.schema!r} exists already")
        executed = await _steps.apply_in_one_transaction(run, files)
    if not executed:  # rolled back (or no files): the step-by-step path says what failed
        return await migrate(target, settings)
    return executed


async def rollback(
    target: Target, settings: Settings, *, steps: int = 1, to: str | int | None = None
) -> list[Executed]:
    """Undo the newest ``steps`` migrations, or all above ``to``; newest first."""
    if to is None and (not isinstance(steps, int) or steps < 1):
        raise ConfigurationError(f"steps must be a positive integer, got {steps!r}")
    settings = settings.validated()
    files = settings.files()
    limit = resolve_target(files, to, allow_zero=True)
    async with open_link(target, purpose="rollback") as link:
        applied = await _tracking.read(link.conn, TrackingSql.for_schema(settings.schema)) or []
        # Raises, undoing nothing, when one of the chosen migrations cannot be rolled back.
        backward = Backward(files, applied, steps=steps, limit=limit)
        if not backward.wanted:
            return []
        run = await start_run(link, settings)

        async def all_undone() -> bool:
            return backward.done(await _tracking.read(link.conn, run.sql))

        return await _steps.run_steps(run, backward.next_step, all_undone)


async def repair(
    target: Target, settings: Settings, versions: Sequence[str | int] | None = None
) -> list[str]:
    """Accept changed files: store their current checksum for the ``modified`` migrations.

    ``versions`` limits it to those versions (each must be modified); ``None`` accepts all.
    Returns the versions updated.
    """
    settings = settings.validated()
    files = settings.files()
    wanted = None if versions is None else {version_number(v, "version") for v in versions}
    async with open_link(target, purpose="repair") as link:
        run = await start_run(link, settings)
        conn = link.conn
        async with _lock.transaction(conn, run.key, wait=settings.lock_wait):
            changed = modified(files, await _tracking.read(conn, run.sql) or [])
            if wanted is not None:
                not_modified = wanted - {f.number for f, _ in changed}
                if not_modified:
                    raise ConfigurationError(
                        "not modified, nothing to accept for version(s): "
                        + ", ".join(str(v) for v in sorted(not_modified))
                    )
                changed = [(f, r) for f, r in changed if f.number in wanted]
            for f, r in changed:
                await conn.execute(run.sql.update_checksum, r.version, f.checksum, ALGORITHM)
                log.warning(
                    "accepted changed file %s: checksum %s -> %s",
                    f.origin,
                    r.checksum[:12],
                    f.checksum[:12],
                )
        return [r.version for _, r in changed]
