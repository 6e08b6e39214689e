"""The migration engine: plans and applies migrations, reports status, rolls back.

Works on plain dataclasses (no pydantic) so the CLI starts fast; ``sam_db._api`` wraps the results
in the public pydantic models.

Concurrency model: every step (one migration applied or rolled back) is one transaction that first
takes the schema's transaction-level advisory lock, then (re)creates the tracking table and re-reads
what is applied, and only then decides what to do. Many processes can therefore run ``migrate`` at
once: each step happens exactly once, the others wait (holding no transaction, see ``_lock``), see
it done and move on.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Literal, NamedTuple

import asyncpg

from . import _indexes, _lock, _tracking
from ._checksum import ALGORITHM
from ._connect import Link, Target, open_link
from ._failures import describe as _describe
from ._failures import excerpt as _excerpt
from ._failures import failure as _failure
from ._failures import missing_extension as _missing_extension
from ._failures import timed_out as _timed_out
from ._failures import verb as _verb
from ._ident import quote_ident
from ._migration import MigrationFile
from ._scripts import apply_settings as _apply_settings
from ._scripts import record as _record
from ._scripts import run_on_second_connection, run_with_session_lock
from ._sources import Source, discover
from ._sqlsplit import (
    SqlSyntaxError,
    has_statements,
)
from ._stall import StallTimeout as _StallTimeout
from ._stall import StatementFailed, run_in_tx
from ._tracking import AppliedRow, TrackingSql
from .errors import (
    ConfigurationError,
    MigrationError,
    MigrationFailedError,
    MigrationModifiedError,
    RollbackUnavailableError,
    UnknownMigrationError,
    UnknownTargetError,
)

log = logging.getLogger("sam_db")

State = Literal["applied", "pending", "modified", "missing", "failed"]


# Records are NamedTuples, not dataclasses: building a dataclass costs ~0.5 ms at import, and the
# CLI's start-up time is part of every `sam-db status` in CI.


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


class Done(NamedTuple):
    """A migration this call applied (or rolled back) and how long its SQL took."""

    migration: MigrationFile
    execution_ms: float


class _Script(NamedTuple):
    sql: str
    origin: str
    transactional: bool


class _Step(NamedTuple):
    migration: MigrationFile
    script: _Script
    record: Literal["insert", "delete"]


class _Ctx:
    """State of one run: where it works, its lock key, and what it has done so far."""

    __slots__ = (
        "done",
        "ensured",
        "key",
        "link",
        "schema",
        "schema_exists",
        "search_path",
        "settings",
        "sql",
    )

    def __init__(
        self,
        link: Link,
        settings: Settings,
        schema: str,
        search_path: str,
        key: tuple[int, int],
        sql: TrackingSql,
        schema_exists: bool,
    ) -> None:
        self.link = link
        self.settings = settings
        self.schema = schema
        self.search_path = search_path
        self.key = key
        self.sql = sql
        self.schema_exists = schema_exists
        self.ensured = False
        self.done: list[Done] = []


# ---------------------------------------------------------------------------------------------
# planning (pure)


def _number(version: str | int, what: str) -> int:
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
    number = _number(target, "target")
    if allow_zero and number == 0:
        return 0
    if not any(f.number == number for f in files):
        known = ", ".join(f.version for f in files) or "none"
        raise UnknownTargetError(f"target {target!r} names no migration (known versions: {known})")
    return number


class Broken(NamedTuple):
    """A no-transaction file's INVALID indexes, and whether one of them is being built right now."""

    indexes: tuple[str, ...]
    building: bool


