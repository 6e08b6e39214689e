"""How one search runs: index or exact, ef_search, iterative scans, as one statement.

A search is a single statement (one round trip, no explicit transaction). What it needs from
PostgreSQL comes from three places, because each is decided at a different moment:

- *Plan choice* (planning time): PostgreSQL's cost model does not charge for reading TOASTed
  vectors, so at realistic sizes it prefers a sequential or bitmap scan plus a sort over the HNSW
  index, 100x slower. The statement orders by ``embedding <=> memory_search_vector($1)``, a
  function whose COST makes every sorted row cost what it really does (migration 004).
- *Estimates* (planning time): PostgreSQL estimates jsonb containment from a histogram of whole
  documents, which can be off by orders of magnitude (a filter matching 5 % estimated at one row);
  an estimate below k makes a scan + sort of the "few" matches look cheaper than any index scan.
  The collection, expiry and metadata conditions are therefore wrapped in ``CASE WHEN ... THEN
  true END``, which the planner estimates at a flat 50 %: the index plan is chosen whatever the
  filter, and a filter that leaves the index scan short is answered by the exact re-run.
- *Scan settings* (execution time): ``hnsw.ef_search`` and ``hnsw.iterative_scan`` are set by
  ``set_config(name, value, true)`` in an InitPlan that the plan evaluates (as a one-time filter)
  before the index scan starts. ``true`` makes them local to the statement's own implicit
  transaction, so nothing leaks to other users of a pooled connection.

An exact search orders by the function form ``cosine_distance(embedding, $1)``, which no index
can serve: the same distances, from a scan of every candidate row.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

# pgvector without iterative scans (< 0.8) returns at most ef_search candidates *before*
# filtering; filtered searches there raise ef_search to k times this factor (capped at 1000).
FALLBACK_OVERFETCH = 10
MAX_EF_SEARCH = 1000


class SearchSettings(NamedTuple):
    """What one search runs with: index or exact scan, ef_search, iterative scan or not.

    A NamedTuple because it is part of the statement cache's key: hashed and compared in C.
    """

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


@lru_cache(maxsize=512)
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


def parse_version(text: str) -> tuple[int, ...]:
    """``'0.8.6'`` → ``(0, 8, 6)``; non-numeric parts end the tuple."""
    out: list[int] = []
    for part in text.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)
