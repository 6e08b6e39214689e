"""Maximal Marginal Relevance: ``search(..., mmr_lambda=, fetch_k=)`` returns hits that are
relevant and unlike each other.

The search fetches ``fetch_k`` candidates with its own statement (any mode, filter, session),
wrapped by ``wrap`` so that the same round trip also returns every candidate's cosine similarity
to every other candidate, computed by pgvector on the server: no vectors travel to the client
and no numerical library is needed here. ``select`` then picks ``k`` of them greedily, each time
the candidate with the best ``λ·relevance - (1 - λ)·max similarity to those already picked``
(Carbonell and Goldstein, 1998; ``λ`` is LangChain's ``lambda_mult``: 1 = pure relevance).

Relevance is the cosine similarity to the query in a vector search. Text and hybrid searches
rank by Reciprocal Rank Fusion scores (the ``score`` their statements return, see
``_text_search``), not by cosine: their relevance is that score divided by the best candidate's,
so the top candidate has 1, and ``λ = 1`` returns the mode's own ranking.
"""

# ruff: noqa: S608 -- SQL here is built from quote_ident()-quoted names and placeholders only
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from .._ident import quote_ident
from ..errors import InvalidInputError
from ._models import SearchHit
from ._rows import distance_then_id, hits_from_rows
from ._scan import MAX_K
from ._sql import ENTRY_FIELDS, Statements

FETCH_FACTOR = 4  # fetch_k defaults to this many times k (LangChain's default is 20 for k=4)
_SCAN_VECTOR = "mmr_embedding"  # the vector a vector search's statement selects (scan_column)
# A vector search's columns (_search_statement's), in their order, as the wrap selects them:
# every column but the vectors, which stay on the server.
_VECTOR_SEARCH_COLUMNS = ", ".join(
    f"c.{quote_ident(name)}" for name in (*ENTRY_FIELDS, "collection_id", "distance")
)


class MMR(NamedTuple):
    """An MMR selection: its lambda and the number of hits to pick from the candidates."""

    lambda_mult: float
    k: int


def check(mmr_lambda: object, fetch_k: object, k: int) -> tuple[MMR | None, int]:
    """``(the selection or None, how many rows the search fetches)``; raises InvalidInputError
    for a lambda outside [0, 1] or a ``fetch_k`` below ``k`` (or given without a lambda)."""
    if mmr_lambda is None:
        if fetch_k is not None:
            raise InvalidInputError(
                "fetch_k is the number of candidates of an MMR search: pass mmr_lambda too "
                "(e.g. mmr_lambda=0.5), or drop fetch_k"
            )
        return None, k
    if (
        isinstance(mmr_lambda, bool)
        or not isinstance(mmr_lambda, (int, float))
        or not 0 <= mmr_lambda <= 1  # NaN fails this too
    ):
        raise InvalidInputError(
            f"mmr_lambda must be a number from 0 (most diverse) to 1 (most relevant), "
            f"got {mmr_lambda!r}"
        )
    if fetch_k is None:
        fetch_k = min(MAX_K, FETCH_FACTOR * k)
    elif isinstance(fetch_k, bool) or not isinstance(fetch_k, int) or not k <= fetch_k <= MAX_K:
        raise InvalidInputError(
            f"fetch_k (the candidates MMR picks k={k} hits from) must be an int from k to "
            f"{MAX_K}, got {fetch_k!r}"
        )
    return MMR(float(mmr_lambda), k), fetch_k


def scan_column(mode: str) -> str:
    """What an MMR search's own statement selects besides its usual columns: in a vector
    search, each candidate's vector (as read by the scan; see ``wrap``), else nothing."""
    return f", e.embedding AS {_SCAN_VECTOR}" if mode == "vector" else ""


