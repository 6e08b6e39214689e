"""`CREATE INDEX CONCURRENTLY` migrations: replicas racing on one, and migrators killed in the build.

A concurrent index build waits for every transaction that holds a snapshot, so a replica waiting for
the migration lock must hold none; and when a migrator dies mid-build its lock goes with its
connection while the build goes on, so the next migrator must never record the file while the index
it names is INVALID.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import asyncpg
import pytest

import sam_db
from sam_db._lock import lock_key
from sam_db.errors import InvalidIndexError
from tests.helpers import fetchval, write_migrations

NO_TX = "-- sam_db: no-transaction\n"
TABLE = "CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 2000);"
TABLE_WITH_A_DUPLICATE = (
    "CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 2000) UNION ALL SELECT 1;"
)


def _sources(tmp_path: Path, index_sql: str) -> Path:
    return write_migrations(tmp_path / "m", {"001_t.sql": TABLE, "002_idx.sql": NO_TX + index_sql})


async def _index_state(dsn: str, name: str) -> bool | None:
    """True (valid), False (INVALID) or None (absent) for index ``name``."""
    return await fetchval(  # type: ignore[no-any-return]
        dsn,
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = $1",
        name,
    )


async def _recorded(dsn: str, version: str) -> bool:
    return bool(
        await fetchval(
            dsn,
            "SELECT to_regclass('schema_migrations') IS NOT NULL AND "
            "EXISTS (SELECT FROM schema_migrations WHERE version = $1)",
            version,
        )
    )


async def _snapshot_holder(dsn: str) -> asyncpg.Connection:
    """A connection in a REPEATABLE READ transaction that holds a snapshot: CIC waits for it."""
    conn = await asyncpg.connect(dsn)
    await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    await conn.fetchval("SELECT count(*) FROM pg_class")
    return conn


async def _wait_for_build(dsn: str, index: str, timeout: float = 30.0) -> int:
    """The pid of the backend building ``index`` once its build has started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = await fetchval(
            dsn,
            "SELECT pid FROM pg_stat_progress_create_index WHERE index_relid = to_regclass($1)",
            index,
        )
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no build of {index} started within {timeout} s")


async def _hold_migration_lock(dsn: str) -> asyncpg.Connection:
    """A connection holding the migration lock of schema public in an open transaction."""
    conn = await asyncpg.connect(dsn)
    await conn.execute("BEGIN")
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *lock_key("public"))
    return conn


async def _wait_for_migrators(dsn: str, count: int, timeout: float = 60.0) -> None:
    """Wait until ``count`` sam_db migrators are connected (and so waiting for the lock)."""
    deadline = time.monotonic() + timeout
    sql = (
        "SELECT count(DISTINCT application_name) FROM pg_stat_activity "
        "WHERE application_name LIKE 'sam_db migrate %' AND datname = current_database()"
    )
    while await fetchval(dsn, sql) < count:
        assert time.monotonic() < deadline, f"{count} migrators did not connect in {timeout} s"
        await asyncio.sleep(0.05)


async def test_a_replica_waiting_for_the_lock_holds_no_snapshot(db_dsn: str) -> None:
    gate = await _hold_migration_lock(db_dsn)
    run = asyncio.create_task(sam_db.migrate(db_dsn, lock_wait=30))
    try:
        await _wait_for_migrators(db_dsn, 1)
        samples = []
        for _ in range(40):
            samples.append(
                await fetchval(
                    db_dsn,
                    "SELECT state = 'idle' AND backend_xmin IS NULL FROM pg_stat_activity "
                    "WHERE application_name LIKE 'sam_db migrate %' "
                    "AND datname = current_database()",
                )
            )
            await asyncio.sleep(0.02)
        # Between its brief tries the waiter is idle, outside any transaction, with no snapshot.
        assert samples.count(True) >= 36, samples
    finally:
        await gate.close()
    assert len(await asyncio.wait_for(run, timeout=30)) == 5


