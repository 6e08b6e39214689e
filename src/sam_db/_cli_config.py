"""``sam-db config``: the effective settings and where each came from (passwords hidden)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ._cli_context import EMBEDDED_DATABASE, given_dsn, pgdata, project
from ._redact import redact_dsn


def _shown(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_shown(v) for v in value]
    return value


def _rows(args: argparse.Namespace) -> list[tuple[str, Any, str]]:
    p = project(args)
    rows: list[tuple[str, Any, str]] = [
        (
            "project_root",
            str(p.root),
            "the configuration's folder"
            if p.file
            else "no configuration: the nearest folder with pyproject.toml or .git, else here",
        ),
        ("config_file", str(p.file) if p.file else None, "searched upwards from here"),
    ]
    given = given_dsn(args)
    if given is not None:
        rows.append(("dsn", redact_dsn(given[0]), given[1]))
    else:
        from ._embedded import running_dsn, socket_dsn

        data = pgdata(args)
        dsn = running_dsn(data, EMBEDDED_DATABASE) or socket_dsn(data, EMBEDDED_DATABASE)
        rows.append(("dsn", dsn, f"the embedded server (no --dsn, ${p.value('dsn_env')} unset)"))
    rows.extend((key, _shown(s.value), s.origin) for key, s in p.settings.items())
    return rows


def cmd_config(args: argparse.Namespace) -> int:
    rows = _rows(args)
    if args.json:
        print(
            json.dumps(
                {key: {"value": value, "from": origin} for key, value, origin in rows}, indent=2
            )
        )
        return 0
    width = max(len(key) for key, _, _ in rows)
    for key, value, origin in rows:
        if isinstance(value, list):
            value = ", ".join(value) if value else "(none)"
        elif value is None:
            value = "(none)"
        print(f"{key.ljust(width)}  {value}    [{origin}]")
    return 0
