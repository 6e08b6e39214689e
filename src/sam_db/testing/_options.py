"""The pytest plugin's settings: its command-line options and ini keys, and reading them.

``plugin`` re-exports the hooks (``pytest_addoption``, ``pytest_report_header``) so pytest finds
them on the plugin module.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ._runtime import Options
from ._server import dsn_from_environment
from ._template import STRATEGIES

DEFAULT_STRATEGY = "wal_log"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sam_db", "sam_db: fresh migrated PostgreSQL databases")
    group.addoption(
        "--sam-db-sources",
        action="append",
        dest="sam_db_sources",
        metavar="DIR",
        default=None,
        help="extra migration folder applied after sam_db's own (repeatable; replaces ini sam_db_sources)",
    )
    group.addoption(
        "--sam-db-schema",
        dest="sam_db_schema",
        metavar="NAME",
        default=None,
        help="schema the migrations go into in sam_db_dsn databases (ini sam_db_schema; default: public)",
    )
    group.addoption(
        "--sam-db-strategy",
        dest="sam_db_strategy",
        choices=STRATEGIES,
        default=None,
        help=f"CREATE DATABASE strategy for clones (ini sam_db_strategy; default {DEFAULT_STRATEGY})",
    )
    parser.addini(
        "sam_db_sources",
        type="paths",
        default=[],
        help="extra migration folders (relative to the ini file)",
    )
    parser.addini(
        "sam_db_schema",
        type="string",
        default="",
        help="schema for migrations in sam_db_dsn databases",
    )
    parser.addini("sam_db_strategy", type="string", default="", help="wal_log or file_copy")
    parser.addini(
        "sam_db_keep_template",
        type="bool",
        default=False,
        help="on a SAM_DB_TEST_DSN server, keep the template database for the next session",
    )
    parser.addini(
        "sam_db_prefetch",
        type="bool",
        default=True,
        help="prepare the next database while a test runs",
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say which server the fixtures use when one is named, or when ``DATABASE_URL`` is ignored."""
    if dsn_from_environment():
        return "sam_db: test server from SAM_DB_TEST_DSN"
    if os.environ.get("DATABASE_URL", "").strip():
        return (
            "sam_db: DATABASE_URL is ignored; tests use an embedded PostgreSQL "
            "(set SAM_DB_TEST_DSN to test on an existing server)"
        )
    return None


def read_options(config: pytest.Config) -> Options:
    """The plugin's settings: command line first, then ini, then the defaults."""
    cli_sources: list[str] | None = config.getoption("sam_db_sources")
    if cli_sources:
        base = config.invocation_params.dir
        sources: tuple[Path, ...] = tuple((base / s).resolve() for s in cli_sources)
    else:
        sources = tuple(Path(p) for p in config.getini("sam_db_sources"))
    schema = config.getoption("sam_db_schema") or config.getini("sam_db_schema") or None
    strategy = (
        config.getoption("sam_db_strategy") or config.getini("sam_db_strategy") or DEFAULT_STRATEGY
    )
    if strategy not in STRATEGIES:
        raise pytest.UsageError(
            f"sam_db_strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}"
        )
    return Options(
        sources=sources,
        schema=schema,
        strategy=strategy,
        prefetch=bool(config.getini("sam_db_prefetch")),
    )