def compute_status(
    files: Sequence[MigrationFile],
    applied: Sequence[AppliedRow] | None,
    broken: Mapping[int, Broken] | None = None,
) -> list[StatusRow]:
    """One row per known file and per applied version without a file, ordered by version.

    A file in ``broken`` is ``failed`` when applied, or when pending and nobody builds its index.
    """
    rows = {r.number: r for r in applied or ()}
    out: list[StatusRow] = []
    for f in files:
        r = rows.pop(f.number, None)
        state: State = (
            "pending" if r is None else ("applied" if r.checksum == f.checksum else "modified")
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


def _check_drift(
    files: Sequence[MigrationFile], applied: Sequence[AppliedRow], strict: bool, *, warn: bool
) -> None:
    by_number = {r.number: r for r in applied}
    modified = [
        f for f in files if f.number in by_number and by_number[f.number].checksum != f.checksum
    ]
    if modified:
        names = [f.filename for f in modified]
        raise MigrationModifiedError(
            "applied migration file(s) changed since they were applied: "
            + ", ".join(
                f"{f.origin} (applied {by_number[f.number].checksum[:12]}, now {f.checksum[:12]})"
                for f in modified
            )
            + ". Restore the original file(s) and put the change in a new migration; if the change is "
            "deliberate and harmless (a comment, formatting), accept it with `sam-db repair "
            + " ".join(f.version for f in modified)
            + "` or `await sam_db.repair(dsn, versions=[...])`.",
            files=names,
        )
    known = {f.number for f in files}
    missing = [r.version for r in applied if r.number not in known]
    if missing:
        if strict:
            raise UnknownMigrationError(
                "the database has applied migrations this code does not know: "
                + ", ".join(missing)
                + " (a newer release migrated it?). Deploy that release, or pass strict=False.",
                versions=missing,
            )
        if warn:
            log.warning(
                "database has applied migration(s) with no file here: %s "
                "(probably from a newer release during a rolling deploy); continuing",
                ", ".join(missing),
            )


def _pending(
    files: Sequence[MigrationFile], applied: Sequence[AppliedRow], limit: int | None
) -> list[MigrationFile]:
    done = {r.number for r in applied}
    return [f for f in files if f.number not in done and (limit is None or f.number <= limit)]


# ---------------------------------------------------------------------------------------------
# public entry points (internal records)


async def status(target: Target, settings: Settings) -> list[StatusRow]:
    """Status of every migration; reads only, takes no lock, creates nothing."""
    settings = settings.validated()
    files = discover(settings.sources, include_bundled=settings.include_bundled)
    async with open_link(target, purpose="status") as link:
        applied = await _tracking.read(link.conn, TrackingSql.for_schema(settings.schema))
        broken = await _broken_files(link.conn, files, settings.schema)
    return compute_status(files, applied, broken)


async def _broken_files(
    conn: asyncpg.Connection, files: Sequence[MigrationFile], schema: str | None
) -> dict[int, Broken]:
    """The no-transaction files whose concurrently built indexes exist INVALID (one query)."""
    named = [
        (f.number, i) for f in files if not f.transactional for i in _indexes.built_indexes(f.sql)
    ]
    if not named:
        return {}
    try:
        found = await _indexes.states(conn, [i for _, i in named], schema)
    except asyncpg.PostgresError:  # catalogs or progress views restricted: nothing to report
        return {}
    owner = {id(i): number for number, i in named}
    out: dict[int, Broken] = {}
    for st in found:
        if not st.valid:
            number = owner[id(st.built)]
            was = out.get(number, Broken((), False))
            out[number] = Broken((*was.indexes, st.shown), was.building or st.builder is not None)
    return out


async def migrate(target: Target, settings: Settings, to: str | int | None = None) -> list[Done]:
    """Apply pending migrations (up to ``to``); returns what this call applied."""
    settings = settings.validated()
    files = discover(settings.sources, include_bundled=settings.include_bundled)
    limit = resolve_target(files, to, allow_zero=False)
    sql = TrackingSql.for_schema(settings.schema)
    async with open_link(target, purpose="migrate") as link:
        # Fast path, the common start-up case: one query, no lock.
        applied = await _tracking.read(link.conn, sql)
        if applied is not None:
            _check_drift(files, applied, settings.strict, warn=True)
            if not _pending(files, applied, limit):
                log.debug("database is up to date (%d migrations applied)", len(applied))
                return []
        ctx = await _context(link, settings)

        def choose(rows: list[AppliedRow]) -> _Step | None:
            _check_drift(files, rows, settings.strict, warn=False)
            todo = _pending(files, rows, limit)
            if not todo:
                return None
            mig = todo[0]
            if rows and mig.number < rows[-1].number:
                log.warning(
                    "applying %s out of order: %s is already applied",
                    mig.filename,
                    rows[-1].version,
                )
            return _Step(mig, _Script(mig.sql, mig.origin, mig.transactional), "insert")

        async def all_applied() -> bool:
            rows = await _tracking.read(link.conn, sql)
            return rows is not None and not _pending(files, rows, limit)

        while await _run_step(ctx, choose, all_applied):
            pass
        return ctx.done


async def migrate_new_schema(target: Target, settings: Settings) -> list[Done]:
    """Every migration into a schema that does not exist yet, all in one transaction.

    For throw-away schemas (the pytest plugin's ``sam_db_schema``). Nobody can see the schema
    before the commit, so there is nothing to lock and no reason for a transaction per file:
    one round trip per file instead of seven, and all files land or none. A failing file is
    re-run through :func:`migrate` for its usual diagnostics (file, line, statement). Sources with
    no-transaction files take the :func:`migrate` path from the start.
    """
    settings = settings.validated()
    if settings.schema is None:
        raise ConfigurationError("migrate_new_schema needs the schema to create")
    files = discover(settings.sources, include_bundled=settings.include_bundled)
    if not all(m.transactional for m in files):
        return await migrate(target, settings)
    async with open_link(target, purpose="migrate") as link:
        ctx = await _context(link, settings)
        if ctx.schema_exists:
            raise ConfigurationError(f"schema {ctx.schema!r} exists already")
        conn = link.conn
        done: list[Done] = []
        try:
            async with conn.transaction():
                await _prepare_tx(ctx, conn)  # settings, the schema, the tracking table
                for mig in files:
                    started = time.perf_counter()
                    if has_statements(mig.sql):  # asyncpg fails on an empty query
                        await conn.execute(mig.sql)
                    done.append(Done(mig, (time.perf_counter() - started) * 1000))
                await conn.executemany(
                    ctx.sql.insert,
                    [
                        (
                            d.migration.version,
                            d.migration.name,
                            d.migration.checksum,
                            ALGORITHM,
                            d.execution_ms,
                        )
                        for d in done
                    ],
                )
        except asyncpg.PostgresError:
            done = []  # rolled back: the schema is gone
    if not done:
        # The step-by-step path fails the same way and says where (leaving the files before the
        # failing one applied).
        return await migrate(target, settings)
    for d in done:
        log.info("applied %s in %.1f ms", d.migration.filename, d.execution_ms)
    return done


async def rollback(
    target: Target, settings: Settings, *, steps: int = 1, to: str | int | None = None
) -> list[Done]:
    """Undo the newest ``steps`` migrations, or all above ``to``; newest first."""
    if to is None and (not isinstance(steps, int) or steps < 1):
        raise ConfigurationError(f"steps must be a positive integer, got {steps!r}")
    settings = settings.validated()
    files = discover(settings.sources, include_bundled=settings.include_bundled)
    by_number = {f.number: f for f in files}
    limit = resolve_target(files, to, allow_zero=True)
    async with open_link(target, purpose="rollback") as link:
        applied = await _tracking.read(link.conn, TrackingSql.for_schema(settings.schema)) or []
        newest_first = sorted(applied, key=lambda r: r.number, reverse=True)
        chosen = (
            [r for r in newest_first if r.number > limit]
            if limit is not None
            else newest_first[:steps]
        )
        # Check every one before undoing any: a gap must not leave the schema half rolled back.
        for r in chosen:
            f = by_number.get(r.number)
            if f is None:
                raise RollbackUnavailableError(
                    f"cannot roll back {r.version}_{r.name}: this code has no file for it (applied by a "
                    "newer release?). Roll it back with the release that has it. Nothing was rolled back."
                )
            if f.rollback_sql is None:
                raise RollbackUnavailableError(
                    f"cannot roll back {f.filename}: it has no {f.version}_{f.name}.rollback.sql next to "
                    f"{f.origin}. Write one (it must undo exactly what the migration did). "
                    "Nothing was rolled back."
                )
        if not chosen:
            return []
        ctx = await _context(link, settings)
        wanted = [r.number for r in chosen]

        def choose(rows: list[AppliedRow]) -> _Step | None:
            present = {r.number for r in rows}
            while wanted and wanted[0] not in present:  # someone else rolled it back meanwhile
                wanted.pop(0)
            if not wanted:
                return None
            f = by_number[wanted.pop(0)]
            assert f.rollback_sql is not None and f.rollback_origin is not None
            return _Step(
                f, _Script(f.rollback_sql, f.rollback_origin, f.rollback_transactional), "delete"
            )

        async def all_undone() -> bool:
            present = {r.number for r in await _tracking.read(link.conn, ctx.sql) or ()}
            return not any(number in present for number in wanted)

        while await _run_step(ctx, choose, all_undone):
            pass
        return ctx.done


async def repair(
    target: Target, settings: Settings, versions: Sequence[str | int] | None = None
) -> list[str]:
    """Accept changed files: store their current checksum for the ``modified`` migrations.

    ``versions`` limits it to those versions (each must be modified); ``None`` accepts all.
    Returns the versions updated.
    """
    settings = settings.validated()
    files = discover(settings.sources, include_bundled=settings.include_bundled)
    by_number = {f.number: f for f in files}
    wanted = None if versions is None else {_number(v, "version") for v in versions}
    async with open_link(target, purpose="repair") as link:
        ctx = await _context(link, settings)
        conn = link.conn
        async with _lock.transaction(conn, ctx.key, wait=settings.lock_wait):
            rows = await _tracking.read(conn, ctx.sql) or []
            modified = [
                r
                for r in rows
                if r.number in by_number and by_number[r.number].checksum != r.checksum
            ]
            if wanted is not None:
                not_modified = wanted - {r.number for r in modified}
                if not_modified:
                    raise ConfigurationError(
                        "not modified, nothing to accept for version(s): "
                        + ", ".join(str(v) for v in sorted(not_modified))
                    )
                modified = [r for r in modified if r.number in wanted]
            for r in modified:
                f = by_number[r.number]
                await conn.execute(ctx.sql.update_checksum, r.version, f.checksum, ALGORITHM)
                log.warning(
                    "accepted changed file %s: checksum %s -> %s",
                    f.origin,
                    r.checksum[:12],
                    f.checksum[:12],
                )
        return [r.version for r in modified]


# ---------------------------------------------------------------------------------------------
# execution


async def _context(link: Link, settings: Settings) -> _Ctx:
    row = await link.conn.fetchrow(
        """SELECT coalesce($1::text, current_schema()) AS schema,
                  to_regnamespace(quote_ident(coalesce($1::text, current_schema()))) IS NOT NULL AS present,
                  (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                    WHERE e.extname = 'vector') AS vector_schema""",
        settings.schema,
    )
    assert row is not None
    schema = row["schema"]
    if schema is None:
        raise ConfigurationError(
            "the connection's search_path names no existing schema: pass schema='...' to choose one"
        )
    path = [schema]
    for extra in (row["vector_schema"], "public"):
        if extra and extra not in path:
            path.append(extra)
    return _Ctx(
        link=link,
        settings=settings,
        schema=schema,
        search_path=", ".join(quote_ident(p) for p in path),
        key=_lock.lock_key(schema),
        sql=TrackingSql.for_schema(schema),
        schema_exists=bool(row["present"]),
    )


async def _prepare_tx(ctx: _Ctx, conn: asyncpg.Connection) -> None:
    """Inside a transaction holding the lock: settings, schema and tracking table."""
    await _apply_settings(ctx, conn, local=True)
    if not ctx.ensured:
        if not ctx.schema_exists:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(ctx.schema)}")
        await conn.execute(ctx.sql.create)
        ctx.ensured = True