async def test_four_replicas_racing_on_a_concurrent_index_all_succeed(
    db_dsn: str, tmp_path: Path
) -> None:
    src = _sources(tmp_path, "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_x_idx ON t (x);")
    await sam_db.migrate(db_dsn, sources=[src], include_bundled=False, target="001")
    # All four wait for the lock together; the one that gets it builds while three wait.
    gate = await _hold_migration_lock(db_dsn)
    runs = [
        asyncio.create_task(
            sam_db.migrate(db_dsn, sources=[src], include_bundled=False, lock_timeout=3)
        )
        for _ in range(4)
    ]
    await asyncio.sleep(0.5)
    await gate.close()
    results = await asyncio.wait_for(asyncio.gather(*runs), timeout=60)
    assert Counter(m.version for r in results for m in r) == Counter(["002"])
    assert await _index_state(db_dsn, "t_x_idx") is True
    assert [r.state for r in await sam_db.status(db_dsn, sources=[src], include_bundled=False)] == [
        "applied",
        "applied",
    ]


@pytest.mark.slow
async def test_four_replica_processes_racing_on_a_concurrent_index_all_succeed(
    db_dsn: str, tmp_path: Path
) -> None:
    src = _sources(tmp_path, "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_x_idx ON t (x);")
    await sam_db.migrate(db_dsn, sources=[src], include_bundled=False, target="001")
    gate = await _hold_migration_lock(db_dsn)
    child = textwrap.dedent(
        """
        import asyncio, json, sys
        import sam_db
        done = asyncio.run(sam_db.migrate(sys.argv[1], sources=[sys.argv[2]],
                                          include_bundled=False, lock_timeout=3))
        print(json.dumps([m.version for m in done]))
        """
    )
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            child,
            db_dsn,
            str(src),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    try:
        await _wait_for_migrators(db_dsn, 4)
        await asyncio.sleep(0.3)
    finally:
        await gate.close()
    outputs = [await asyncio.wait_for(p.communicate(), timeout=60) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err.decode()
    assert sorted(out.decode().strip() for out, _ in outputs) == ['["002"]', "[]", "[]", "[]"]
    assert await _index_state(db_dsn, "t_x_idx") is True


_KILLED_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    import sam_db
    asyncio.run(sam_db.migrate(sys.argv[1], sources=[sys.argv[2]], include_bundled=False,
                               lock_timeout=600))
    """
)


async def _kill_mid_build(db_dsn: str, src: Path, index: str) -> int:
    """Start a migrator, wait until its build of ``index`` is blocked, SIGKILL it; the build's pid."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _KILLED_CHILD,
        db_dsn,
        str(src),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        pid = await _wait_for_build(db_dsn, index)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), timeout=10)
    return pid


async def test_migrator_killed_mid_build_then_another_waits_for_the_build_it_left(
    db_dsn: str, tmp_path: Path
) -> None:
    src = _sources(tmp_path, "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_x_idx ON t (x);")
    await sam_db.migrate(db_dsn, sources=[src], include_bundled=False, target="001")
    reader = await _snapshot_holder(db_dsn)  # keeps the build waiting, deterministically
    try:
        await _kill_mid_build(db_dsn, src, "t_x_idx")
        assert await _index_state(db_dsn, "t_x_idx") is False
        # The orphaned build goes on; while it cannot finish, nothing may be recorded.
        with pytest.raises(InvalidIndexError) as info:
            await sam_db.migrate(db_dsn, sources=[src], include_bundled=False, lock_wait=1)
        assert info.value.indexes == ["public.t_x_idx"]
        assert not await _recorded(db_dsn, "002")
        states = await sam_db.status(db_dsn, sources=[src], include_bundled=False)
        assert [r.state for r in states] == ["applied", "pending"]  # still being built
        again = asyncio.create_task(
            sam_db.migrate(db_dsn, sources=[src], include_bundled=False, lock_wait=30)
        )
        await asyncio.sleep(0.5)
        assert not again.done()
        assert not await _recorded(db_dsn, "002")
    finally:
        await reader.close()
    # The build it waited for finishes: the file is recorded with a valid index.
    assert [m.version for m in await asyncio.wait_for(again, timeout=30)] == ["002"]
    assert await _index_state(db_dsn, "t_x_idx") is True


