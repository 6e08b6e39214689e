"""The scan settings of one search: index or exact, ``hnsw.ef_search``, iterative scans.

The settings travel inside the search statement itself (see ``_search``): ``set_config(name,
value, true)`` calls in an InitPlan that the plan evaluates (as a one-time filter) before the
index scan starts. ``true`` makes them local to the statement's own implicit transaction, so
nothing leaks to other users of a pooled connection.
"""

from __future__ import annotations

from typing import NamedTuple

# The largest k a search takes; a search's ef_search is at least k, so MAX_K <= MAX_EF_SEARCH.
MAX_K = 1000
MAX_EF_SEARCH = 1000  # pgvector's upper bound for hnsw.ef_search
# pgvector without iterative scans (< 0.8) returns at most ef_search candidates *before*
# filtering; filtered searches there raise ef_search to k times this factor (capped above).
FALLBACK_OVERFETCH = 10


class SearchSettings(NamedTuple):
    """What one search runs with: index or exact scan, ef_search, iterative scan or not, and
    whether it writes the access log."""

    exact: bool
    ef_search: int
    iterative: bool
    log: bool = False

    def config_sql(self, ef_param: str) -> str:
        """The ``set_config(..., true)`` calls, as one expression for the statement's InitPlan.

        ``ef_param`` is the placeholder that carries ``ef_search`` (as text).
        """
        calls = [f"set_config('hnsw.ef_search', {ef_param}::text, true)"]
        if self.iterative and not self.exact:
            calls.append("set_config('hnsw.iterative_scan', 'relaxed_order', true)")
        if self.log:
            # The access log is best effort: its commit need not wait for the WAL flush (a
            # crash may lose the last moments of log rows, never entries).
            calls.append("set_config('synchronous_commit', 'off', true)")
        return "concat(" + ", ".join(calls) + ")"


def choose_settings(
    *, exact: bool, ef_search: int, k: int, filtered: bool, iterative: bool, log: bool = False
) -> SearchSettings:
    """Settings for a search of ``k`` hits: ef_search at least k, over-fetch on old pgvector."""
    ef = max(ef_search, k)
    if filtered and not iterative:
        ef = max(ef, k * FALLBACK_OVERFETCH)
    return SearchSettings(
        exact=exact, ef_search=min(ef, MAX_EF_SEARCH), iterative=iterative, log=log
    )