async def _run_step(
    ctx: _Ctx,
    choose: Callable[[list[AppliedRow]], _Step | None],
    pointless: Callable[[], Awaitable[bool]],
) -> bool:
    """Run one step in its own locked transaction; False when there was nothing left to do.

    ``pointless`` tells a process waiting for the lock that others have done everything meanwhile.
    """
    conn = ctx.link.conn
    attempt = 0
    while True:
        step: _Step | None = None
        try:
            async with _lock.transaction(
                conn, ctx.key, wait=ctx.settings.lock_wait, pointless=pointless
            ) as locked:
                if not locked:
                    return False
                await _prepare_tx(ctx, conn)
                step = choose(_tracking.rows(await conn.fetch(ctx.sql.select)))
                if step is None:
                    return False
                # A no-transaction script with no second connection to run it on is run after
                # this transaction ends, under a session lock instead.
                single = not step.script.transactional and ctx.link.second is None
                if not single:
                    started = time.perf_counter()
                    if step.script.transactional:
                        await _run_in_tx(ctx, conn, step)
                    else:
                        await run_on_second_connection(ctx, step)
                    elapsed = (time.perf_counter() - started) * 1000
                    await _record(ctx, conn, step, elapsed)
            if single:
                took = await run_with_session_lock(ctx, step)
                if took is not None:
                    _log_done(ctx, step, took)
                return True
            _log_done(ctx, step, elapsed)
            return True
        except (asyncpg.LockNotAvailableError, _StallTimeout) as exc:
            assert step is not None
            attempt += 1
            await _back_off(ctx, step, exc, attempt)
        except asyncpg.PostgresError as exc:
            if step is None:
                raise MigrationError(
                    f"could not prepare schema {ctx.schema!r} for migrations: {_describe(exc)}. "
                    "The user needs CREATE on the database (for a new schema) or on the schema."
                ) from None
            if not step.script.transactional:
                raise
            raise await _failure(ctx, step, exc) from None


