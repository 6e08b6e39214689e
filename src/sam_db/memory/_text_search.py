"""Statement text for text and hybrid searches: full-text search over ``content``, and its fusion
with the vector ranking by Reciprocal Rank Fusion, in one statement.

Migration 005 gives every entry a ``content_tsv`` (GIN-indexed) and the functions that build it
and the query (``memory_text_document``, ``memory_text_query_lexemes``); docs/memory.md explains
the design.
The choices made here, measured by bench/retrieval_eval.py:

- *OR, not AND*: a query matches entries holding any of its lexemes (stop words dropped), so the
  ordinary words of "how do I use raw_decode?" cannot make it match nothing; ranking sorts out
  which matches are best. ``memory_text_query_lexemes`` keeps that set small, as every match is
  ranked: a query with identifier terms matches by those only, one without leaves out the
  lexemes that ANALYZE counts in many entries (all but the least common, when all of them are).
- *Weights*: identifier terms are stored with weight A, ordinary lexemes with D; ``ts_rank``'s
  default weights (D 0.1 ... A 1.0) make one identifier match count as much as ten word matches.
  The rank is divided by 1 + log(document length) (normalization 1), so a long module docstring
  that mentions every word once does not outrank the passage about the query.
- *Fusion*: each leg ranks its best ``depth`` candidates; an entry's score is the sum over legs of
  ``1 / (RRF_K + rank)``. RRF_K = 60 is the constant of the original RRF paper (Cormack, Clarke
  and Buettcher, 2009): it flattens the head of each ranking, so an entry both legs found beats
  one ranked first by a single leg.
- *Coverage*: the text leg's term is multiplied by the entry's coverage of the query, the share
  of the query's lexemes it holds, cubed (``COVERAGE_POWER``). An entry holding every lexeme (the
  passage of an identifier, of a quoted sentence) keeps its whole term; one holding half of the
  words of a question put in the user's own words, which shares only incidental words with any
  passage, gets an eighth of it, so such matches cannot push the vector leg's finds out of the
  top k. With equal weights, hybrid found fewer targets of paraphrased questions than the vector
  leg alone; a fixed smaller weight instead costs the queries that need the text leg.
- *Pairs*: a hybrid search's text leg matches only entries holding two of the query's lexemes
  when it has three or more (``memory_text_pair_query``). Coverage leaves an entry holding one of
  three at most a 27th of a text term, too little to matter, and such entries are most of what a
  sentence of ordinary words matches: ranking them was most of the leg's cost. A text-only search
  still matches entries holding any of the lexemes.

Both legs apply the same collection, expiry, filter and session conditions (``match``). The vector
leg is the store's own index search (its HNSW scan, iterative scans and planner settings
unchanged), limited to ``depth`` rows.
"""

# ruff: noqa: S608 -- SQL here is built from quote_ident()-quoted names and placeholders only
from __future__ import annotations

from typing import NamedTuple

from ._sql import ENTRY_COLUMNS

# The RRF constant (see the module docstring).
RRF_K = 60
# Candidates each leg contributes to the fusion: at least k, and enough that an entry ranked
# moderately by both legs can win; deeper legs cost time and let more of one leg's weak
# candidates crowd out the other's (bench/retrieval_eval.py measured both).
MIN_FUSION_DEPTH = 20
MAX_FUSION_DEPTH = 1000
# ts_rank normalization: divide by 1 + the logarithm of the document length.
RANK_NORMALIZATION = 1
# The text leg's RRF term is weighted by the entry's coverage of the query's lexemes to this
# power (see the module docstring).
COVERAGE_POWER = 3


def fusion_depth(k: int) -> int:
    """Candidates per leg for a hybrid search of ``k`` hits."""
    return min(MAX_FUSION_DEPTH, max(k, MIN_FUSION_DEPTH))


def text_rank_expr(tsquery: str) -> str:
    """The text leg's score of an entry ``e`` for the tsquery expression ``tsquery``."""
    return f"ts_rank(e.content_tsv, {tsquery}, {RANK_NORMALIZATION})"


class TextQuery(NamedTuple):
    """How a statement builds its text query: ``lexemes``, an expression of the lexemes the
    query ORs (``memory_text_query_lexemes``); ``or_query``, the function making their tsquery
    (``memory_text_lexeme_query``); ``pair_query``, the one matching entries that hold two of
    them (``memory_text_pair_query``), which a hybrid search's text leg matches with."""

    lexemes: str
    or_query: str
    pair_query: str


