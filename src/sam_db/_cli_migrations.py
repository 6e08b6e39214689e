"""The migration commands of ``sam-db``: migrate, status, repair, new, seed (rollback: _rollback_preview)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from . import _engine
from ._cli_context import project, resolve_dsn, settings
from ._engine import StatusRow

EXIT_CHECK_FAILED = 3


def _fmt_ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def status_table(rows: Sequence[StatusRow]) -> str:
    """The human-readable ``status`` table and its summary line."""
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


def status_json(rows: Sequence[StatusRow]) -> str:
    """``status --json``: one object per migration."""
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


def cmd_status(args: argparse.Namespace) -> int:
    rows = asyncio.run(_engine.status(resolve_dsn(args), settings(args)))
    print(status_json(rows) if args.json else status_table(rows))
    if not args.json:
        from ._cli_dry_run import print_summary

        print_summary(rows)
    if args.check and any(r.state in ("pending", "modified", "failed") for r in rows):
        return EXIT_CHECK_FAILED
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    run_settings = settings(args, strict=args.strict)
    dsn = resolve_dsn(args)
    if args.wait is not None:
        from ._wait import wait_for_server

        asyncio.run(wait_for_server(dsn, args.wait))
    if args.dry_run:
        from ._cli_dry_run import print_plan

        return print_plan(dsn, run_settings, args.target)
    done = asyncio.run(_engine.migrate(dsn, run_settings, args.target))
    for d in done:
        print(f"applied {d.migration.filename} ({d.execution_ms:.1f} ms)")
    if not done:
        print("up to date: nothing to apply")
    return 0


def cmd_repair(args: argparse.Namespace) -> int:
    versions = args.versions or None
    fixed = asyncio.run(_engine.repair(resolve_dsn(args), settings(args), versions))
    for v in fixed:
        print(f"accepted the current file of {v}")
    if not fixed:
        print("no modified migrations: nothing to accept")
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    """Write into ``--dir``, else the first configured source folder, else ``<root>/migrations``."""
    from ._scaffold import new_migration
    from .errors import ConfigurationError

    if args.name is None or getattr(args, "half", False):
        raise ConfigurationError(
            "sam-db new takes a NAME (e.g. add_tags), or --memory-dimensions N [--half]"
        )
    p = project(args)
    sources = p.value("sources")
    folder = Path(args.dir) if args.dir else (sources[0] if sources else p.root / "migrations")
    forward, back = new_migration(args.name, folder, settings(args))
    print(f"created {forward}\ncreated {back}")
    if not any(folder.resolve() == Path(s).resolve() for s in sources):
        print(
            f"sam-db: migrate and status read {folder} only when it is a source: add "
            f'sources = ["{_relative(folder, p.root)}"] to [tool.sam_db] in pyproject.toml '
            "(or to sam_db.toml), or pass --source every time",
            file=sys.stderr,
        )
    return 0


def _relative(folder: Path, root: Path) -> str:
    try:
        return folder.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(folder.resolve())


def cmd_seed(args: argparse.Namespace) -> int:
    from ._seed import seed

    counts = asyncio.run(seed(resolve_dsn(args), settings(args)))
    print("seeded: " + ", ".join(f"{n} {table}" for table, n in counts.items()))
    return 0
