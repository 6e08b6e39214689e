"""Per-test cost of the sam_db pytest fixtures, beside migrating per test, measured in one run.

    python bench/fixture_bench.py [--tests 30] [--extra 50] [--strategy wal_log|file_copy]

Starts one embedded PostgreSQL (durability off, as the plugin does), then runs small pytest
sessions against it (``SAM_DB_TEST_DSN``): once with the bundled migrations and once with
``--extra`` generated migration files added as a source. Each session has ``--tests`` empty tests
per fixture; the cost of a test is its setup + teardown time as pytest reports it. Baselines in the
same sessions: "migrate per test" = CREATE DATABASE + ``migrate()`` + DROP, and "schema migrate per
test" = ``migrate(dsn, schema=new)`` + DROP SCHEMA, both on a new connection as a test would.
Tests of all fixtures are interleaved and the plugin's background work (prefetching the next
clone, dropping in the background) is off, so every row is a full cost on the critical path;
the "prefetch, back to back" rows are the default behaviour with consecutive empty tests.
Prints medians and ratios. ``sam_db_tx`` is measured with function-scoped event loops (the
pytest-asyncio default: a new connection per test) and session-scoped ones (connection reused).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CONFTEST = """
import asyncio, json, os, uuid
import asyncpg, pytest
from sam_db import migrate
from sam_db._ident import quote_ident
from sam_db.testing._server import with_database

SOURCES = [p for p in os.environ.get("BENCH_SOURCES", "").split(os.pathsep) if p]
COSTS = {}

def pytest_runtest_logreport(report):
    if report.when in ("setup", "teardown"):
        COSTS[report.nodeid] = COSTS.get(report.nodeid, 0.0) + report.duration

def pytest_sessionfinish(session):
    with open(os.environ["BENCH_OUT"], "w") as f:
        json.dump(COSTS, f)

async def _admin(dsn, sql):
    c = await asyncpg.connect(dsn)
    try:
        await c.execute(sql)
    finally:
        await c.close()

@pytest.fixture
def migrate_per_test(sam_db_server):
    name = "bench_" + uuid.uuid4().hex[:12]
    asyncio.run(_admin(sam_db_server, f"CREATE DATABASE {quote_ident(name)}"))
    dsn = with_database(sam_db_server, name)
    asyncio.run(migrate(dsn, sources=SOURCES))
    yield dsn
    asyncio.run(_admin(sam_db_server, f"DROP DATABASE {quote_ident(name)} WITH (FORCE)"))

@pytest.fixture
def schema_migrate_per_test(sam_db_server):
    name = "bench_" + uuid.uuid4().hex[:12]
    asyncio.run(migrate(sam_db_server, schema=name, sources=SOURCES))
    yield name
    asyncio.run(_admin(sam_db_server, f"DROP SCHEMA {quote_ident(name)} CASCADE"))