def text_candidates(
    entries: str, query: TextQuery, match: str, limit: str, pairs: bool = False
) -> str:
    """The ids of the ``limit`` best text matches with their rank (1 = best), as ``text_rank``,
    and ``text_coverage``: the share of the query's lexemes the entry holds (0 to 1). With
    ``pairs``, only entries holding two of the query's lexemes (when it has three or more) match;
    all are ranked by the OR of the lexemes.

    ``match`` holds the collection, expiry, filter and session conditions over ``e``. The query
    is built once per statement, in a MATERIALIZED CTE that the match, the rank and the coverage
    read through InitPlans: a function of a bind parameter in a generic plan is otherwise
    evaluated for every row, and two ``(SELECT f($1))`` would evaluate it twice (OFFSET 0 keeps
    the lexemes from being inlined into both of their uses). The coverage is computed for the
    ``limit`` rows kept only: the lexemes the entry holds are those that deleting the query's
    lexemes from its tsvector removes.
    """
    tsquery = "(SELECT q FROM text_query)"
    matching = "(SELECT pq FROM text_query)" if pairs else tsquery
    pair_query = f"{query.pair_query}(l.lexemes)" if pairs else "NULL::tsquery"
    lexemes = "(SELECT lexemes FROM text_query)"
    held = f"length(t.tsv) - length(ts_delete(t.tsv, {lexemes}))"
    return (
        f"WITH text_query AS MATERIALIZED (SELECT l.lexemes, {query.or_query}(l.lexemes) AS q, "
        f"{pair_query} AS pq FROM (SELECT {query.lexemes} AS lexemes OFFSET 0) l) "
        "SELECT t.id, row_number() OVER (ORDER BY t.score DESC, t.id) AS text_rank, "
        f"({held})::float8 / greatest(cardinality({lexemes}), 1) AS text_coverage FROM ("
        f"SELECT e.id, e.content_tsv AS tsv, {text_rank_expr(tsquery)} AS score FROM {entries} e "
        f"WHERE e.content_tsv @@ {matching} AND {match} "
        f"ORDER BY score DESC, e.id LIMIT {limit}) t"
    )


def text_search(entries: str, query: TextQuery, match: str, limit: str) -> str:
    """A text-only search: the ``limit`` best text matches as entry rows, best first.

    Rows carry ENTRY_COLUMNS, then ``distance`` (NULL: no query vector), ``vector_rank`` (NULL),
    ``text_rank`` and ``score`` (its RRF term, ``1 / (RRF_K + text_rank)``).
    """
    return (
        f"SELECT {ENTRY_COLUMNS}, NULL::float8 AS distance, NULL::bigint AS vector_rank, "
        f"t.text_rank, 1.0::float8 / ({RRF_K} + t.text_rank) AS score "
        f"FROM ({text_candidates(entries, query, match, limit)}) t "
        f"JOIN {entries} e ON e.id = t.id ORDER BY t.text_rank"
    )


def vector_candidates(found: str) -> str:
    """Ranks the rows of the store's vector search ``found`` (which selects ``id`` and
    ``distance``) as ``vector_rank`` (1 = nearest)."""
    return f"SELECT id, row_number() OVER (ORDER BY distance, id) AS vector_rank FROM ({found}) v"


def hybrid_search(
    entries: str, found: str, distance: str, query: TextQuery, match: str, depth: str, limit: str
) -> str:
    """Both legs fused by RRF: the ``limit`` best entry rows, best first.

    ``found`` is the vector leg (the store's index or exact search, ``depth`` rows); ``distance``
    the cosine distance expression of ``e`` to the query vector, computed for the returned rows
    only. Rows carry ENTRY_COLUMNS, then ``distance``, ``vector_rank`` and ``text_rank`` (NULL
    when that leg did not find the entry) and ``score``, the fused score.
    """
    text_term = f"power(t.text_coverage, {COVERAGE_POWER}) / ({RRF_K} + t.text_rank)"
    fused = (
        "SELECT COALESCE(v.id, t.id) AS id, v.vector_rank, t.text_rank, "
        f"COALESCE(1.0::float8 / ({RRF_K} + v.vector_rank), 0) + COALESCE({text_term}, 0) "
        "AS score FROM v FULL JOIN t ON v.id = t.id "
        f"ORDER BY score DESC, id LIMIT {limit}"
    )
    return (
        f"WITH v AS MATERIALIZED ({vector_candidates(found)}), "
        f"t AS MATERIALIZED ({text_candidates(entries, query, match, depth, pairs=True)}), "
        f"f AS ({fused}) "
        f"SELECT {ENTRY_COLUMNS}, {distance} AS distance, f.vector_rank, f.text_rank, f.score "
        f"FROM f JOIN {entries} e ON e.id = f.id ORDER BY f.score DESC, f.id"
    )
