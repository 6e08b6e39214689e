"""Planner and index settings for one search, applied transaction-locally.

Why: at realistic sizes PostgreSQL's cost model does not charge for reading TOASTed vectors, so it
prefers a sequential scan (or a bitmap scan of a filter index) plus a sort over the HNSW index —
100x slower. ``set_config(name, value, true)`` inside the search's transaction makes the index win
and is undone at commit, so nothing leaks to other users of a pooled connection.
"""

from __future__ import annotations

from dataclasses import dataclass

# pgvector without iterative scans (< 0.8) returns at most ef_search candidates *before*
# filtering; filtered searches there raise ef_search to k times this factor (capped at 1000).
FALLBACK_OVERFETCH = 10
MAX_EF_SEARCH = 1000


@dataclass(frozen=True)
class SearchSettings:
    """What one search runs with: index or exact scan, ef_search, iterative scan or not."""

    exact: bool
    ef_search: int
    iterative: bool
    log: bool = False

    def begin_sql(self) -> str:
        """``BEGIN`` and the settings as one simple-protocol message (one round trip).

        The simple protocol carries no bind parameters, so ``ef_search`` is written into the
        text: it is an int the store validated to 1..1000, formatted by ``int.__str__``.
        """
        parts = ["set_config('jit', 'off', true)"]
        if self.log:
            # The access log is best effort: its commit need not wait for the WAL flush (a
            # crash may lose the last moments of log rows, never entries).
            parts.append("set_config('synchronous_commit', 'off', true)")
        if self.exact:
            # No index scan at all: HNSW cannot serve bitmap scans, so the result is exact.
            parts.append("set_config('enable_indexscan', 'off', true)")
        else:
            ef = int(self.ef_search)
            if not 1 <= ef <= MAX_EF_SEARCH:
                raise ValueError(f"ef_search out of range: {ef}")
            parts += [
                f"set_config('hnsw.ef_search', '{ef:d}', true)",
                "set_config('enable_seqscan', 'off', true)",
                "set_config('enable_bitmapscan', 'off', true)",
                # Every plan but the HNSW scan needs a sort; disabling sorts is what keeps a
                # filtered search from choosing a btree/GIN scan + sort.
                "set_config('enable_sort', 'off', true)",
            ]
            if self.iterative:
                parts.append("set_config('hnsw.iterative_scan', 'relaxed_order', true)")
            # This statement text only ever runs under these settings, and the plan is the
            # index scan whatever the parameters: reuse the cached plan instead of planning
            # every search anew (~0.1 ms).
            parts.append("set_config('plan_cache_mode', 'force_generic_plan', true)")
        return "BEGIN; SELECT " + ", ".join(parts)


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