"""

FIXTURES = [
    ("baseline_migrate_per_test", "migrate_per_test", "def"),
    ("sam_db_dsn", "sam_db_dsn", "def"),
    ("baseline_schema_migrate_per_test", "schema_migrate_per_test", "def"),
    ("sam_db_schema", "sam_db_schema", "def"),
    ("sam_db_conn", "sam_db_conn", "async def"),
    ("sam_db_tx", "sam_db_tx", "async def"),
    ("empty", None, "def"),
]


def test_module(n: int) -> str:
    """Tests interleaved round-robin (so every fixture sees the same machine load over time)."""
    lines = []
    for i in range(n):
        for label, fixture, kind in FIXTURES:
            lines.append(f"{kind} test_{label}__{i:03d}({fixture or ''}):\n    pass\n")
    return "\n".join(lines)


def make_extra(folder: Path, count: int) -> None:
    """``count`` small but realistic migrations (a table, an index, a view each)."""
    for i in range(count):
        (folder / f"{100 + i:03d}_extra_{i}.sql").write_text(
            f"CREATE TABLE extra_{i} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"  # noqa: S608
            f"  name text NOT NULL, payload jsonb NOT NULL DEFAULT '{{}}', created_at timestamptz DEFAULT now());\n"
            f"CREATE INDEX extra_{i}_name ON extra_{i} (name);\n"
            f"CREATE VIEW extra_{i}_recent AS SELECT * FROM extra_{i} WHERE created_at > now() - interval '1 day';\n"
        )


def run_session(
    workdir: Path,
    dsn: str,
    sources: list[Path],
    loop_scope: str,
    strategy: str,
    prefetch: bool = False,
) -> dict[str, float]:
    out = workdir / f"costs-{loop_scope}-{len(sources)}-{prefetch}.json"
    (workdir / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\n"
        f"asyncio_default_fixture_loop_scope = {loop_scope}\nasyncio_default_test_loop_scope = {loop_scope}\n"
    )
    env = dict(
        os.environ,
        SAM_DB_TEST_DSN=dsn,
        BENCH_OUT=str(out),
        BENCH_SOURCES=os.pathsep.join(map(str, sources)),
    )
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    # Without prefetch each fixture's whole cost is on the critical path (no clone made ahead,
    # no drop left running): comparable with the baselines.
    args += ["-o", f"sam_db_prefetch={'true' if prefetch else 'false'}"]
    args += [f"--sam-db-strategy={strategy}"]
    args += [f"--sam-db-sources={s}" for s in sources]
    if loop_scope == "session":
        args += ["-k", "sam_db_tx or empty"]
    if prefetch:
        args += ["-k", "sam_db_dsn or sam_db_schema or empty"]
    proc = subprocess.run(args, cwd=workdir, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"bench session failed:\n{proc.stdout}\n{proc.stderr}")
    costs: dict[str, float] = json.loads(out.read_text())
    return costs


def medians(costs: dict[str, float]) -> dict[str, float]:
    groups: dict[str, list[float]] = {}
    for nodeid, seconds in costs.items():
        name = nodeid.split("::", 1)[1].split("__", 1)[0].removeprefix("test_")
        groups.setdefault(name, []).append(seconds * 1000)
    return {k: statistics.median(v[1:] if len(v) > 2 else v) for k, v in groups.items()}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--tests",
        type=int,
        default=30,
        help="tests per fixture (first one dropped from the median)",
    )
    ap.add_argument(
        "--extra", type=int, default=50, help="generated migration files in the second run"
    )
    ap.add_argument("--strategy", choices=["wal_log", "file_copy"], default="wal_log")
    opts = ap.parse_args()

    from sam_db.testing._server import apply_non_durable, server_datadir, start_server

    with tempfile.TemporaryDirectory(prefix="sam_db_fixture_bench_") as tmp:
        root = Path(tmp)
        server = start_server(server_datadir(root))  # in RAM, as the plugin does
        try:
            asyncio.run(apply_non_durable(server.dsn))
            extra = root / "extra"
            extra.mkdir()
            make_extra(extra, opts.extra)
            work = root / "suite"
            work.mkdir()
            (work / "conftest.py").write_text(CONFTEST)
            (work / "test_bench.py").write_text(test_module(opts.tests))
            results: dict[str, dict[str, float]] = {}
            for label, sources in (("bundled", []), (f"+{opts.extra} migrations", [extra])):
                m = medians(run_session(work, server.dsn, sources, "function", opts.strategy))
                s = medians(run_session(work, server.dsn, sources, "session", opts.strategy))
                p = medians(
                    run_session(work, server.dsn, sources, "function", opts.strategy, prefetch=True)
                )
                m["sam_db_tx (session loop)"] = s["sam_db_tx"]
                m["sam_db_dsn (prefetch, back to back)"] = p["sam_db_dsn"]
                m["sam_db_schema (prefetch, back to back)"] = p["sam_db_schema"]
                results[label] = m
        finally:
            server.stop()

    labels = list(results)
    rows = [
        ("sam_db_dsn", "baseline_migrate_per_test"),
        ("baseline_migrate_per_test", None),
        ("sam_db_schema", "baseline_schema_migrate_per_test"),
        ("baseline_schema_migrate_per_test", None),
        ("sam_db_conn", "baseline_migrate_per_test"),
        ("sam_db_tx", None),
        ("sam_db_tx (session loop)", None),
        ("sam_db_dsn (prefetch, back to back)", "baseline_migrate_per_test"),
        ("sam_db_schema (prefetch, back to back)", "baseline_schema_migrate_per_test"),
        ("empty", None),
    ]
    print(
        f"per-test fixture cost, median ms over {opts.tests} tests (setup + teardown), strategy {opts.strategy}"
    )
    head = f"{'fixture':<40}" + "".join(f"{lab:>22}" for lab in labels) + f"{'growth':>9}"
    print(head)
    print("-" * len(head))
    for name, base in rows:
        cells = []
        for lab in labels:
            v = results[lab][name]
            ratio = f" ({v / results[lab][base]:.2f}x)" if base else ""
            cells.append(f"{v:8.2f}{ratio:>14}")
        growth = results[labels[1]][name] / results[labels[0]][name]
        print(f"{name:<40}" + "".join(f"{c:>22}" for c in cells) + f"{growth:>8.2f}x")
    print("(ratio = against the baseline in the same column; growth = second column / first)")


if __name__ == "__main__":
    main()