def wrap(search: str, sql: Statements, normalize: bool, mode: str) -> str:
    """The search statement ``search`` (any mode; its rows start with the entry columns, and
    still do: ``_rows`` reads them by position), returning also ``mmr_pos`` (1.. in the
    statement's own order) and ``mmr_sims``: the row's cosine similarity to each candidate of a
    greater ``mmr_pos``, in that order (each pair is computed once).

    Each candidate's vector is made a value of its own once, in a MATERIALIZED CTE (a vector
    read from its table is a pointer into TOAST, which each comparison would read again):
    normalized by ``l2_normalize`` (pgvector 0.7+), whose inner product is the cosine, or, with
    ``normalize=False`` (older pgvector), cast through ``real[]`` and compared by cosine
    distance. A vector search selects the vector itself (``scan_column``): the pointer costs
    nothing to carry, even through an exact search's sort, and only the candidates are read.
    Text and hybrid statements do not, and their candidates' vectors are looked up by primary
    key.
    """
    if normalize:
        similarity = f"-(c.mmr_v OPERATOR({_extension(sql)}.<#>) w.mmr_v)"
    else:
        similarity = f"1 - (c.mmr_v {sql.distance} w.mmr_v)"
    sims = (
        f"ARRAY(SELECT {similarity} FROM mmr_c w WHERE w.mmr_pos > c.mmr_pos "
        "ORDER BY w.mmr_pos) AS mmr_sims"
    )
    if mode == "vector":
        vector = _unit(f"s.{_SCAN_VECTOR}", sql, normalize)
        return (
            f"WITH mmr_c AS MATERIALIZED (SELECT s.*, {vector} AS mmr_v, "
            f"row_number() OVER () AS mmr_pos FROM ({search}) s) "
            f"SELECT {_VECTOR_SEARCH_COLUMNS}, c.mmr_pos, {sims} FROM mmr_c c"
        )
    vector = _unit("e.embedding", sql, normalize)
    return (
        "WITH mmr_s AS MATERIALIZED (SELECT s.*, row_number() OVER () AS mmr_pos "
        f"FROM ({search}) s), "
        # One primary-key look-up per candidate (a join would be planned as a scan of the
        # table: its cost model does not see the candidates are few).
        f"mmr_c AS MATERIALIZED (SELECT s.mmr_pos, (SELECT {vector} FROM {sql.entries} e "
        "WHERE e.id = s.id) AS mmr_v FROM mmr_s s) "
        f"SELECT s.*, {sims} "
        "FROM mmr_s s JOIN mmr_c c ON c.mmr_pos = s.mmr_pos"
    )


def _unit(vector: str, sql: Statements, normalize: bool) -> str:
    """``vector`` as a value of its own: normalized, or (old pgvector) cast through real[]."""
    if normalize:
        return f"{_extension(sql)}.l2_normalize({vector})"
    return f"{vector}::real[]::{sql.vector}"


def _extension(sql: Statements) -> str:
    """pgvector's schema, quoted."""
    return sql.exact_distance.rsplit(".", 1)[0]


def _relevance(rows: Sequence[Any], mode: str) -> list[float]:
    """Each candidate's relevance to the query (see the module docstring)."""
    if mode == "vector":
        return [1.0 - r["distance"] for r in rows]
    scores = [r["score"] for r in rows]  # the statement's own (see _text_search)
    best = max(scores, default=1.0) or 1.0
    return [s / best for s in scores]


def candidates(rows: Sequence[Any], mode: str, threshold: float | None) -> list[Any]:
    """The candidate rows in the search's own ranking, without those below ``threshold``."""
    ranked = (
        sorted(rows, key=distance_then_id)
        if mode == "vector"
        else sorted(rows, key=lambda r: r["mmr_pos"])
    )
    if threshold is None:
        return ranked
    return [r for r in ranked if r["distance"] is not None and 1.0 - r["distance"] >= threshold]


def select(ranked: Sequence[Any], rows: Sequence[Any], mmr: MMR, mode: str) -> list[int]:
    """The positions in ``ranked`` (the candidates kept, best first) of the ``mmr.k`` picks, in
    the order picked; ``rows`` are all the statement's rows (their ``mmr_sims`` hold the pairs).
    Ties go to the better-ranked candidate."""
    by_pos = {r["mmr_pos"]: r["mmr_sims"] for r in rows}
    positions = [r["mmr_pos"] for r in ranked]
    lam, mu = mmr.lambda_mult, 1.0 - mmr.lambda_mult
    gain = [lam * r for r in _relevance(ranked, mode)]
    # Each candidate's score and largest similarity to the picks so far (none yet: no penalty).
    score = gain[:]
    closest = [-math.inf] * len(ranked)
    left = list(range(len(ranked)))  # in ranked order: max() keeps the first of equal scores
    picked: list[int] = []
    while left and len(picked) < mmr.k:
        best = max(left, key=score.__getitem__)
        picked.append(best)
        left.remove(best)
        # The pick's similarity to candidate p is in the row of the smaller position.
        pb = positions[best]
        row = by_pos[pb]
        for i in left:
            p = positions[i]
            sim = row[p - pb - 1] if p > pb else by_pos[p][pb - p - 1]
            if sim > closest[i]:
                closest[i] = sim
                score[i] = gain[i] - mu * sim
    return picked


def hits(
    rows: Sequence[Any], mmr: MMR, mode: str, collection: str, threshold: float | None
) -> list[SearchHit]:
    """The hits an MMR search returns from its candidate ``rows``, ranked in the order picked.

    In a vector search ``vector_rank`` is the hit's place among the candidates by similarity.
    """
    ranked = candidates(rows, mode, threshold)
    picked = select(ranked, rows, mmr, mode)
    ranks = [i + 1 for i in picked] if mode == "vector" else None
    return hits_from_rows([ranked[i] for i in picked], collection, None, ranks)
