"""pgvector's codec is registered in one place (``memory._connections.register_codec``): the
store's owned and borrowed pools and the pytest plugin's fixtures all go through it."""

from __future__ import annotations

from pathlib import Path

import sam_db

SRC = Path(sam_db.__file__).parent


def test_only_the_connections_module_calls_pgvectors_register_vector() -> None:
    callers = sorted(
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if "register_vector(" in path.read_text(encoding="utf-8")
    )
    assert callers == ["memory/_connections.py"]
