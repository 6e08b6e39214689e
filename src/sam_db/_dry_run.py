"""``migrate --dry-run``: the SQL a migrate would send now, in order, with its framing.

Nothing is sent but reads. The text is built from the very statements the engine sends (the lock
try, the settings, the tracking table's statements, each file as it is sent), with their
parameters written in as literals, and comments for what happens between them: which connection,
which transaction, the waits and retries. A step is framed as ``_steps`` runs it: in its own
transaction holding the migration lock, or, for a file that opts out of a transaction, statement
by statement beside (or, on a single connection, after) that transaction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from . import _indexes, _lock
from ._ident import quote_ident
from ._migration import MigrationFile
from ._no_transaction import RESET_SQL, STATEMENT_TIMEOUT_SQL, statements_of
from ._plan import check_drift, pending
from ._run import SETTINGS_SQL, Run, Step, insert_args
from ._sqlsplit import SqlSyntaxError, split_statements
from ._stall import DEADLINE_SQL, ms, statement_timeout_outside_tx
from ._tracking import AppliedRow
from .errors import MigrationFailedError

if TYPE_CHECKING:
    from ._engine import Settings


class PlannedStep(NamedTuple):
    """One migration a migrate would apply, and the SQL of that step with its framing."""

    migration: MigrationFile
    sql: str


class Plan(NamedTuple):
    """What a migrate would do now: where, under which limits, and each step's SQL, in order."""

    schema: str
    settings: Settings
    steps: list[PlannedStep]
    #: Whether no-transaction files run on a second connection (else under a session lock).
    extra_connection: bool

    def text(self) -> str:
        """The whole plan as one SQL script with comments (nothing in it has been run)."""
        return "\n\n".join([_header(self), *(s.sql for s in self.steps)]) + "\n"


class _Raw(str):
    """A value written into a statement as is (not quoted as a literal)."""


def literal(value: object) -> str:
    """``value`` as an SQL literal, for showing a parameter in a statement's text."""
    if isinstance(value, _Raw):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value).replace("'", "''")
    return f"E'{text.replace(chr(92), chr(92) * 2)}'" if "\\" in text else f"'{text}'"


def inline(sql: str, *args: object) -> str:
    """``sql`` with its ``$n`` placeholders replaced by the literals of ``args``."""
    return re.sub(r"\$(\d+)", lambda m: literal(args[int(m.group(1)) - 1]), sql)


def build(
    run: Run, files: Sequence[MigrationFile], applied: list[AppliedRow] | None, limit: int | None
) -> Plan:
    """The plan of ``migrate`` from the tracking rows read now; raises as migrate would on drift."""
    settings = run.settings
    check_drift(files, applied or [], settings.strict, warn=True)
    steps: list[PlannedStep] = []
    for mig in pending(files, applied or [], limit):
        step = Step.apply(mig)
        first = not steps  # the first step makes sure of the schema and the tracking table
        if mig.transactional:
            steps.append(PlannedStep(mig, _in_transaction(run, step, first)))
        else:
            steps.append(PlannedStep(mig, _outside_transaction(run, step, first)))
    return Plan(run.schema, settings, steps, extra_connection=run.link.acquire_extra is not None)


def _header(plan: Plan) -> str:
    s = plan.settings
    stall = f"{s.stall_timeout:g}s per attempt" if s.stall_timeout is not None else "none"
    names = ", ".join(p.migration.filename for p in plan.steps) or "none (up to date)"
    return "\n".join(
        [
            "-- sam-db migrate --dry-run: nothing below has been run.",
            f"-- schema {quote_ident(plan.schema)}; to apply, in order: {names}",
            f"-- each step takes the migration lock first (waiting at most lock_wait={s.lock_wait:g}s,"
            " polled, holding no transaction between tries) and re-reads what is applied;",
            f"-- DDL waits at most lock_timeout={s.ddl_lock_timeout:g}s for a table lock; a step that"
            f" times out is rolled back and retried up to {s.lock_retries} times; stall_timeout: {stall}",
        ]
    )


