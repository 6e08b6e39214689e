"""xdist workers of one run share one template build even when their sessions do not overlap.

xdist tells every worker to shut down as soon as its tests are sent (``--dist each``) or done, so
one worker's session can end before another's first test starts. The run's server and template
must outlive the first worker: the xdist controller holds them until the run ends.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import pytest

from sam_db.testing._server import server_datadir

RECORDER = """
import json

def test_record(_sam_db_runtime, sam_db_dsn, sam_db_server):
    t = _sam_db_runtime.template()
    with open({record!r}, "a") as f:
        f.write(json.dumps({{"server": sam_db_server, "rebuilt": t.rebuilt, "tpl": t.name}}) + "\\n")
"""

# gw1 starts its test only once gw0's session is over (server fixture torn down, config unconfigured).
SEQUENCER = """
import os, time
from pathlib import Path

DONE = Path({done!r})

def pytest_unconfigure(config):
    if os.environ.get("PYTEST_XDIST_WORKER") == "gw0":
        DONE.write_text("gw0 finished")

def pytest_runtest_setup(item):
    if os.environ.get("PYTEST_XDIST_WORKER") == "gw1":
        deadline = time.monotonic() + 180
        while not DONE.exists():
            assert time.monotonic() < deadline, "gw0's session never ended"
            time.sleep(0.05)
"""


def _run_one_worker_after_the_other(
    pytester: pytest.Pytester, *args: str
) -> list[dict[str, object]]:
    record = pytester.path / "record.jsonl"
    pytester.makepyfile(RECORDER.format(record=str(record)))
    pytester.makeconftest(SEQUENCER.format(done=str(pytester.path / "gw0.done")))
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "each", "-p", "no:randomly", *args)
    result.assert_outcomes(passed=2)
    return [json.loads(line) for line in record.read_text().splitlines()]


def _databases(dsn: str) -> set[str]:
    async def go() -> set[str]:
        conn = await asyncpg.connect(dsn)
        try:
            return {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
        finally:
            await conn.close()

    return asyncio.run(go())


@pytest.mark.slow
@pytest.mark.usefixtures("no_server_env")
def test_workers_one_after_the_other_share_the_embedded_server_and_its_template(
    pytester: pytest.Pytester,
) -> None:
    basetemp = pytester.path / "bt"
    runs = _run_one_worker_after_the_other(pytester, f"--basetemp={basetemp}")
    assert len(runs) == 2
    assert runs[0]["server"] == runs[1]["server"]
    assert [r["rebuilt"] for r in runs] == [True, False]  # gw0 built it, gw1 found it
    assert not server_datadir(basetemp).exists()  # deleted at the end of the run


@pytest.mark.slow
def test_workers_one_after_the_other_share_a_template_the_run_drops_at_its_end(
    pytester: pytest.Pytester, shared_server: str
) -> None:
    # A schema of its own: a template nobody else uses, so its drop at the end can be checked.
    schema = f"svc_{uuid.uuid4().hex[:8]}"
    runs = _run_one_worker_after_the_other(pytester, f"--sam-db-schema={schema}")
    assert len(runs) == 2
    assert runs[0]["tpl"] == runs[1]["tpl"]
    assert [r["rebuilt"] for r in runs] == [True, False]  # gw0 built it, gw1 found it
    assert runs[0]["tpl"] not in _databases(shared_server)  # the run left nothing behind