async def _run_in_tx(ctx: _Ctx, conn: asyncpg.Connection, step: _Step) -> None:
    """Run a transactional script: one simple query, or statement by statement under a deadline."""
    script = step.script
    stall = ctx.settings.stall_timeout
    if stall is None:
        if has_statements(script.sql):  # asyncpg fails on an empty query
            await conn.execute(script.sql)
        return
    try:
        await run_in_tx(
            conn, script.sql, stall_timeout=stall, lock_timeout=ctx.settings.lock_timeout
        )
    except SqlSyntaxError as exc:
        raise MigrationFailedError(
            f"{script.origin}: {exc}", file=script.origin, line=exc.line
        ) from None
    except StatementFailed as failed:
        error, st = failed.error, failed.statement
        raise _missing_extension(step, error) or MigrationFailedError(
            f"{_verb(step)} {script.origin} failed at line {st.line} (statement {failed.index} of "
            f"{failed.total}): {_describe(error)}\n  {_excerpt(st.sql)}\n"
            "Its transaction was rolled back: nothing of it was applied.",
            file=script.origin,
            statement=st.sql,
            line=st.line,
            sqlstate=error.sqlstate,
        ) from None


async def _back_off(
    ctx: _Ctx, step: _Step, exc: asyncpg.LockNotAvailableError | _StallTimeout, attempt: int
) -> None:
    """Wait before retrying a step that timed out; raise once ``lock_retries`` are spent."""
    if attempt > ctx.settings.lock_retries:
        raise _timed_out(ctx, step, exc, attempt) from None
    delay = min(0.25 * 2**attempt, 10.0)
    log.warning(
        "%s %s timed out (%s); retry %d/%d in %.1f s",
        _verb(step),
        step.migration.filename,
        exc,
        attempt,
        ctx.settings.lock_retries,
        delay,
    )
    await asyncio.sleep(delay)


def _log_done(ctx: _Ctx, step: _Step, elapsed: float) -> None:
    """Count ``step`` as done by this call and log it."""
    ctx.done.append(Done(step.migration, elapsed))
    what = "applied" if step.record == "insert" else "rolled back"
    log.info("%s %s in %.1f ms", what, step.migration.filename, elapsed)