@pytest.mark.parametrize("if_not_exists", ["IF NOT EXISTS ", ""])
async def test_invalid_index_left_by_a_killed_migrator_is_dropped_and_rebuilt(
    db_dsn: str, tmp_path: Path, if_not_exists: str
) -> None:
    src = _sources(tmp_path, f"CREATE INDEX CONCURRENTLY {if_not_exists}t_x_idx ON t (x);")
    await sam_db.migrate(db_dsn, sources=[src], include_bundled=False, target="001")
    reader = await _snapshot_holder(db_dsn)
    try:
        build = await _kill_mid_build(db_dsn, src, "t_x_idx")
        # The orphaned build is cancelled: an INVALID index nobody builds any more.
        assert await fetchval(db_dsn, "SELECT pg_cancel_backend($1)", build)
        while await fetchval(  # noqa: ASYNC110 (a server-side state: nothing to wait on)
            db_dsn, "SELECT count(*) FROM pg_stat_progress_create_index WHERE pid = $1", build
        ):
            await asyncio.sleep(0.05)
    finally:
        await reader.close()
    assert await _index_state(db_dsn, "t_x_idx") is False
    applied = await sam_db.migrate(db_dsn, sources=[src], include_bundled=False)
    # Recorded only with a valid index: the leftover was dropped and built again.
    assert await _recorded(db_dsn, "002") and await _index_state(db_dsn, "t_x_idx") is True
    assert [m.version for m in applied] == ["002"]
    states = await sam_db.status(db_dsn, sources=[src], include_bundled=False)
    assert [r.state for r in states] == ["applied", "applied"]


async def test_status_shows_an_applied_file_whose_index_is_invalid_as_failed(
    db_dsn: str, tmp_path: Path
) -> None:
    # What sam_db 0.1 could leave: the file recorded while its index was INVALID.
    src = _sources(tmp_path, 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "T_x" ON t (x);')
    await sam_db.migrate(db_dsn, sources=[src], include_bundled=False)
    conn = await asyncpg.connect(db_dsn)
    try:
        await conn.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = '\"T_x\"'::regclass"
        )
    finally:
        await conn.close()
    states = await sam_db.status(db_dsn, sources=[src], include_bundled=False)
    assert [(r.state, r.invalid_indexes) for r in states] == [
        ("applied", []),
        ("failed", ['public."T_x"']),
    ]


async def test_a_file_whose_index_is_invalid_is_never_recorded(db_dsn: str, tmp_path: Path) -> None:
    # The index exists INVALID before the run and the file's statement cannot rebuild it (it only
    # re-creates the index when missing): a clear error, nothing recorded.
    src = write_migrations(
        tmp_path / "m",
        {
            "001_t.sql": TABLE_WITH_A_DUPLICATE,
            "002_idx.sql": NO_TX
            + "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_x_key ON t (x);",
        },
    )
    await sam_db.migrate(db_dsn, sources=[src], include_bundled=False, target="001")
    for _ in range(2):  # the failed build, then a re-run: drop, rebuild, fail again
        with pytest.raises(InvalidIndexError) as info:
            await sam_db.migrate(db_dsn, sources=[src], include_bundled=False)
        assert info.value.indexes == ["public.t_x_key"]
        assert "DROP INDEX CONCURRENTLY" in str(info.value)
        assert not await _recorded(db_dsn, "002")
        states = await sam_db.status(db_dsn, sources=[src], include_bundled=False)
        assert [(r.state, r.invalid_indexes) for r in states] == [
            ("applied", []),
            ("failed", ["public.t_x_key"]),
        ]


async def test_cli_status_reports_the_failed_file_and_check_fails(
    db_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sam_db.cli import main as cli_main

    src = write_migrations(
        tmp_path / "m",
        {
            "001_t.sql": TABLE_WITH_A_DUPLICATE,
            "002_idx.sql": NO_TX + "CREATE UNIQUE INDEX CONCURRENTLY t_x_key ON t (x);",
        },
    )
    with pytest.raises(InvalidIndexError):
        await sam_db.migrate(db_dsn, sources=[src], include_bundled=False)
    args = ["status", "--dsn", db_dsn, "--source", str(src), "--no-bundled"]
    capsys.readouterr()
    assert await asyncio.to_thread(cli_main, [*args, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["state"], r["invalid_indexes"]) for r in rows] == [
        ("applied", []),
        ("failed", ["public.t_x_key"]),
    ]
    assert await asyncio.to_thread(cli_main, [*args, "--check"]) == 3
