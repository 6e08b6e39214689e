"""The public migration coroutines: ``migrate``, ``status``, ``rollback`` and ``repair``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from . import _engine
from ._connect import Target
from ._engine import Executed, Settings
from ._models import Migration, MigrationPlan, MigrationStatus
from ._sources import Source


def _settings(
    schema: str | None,
    sources: Sequence[Source],
    include_bundled: bool,
    lock_wait: float,
    lock_timeout: float,
    lock_retries: int,
    strict: bool = False,
    stall_timeout: float | None = None,
) -> Settings:
    if isinstance(sources, (str, os.PathLike)) or not isinstance(sources, Iterable):
        sources = (sources,)  # one folder given on its own
    return Settings(
        schema=schema,
        sources=tuple(sources),
        include_bundled=include_bundled,
        lock_wait=lock_wait,
        lock_timeout=lock_timeout,
        lock_retries=lock_retries,
        strict=strict,
        stall_timeout=stall_timeout,
    )


def _model(done: Executed) -> Migration:
    m = done.migration
    return Migration(
        version=m.version,
        name=m.name,
        filename=m.filename,
        origin=m.origin,
        checksum=m.checksum,
        transactional=m.transactional,
        has_rollback=m.rollback_sql is not None,
        execution_ms=done.execution_ms,
    )


async def migrate(
    dsn: Target,
    *,
    schema: str | None = None,
    sources: Sequence[Source] = (),
    target: str | int | None = None,
    strict: bool = False,
    include_bundled: bool = True,
    lock_wait: float = 300.0,
    lock_timeout: float = 5.0,
    lock_retries: int = 5,
    stall_timeout: float | None = None,
    wait: float | None = None,
) -> list[Migration]:
    """Apply every pending migration (or those up to ``target``); return what this call applied.

    ``dsn`` is a DSN string, an ``asyncpg.Connection`` or an ``asyncpg.Pool``. ``sources`` adds
    migration folders (paths or ``importlib.resources`` folders) to the bundled ones; ``schema`` puts
    everything, the ``schema_migrations`` table included, in that schema (created if absent).
    Safe to call from many processes at once: each migration is applied exactly once, the others
    wait up to ``lock_wait`` seconds. DDL waits for a table lock at most ``lock_timeout`` seconds
    and is retried ``lock_retries`` times. With ``strict``, applied versions this code has no file
    for raise :class:`~sam_db.errors.UnknownMigrationError` instead of a warning. When nothing is
    pending this costs one query and takes no lock. ``stall_timeout`` bounds a whole migration
    attempt (a deadline across its statements, lock waits and execution), so no application query
    waits longer than that for it; past it the attempt rolls back and is retried.
    With ``wait``, a DSN's server is first given that many seconds to accept a connection (a
    replica starting beside its database); past it :class:`~sam_db.errors.ServerNotReadyError`
    says what the last attempt met. A connection or pool given as ``dsn`` is already connected.
    """
    if wait is not None and isinstance(dsn, str):
        from ._wait import wait_for_server

        await wait_for_server(dsn, wait)
    settings = _settings(
        schema,
        sources,
        include_bundled,
        lock_wait,
        lock_timeout,
        lock_retries,
        strict,
        stall_timeout,
    )
    return [_model(d) for d in await _engine.migrate(dsn, settings, target)]


async def plan(
    dsn: Target,
    *,
    schema: str | None = None,
    sources: Sequence[Source] = (),
    target: str | int | None = None,
    strict: bool = False,
    include_bundled: bool = True,
    lock_wait: float = 300.0,
    lock_timeout: float = 5.0,
    lock_retries: int = 5,
    stall_timeout: float | None = None,
) -> MigrationPlan:
    """What :func:`migrate` with the same arguments would run now, changing nothing (a dry run).

    Each pending migration with the SQL its step would send, in order, framed as it runs: its
    transaction (or none, for a no-transaction file), the migration lock, ``lock_timeout`` and
    ``stall_timeout``, the tracking row. Reads only and takes no lock; raises what ``migrate``
    would raise before its first step (e.g. :class:`~sam_db.errors.MigrationModifiedError`).
    """
    from ._models import PlannedMigration

    settings = _settings(
        schema,
        sources,
        include_bundled,
        lock_wait,
        lock_timeout,
        lock_retries,
        strict,
        stall_timeout,
    )
    found = await _engine.plan(dsn, settings, target)
    steps = [
        PlannedMigration(
            version=p.migration.version,
            name=p.migration.name,
            filename=p.migration.filename,
            origin=p.migration.origin,
            checksum=p.migration.checksum,
            transactional=p.migration.transactional,
            sql=p.sql,
        )
        for p in found.steps
    ]
    return MigrationPlan(
        target_schema=found.schema,
        steps=steps,
        lock_wait=lock_wait,
        lock_timeout=lock_timeout,
        lock_retries=lock_retries,
        stall_timeout=stall_timeout,
        sql=found.text(),
    )


async def migrate_new_schema(
    dsn: Target, *, schema: str, sources: Sequence[Source] = (), include_bundled: bool = True
) -> list[Migration]:
    """Create ``schema`` and apply every migration to it in one transaction (all or nothing).

    Private to sam_db (the pytest plugin's fresh schemas): for a schema nobody else uses yet it
    skips the lock and the per-file transactions of :func:`migrate`.
    """
    settings = _settings(schema, sources, include_bundled, 0.0, 5.0, 0)
    return [_model(d) for d in await _engine.migrate_new_schema(dsn, settings)]


async def status(
    dsn: Target,
    *,
    schema: str | None = None,
    sources: Sequence[Source] = (),
    include_bundled: bool = True,
) -> list[MigrationStatus]:
    """Every known or applied migration with its state, ordered by version. Reads only."""
    settings = _settings(schema, sources, include_bundled, 0.0, 5.0, 0)
    rows = await _engine.status(dsn, settings)
    return [MigrationStatus.model_validate(r, from_attributes=True) for r in rows]


async def rollback(
    dsn: Target,
    *,
    steps: int = 1,
    target: str | int | None = None,
    schema: str | None = None,
    sources: Sequence[Source] = (),
    include_bundled: bool = True,
    lock_wait: float = 300.0,
    lock_timeout: float = 5.0,
    lock_retries: int = 5,
    stall_timeout: float | None = None,
) -> list[Migration]:
    """Undo the newest ``steps`` applied migrations, or every one above ``target`` (``"0"``: all).

    Returns what was rolled back, newest first. Each runs its ``.rollback.sql`` in a transaction
    with the removal of its tracking row. If any chosen migration has no rollback file, nothing is
    rolled back and :class:`~sam_db.errors.RollbackUnavailableError` is raised.
    """
    settings = _settings(
        schema,
        sources,
        include_bundled,
        lock_wait,
        lock_timeout,
        lock_retries,
        False,
        stall_timeout,
    )
    done = await _engine.rollback(dsn, settings, steps=steps, to=target)
    return [_model(d) for d in done]


async def repair(
    dsn: Target,
    *,
    versions: Sequence[str | int] | None = None,
    schema: str | None = None,
    sources: Sequence[Source] = (),
    include_bundled: bool = True,
    lock_wait: float = 300.0,
) -> list[str]:
    """Accept deliberately changed migration files: record their current checksums.

    The explicit way out of :class:`~sam_db.errors.MigrationModifiedError` when a change is
    harmless (a comment, formatting). ``versions`` limits it to those (each must be ``modified``);
    ``None`` accepts every modified file. Returns the versions updated. Never runs any migration SQL.
    """
    settings = _settings(schema, sources, include_bundled, lock_wait, 5.0, 0)
    return await _engine.repair(dsn, settings, versions)
