"""Start-up cost: what importing sam_db pulls in."""

from __future__ import annotations

import subprocess
import sys

import pytest

import sam_db


def loaded_after(code: str) -> set[str]:
    script = f"{code}\nimport sys\nprint(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_sam_db_imports_neither_openai_nor_pydantic() -> None:
    loaded = loaded_after("import sam_db")
    assert "openai" not in loaded and "pydantic" not in loaded


def test_migration_api_does_not_import_openai() -> None:
    assert "openai" not in loaded_after("from sam_db import migrate, status, rollback")


def test_cli_imports_neither_openai_nor_pydantic() -> None:
    loaded = loaded_after("import sam_db.cli")
    assert "openai" not in loaded and "pydantic" not in loaded


def test_memory_store_import_does_not_import_openai() -> None:
    assert "openai" not in loaded_after("from sam_db import MemoryStore, Embedder")


@pytest.mark.parametrize("name", sam_db.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(sam_db, name) is not None


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        _ = sam_db.no_such_thing  # type: ignore[attr-defined]
