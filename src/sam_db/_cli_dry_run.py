"""``sam-db migrate --dry-run`` and the plan ``sam-db status`` shows: what a migrate would run."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from . import _engine, _plan
from ._engine import Settings, StatusRow


def print_plan(dsn: str, settings: Settings, target: str | None) -> int:
    """Print the SQL a migrate would send now, in order, with its framing; send none of it."""
    plan = asyncio.run(_engine.plan(dsn, settings, target))
    print(plan.text(), end="")
    return 0


def print_summary(rows: Sequence[StatusRow]) -> None:
    """Below the status table: the steps a migrate would take, one line each, in order."""
    lines = _plan.summary(rows)
    if lines:
        print()
        print("\n".join(lines))