def _open_step(run: Run, step: Step, first: bool) -> list[str]:
    """The start of a step's locked transaction, up to reading the tracking rows under the lock."""
    lines = [
        "BEGIN;",
        f"{_lock.try_sql(run.key)};  -- the migration lock: retried until free",
        inline(SETTINGS_SQL, run.search_path, ms(run.settings.ddl_lock_timeout), True) + ";",
    ]
    if first:
        if not run.schema_exists:
            lines.append(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(run.schema)};")
        lines.append(run.sql.create + ";")
    lines.append(f"{run.sql.select};  -- still pending? (another process may have applied it)")
    return lines


def _record(run: Run, step: Step) -> str:
    args = insert_args(step.migration, 0.0)[:-1]
    return inline(run.sql.insert, *args, _Raw("/* its execution ms */ 0")) + ";"


def _in_transaction(run: Run, step: Step, first: bool) -> str:
    lines = [f"-- {step.script.origin}: in one transaction with its tracking row"]
    lines += _open_step(run, step, first)
    stall = run.settings.stall_timeout
    if stall is None:
        lines.append(step.script.sql.strip())
    else:
        lines.append(f"-- statement by statement, all within stall_timeout={stall:g}s:")
        try:
            statements = split_statements(step.script.sql)
        except SqlSyntaxError as exc:
            lines.append(f"-- cannot be split ({exc}): the migration would fail here")
            statements = []
        limits = inline(DEADLINE_SQL, ms(min(stall, run.settings.lock_timeout)), ms(stall))
        for st in statements:
            lines.append(f"{limits};  -- at most: what is left of the deadline")
            lines.append(st.sql + ";")
        lines.append("-- then statement_timeout is set back to the session's value")
    lines += [_record(run, step), "COMMIT;"]
    return "\n".join(lines)


def _outside_transaction(run: Run, step: Step, first: bool) -> str:
    script = step.script
    beside = run.link.acquire_extra is not None
    lines = [
        f"-- {script.origin}: outside a transaction (the file opts out), statement by statement"
    ]
    lines += ["-- connection 1:", *_open_step(run, step, first)]
    if beside:
        lines += [
            "SELECT;  -- a simple query: connection 1 keeps no snapshot for the build to wait for",
            "-- connection 2, while connection 1 holds the lock:",
        ]
    else:
        lines += [
            "COMMIT;",
            f"{inline(_lock.TRY_SESSION_SQL, *run.key)};  -- session lock: retried until free",
            f"{run.sql.select};  -- still pending?",
        ]
    lines += _statements(run, step)
    if beside:
        lines.append("-- connection 1:")
    lines.append(_record(run, step))
    lines.append("COMMIT;" if beside else inline(_lock.UNLOCK_SESSION_SQL, *run.key) + ";")
    return "\n".join(lines)


def _statements(run: Run, step: Step) -> list[str]:
    """A no-transaction file's statements as sent, with the session settings around them."""
    lines = [inline(SETTINGS_SQL, run.search_path, ms(run.settings.ddl_lock_timeout), False) + ";"]
    built = [i.name for i in _indexes.built_indexes(step.script.sql)]
    if built:
        lines.append(
            f"-- first, an INVALID {', '.join(built)} left by an earlier run is waited for (while "
            "being built) or dropped (DROP INDEX CONCURRENTLY); after, each must be valid"
        )
    try:
        statements = statements_of(step)
    except MigrationFailedError as exc:  # shown, not raised: the migration would fail the same way
        return [*lines, f"-- cannot be split ({exc}): the migration would fail here"]
    stall = run.settings.stall_timeout
    for st in statements:
        if stall is not None:
            lines.append(
                inline(STATEMENT_TIMEOUT_SQL, statement_timeout_outside_tx(st.sql, stall)) + ";"
            )
        lines.append(st.sql + ";")
    lines.append(RESET_SQL + ";")
    return lines
