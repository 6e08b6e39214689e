"""The run's side under pytest-xdist: the controller holds what its workers share until the end.

xdist tells each worker to finish as soon as its tests are sent (``--dist each``) or done, so one
worker's session can end before another's first test starts. Left to the workers, the first to
finish would stop the run's embedded server (it was its last user) or, on a ``SAM_DB_TEST_DSN``
server, drop the template (it was its last session), and the next worker would build both again.
So every worker counts the controller among the server's users and leaves the template's drop to
it; the controller releases both when the run ends. These hooks are registered by
:mod:`sam_db.testing.plugin` (optional hooks: nothing happens without xdist).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from ._claim import drop_if_unused
from ._server import dsn_from_environment, release_run_server, server_datadir

#: workerinput key: the pid of the run's controller.
RUN_PID = "sam_db_run_pid"
#: workeroutput key: the template a worker used and left for the controller to drop.
TEMPLATE = "sam_db_template"
#: Templates the run's workers left to drop (present only in a controller that started workers).
_TEMPLATES = pytest.StashKey[set[str]]()


def run_pid(config: pytest.Config) -> int | None:
    """In an xdist worker, the pid of its run's controller; else None."""
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    pid = workerinput.get(RUN_PID)
    return pid if isinstance(pid, int) else None


def leave_template_to_run(config: pytest.Config, template: str) -> bool:
    """In an xdist worker, leave ``template``'s drop to the controller (True); else False."""
    if run_pid(config) is None:
        return False
    config.workeroutput[TEMPLATE] = template  # type: ignore[attr-defined]
    return True


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Tell each worker its controller's pid (it counts the controller as a server user)."""
    node.workerinput[RUN_PID] = os.getpid()
    node.config.stash.setdefault(_TEMPLATES, set())


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """Note the template a finished worker left to drop."""
    template = getattr(node, "workeroutput", {}).get(TEMPLATE)
    if template:
        node.config.stash[_TEMPLATES].add(template)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """In a controller that started workers: drop the templates left to it, release the server."""
    templates = config.stash.get(_TEMPLATES, None)
    if templates is None:
        return
    external = dsn_from_environment()
    if external:
        for template in sorted(templates):
            asyncio.run(drop_if_unused(external, template))
        return
    factory = getattr(config, "_tmp_path_factory", None)  # what xdist names worker basetemps by
    if factory is not None:
        release_run_server(server_datadir(factory.getbasetemp()))
