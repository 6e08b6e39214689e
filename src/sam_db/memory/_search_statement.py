"""The search statement and its parameters, named: the text for one run of a search (vector,
text or hybrid; index or exact; with or without the access log) and its argument list, built
side by side so that every ``$n`` has its argument.

A vector search is a single statement (one round trip, no explicit transaction). What it needs
from PostgreSQL comes from three places, because each is decided at a different moment:

- *Plan choice* (planning time): PostgreSQL's cost model does not charge for reading TOASTed
  vectors, so at realistic sizes it prefers a sequential or bitmap scan plus a sort over the HNSW
  index, far slower. The statement orders by ``embedding <=> memory_search_vector($1)``, a
  function whose COST makes every sorted row cost what it really does (migration 004).
- *Estimates* (planning time): PostgreSQL estimates jsonb containment from a histogram of whole
  documents, which can be off by orders of magnitude; an estimate below k makes a scan + sort of
  the "few" matches look cheaper than any index scan. The collection, expiry and metadata
  conditions are therefore wrapped in ``CASE WHEN ... THEN true END``, which the planner estimates
  at a flat half: the index plan is chosen whatever the filter, and a filter that leaves the index
  scan short is answered by the exact re-run.
- *Scan settings* (execution time): ``hnsw.ef_search`` and friends, set inside the statement
  (see ``_scan``).

An exact search orders by the function form ``cosine_distance(embedding, $1)``, which no index
can serve: the same distances, from a scan of every candidate row.

Parameters are named, not numbered by hand: each group below is a NamedTuple (or a tuple of
names) whose fields, in order, are the statement's ``$1..$n`` (``Placeholders``); the filter,
compiled by ``_search.prepare``, numbers its own after them.
"""

# ruff: noqa: S608 -- SQL here is built from quote_ident()-quoted names and placeholders only
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from . import _mmr
from ._scan import MAX_K, SearchSettings, choose_settings
from ._sql import LIVE, Statements
from ._text_search import TextQuery, fusion_depth, hybrid_search, text_search

if TYPE_CHECKING:
    from ._search import SearchRequest


# -- parameters -------------------------------------------------------------------------------
class _Args(NamedTuple):
    """Every search's parameters, in placeholder order."""

    vector: Any  # the query vector
    collection: str  # its name
    ef_search: str  # as text, for set_config


class _LogArgs(NamedTuple):
    """A search that writes the access log has these too, numbered after ``_Args``."""

    min_similarity: float | None  # or NULL: rows below it are not logged
    session_id: str | None
    query_hash: bytes
    query: str | None
    final: bool  # log even a short result: an exact one is final (an index one is re-run)


class Placeholders:
    """The ``$n`` of each named parameter of one statement shape, from its groups in order;
    the filter's own parameters are numbered from ``next``."""

    def __init__(self, *groups: tuple[str, ...]) -> None:
        names = [name for group in groups for name in group]
        self._numbers = {name: f"${i}" for i, name in enumerate(names, 1)}
        self.next = len(names) + 1

    def __getitem__(self, name: str) -> str:
        return self._numbers[name]


_PLAIN = Placeholders(_Args._fields)
_LOGGED = Placeholders(_Args._fields, _LogArgs._fields)
# Text and hybrid searches (never logged): the query's text and the common lexemes its tsquery
# leaves out (see _common_lexemes) too; a text search has no vector.
_TEXT = Placeholders(("query", "common_lexemes", "collection"))
_HYBRID = Placeholders(_Args._fields, ("query", "common_lexemes"))


def placeholders(log: bool, mode: str = "vector") -> Placeholders:
    """The placeholders of a search of this ``mode``, with or without the access log."""
    if mode == "text":
        return _TEXT
    if mode == "hybrid":
        return _HYBRID
    return _LOGGED if log else _PLAIN


class LogFields(NamedTuple):
    """What the access log records about one search besides its hits."""

    session_id: str | None
    query: str | None
    query_hash: bytes


# -- the statement ----------------------------------------------------------------------------
def statement(
    request: SearchRequest,
    vector: Any,
    exact: bool,
    log: LogFields | None,
    query_text: str | None = None,
    common_lexemes: Sequence[str] = (),
) -> tuple[str, list[Any]]:
    """The statement of one run of a search (index or ``exact``) and its arguments; text and
    hybrid searches need ``query_text`` and the ``common_lexemes`` its tsquery leaves out."""
    if request.mode == "text":
        text_args = [query_text, list(common_lexemes), request.collection, *request.filter_args]
        return _text_only(request.schema.statements, request.where, request.k), text_args
    settings = choose_settings(
        exact=exact,
        ef_search=request.ef_search,
        k=request.k,
        filtered=request.filtered,
        iterative=request.schema.iterative_scans,
        log=log is not None,
    )
    args: list[Any] = [*_Args(vector, request.collection, str(settings.ef_search))]
    if log is not None:
        args += _LogArgs(request.threshold, log.session_id, log.query_hash, log.query, exact)
    if request.mode == "hybrid":
        args += [query_text, list(common_lexemes), *request.filter_args]
        return _hybrid(request.schema.statements, request.where, settings, request.k), args
    args += request.filter_args
    extra = _mmr.scan_column(request.mode) if request.mmr is not None else ""
    return _text(request.schema.statements, request.where, settings, request.k, extra), args


def _text(sql: Statements, where: str, settings: SearchSettings, k: int, extra: str = "") -> str:
    """The search statement, with its access-log write when ``settings.log``; ``extra``: more
    columns after ``distance`` (an MMR search's vectors, see ``_mmr.scan_column``).

    ``k`` is written into the text as ``LIMIT k`` (a validated int, formatted by
    ``int.__format__``): with a ``LIMIT $n`` PostgreSQL prices a generic plan as if a tenth of
    the rows came back, finds it dearer than the custom plans, and so re-plans every search.

    Rows come back in no guaranteed order: the caller sorts them by (distance, id), as
    relaxed-order iterative scans need.
    """
    p = placeholders(settings.log)
    limit = _limit(k)
    found = _found(sql, p, where, settings, limit, extra)
    mode = "/* sam_db exact search */" if settings.exact else "/* sam_db hnsw search */"
    if not settings.log:
        # Relaxed-order iterative scans may return rows slightly out of order: the caller
        # sorts them (by distance, then id), which is cheaper than a CTE and a sort here.
        return f"{mode} {found}"
    # The log needs every row's final rank: the found rows are MATERIALIZED and ranked.
    # They are written by the same statement, and only when the result is final: an index
    # search that found fewer than k rows is re-run exactly.
    similarity = f"{p['min_similarity']}::float8"
    return (
        f"{mode} WITH found AS MATERIALIZED ({found}), "
        "ranked AS (SELECT found.*, row_number() OVER (ORDER BY distance, id) AS rank "
        f"FROM found WHERE {similarity} IS NULL OR 1 - distance >= {similarity}), "
        f"logged AS (INSERT INTO {sql.access_log} "
        "(entry_id, collection_id, session_id, query_hash, query, similarity, rank) "
        f"SELECT r.id, r.collection_id, {p['session_id']}::text, {p['query_hash']}::bytea, "
        f"{p['query']}::text, 1 - r.distance, r.rank FROM ranked r "
        f"WHERE {p['final']}::boolean OR (SELECT count(*) FROM found) >= {limit}) "
        # Every found row comes back (the caller needs their number); the client applies
        # the same min-similarity test, in the same float8 arithmetic, and ranks what it keeps.
        "SELECT * FROM found"
    )


def _text_only(sql: Statements, where: str, k: int) -> str:
    """A text search: full-text matches ranked by ts_rank (see ``_text_search``)."""
    p = _TEXT
    query = _text_query(sql, p)
    match = f"e.collection_id = (SELECT c.id FROM {sql.collections} c WHERE c.name = " + (
        f"{p['collection']}) AND {LIVE} AND {where}"
    )
    return "/* sam_db text search */ " + text_search(sql.entries, query, match, _limit(k))


def _hybrid(sql: Statements, where: str, settings: SearchSettings, k: int) -> str:
    """A hybrid search: the vector search (index or exact, ``fusion_depth`` rows) and the text
    search fused by RRF, in one statement (see ``_text_search``)."""
    p = _HYBRID
    depth = _limit(fusion_depth(k))
    found = _found(sql, p, where, settings, depth)
    query = _text_query(sql, p)
    match = f"e.collection_id = (SELECT c.id FROM {sql.collections} c WHERE c.name = " + (
        f"{p['collection']}) AND {LIVE} AND {where}"
    )
    distance = f"e.embedding {sql.distance} {p['vector']}::{sql.vector}"
    mode = "/* sam_db exact hybrid search */" if settings.exact else "/* sam_db hybrid search */"
    return f"{mode} " + hybrid_search(sql.entries, found, distance, query, match, depth, _limit(k))


def _text_query(sql: Statements, p: Placeholders) -> TextQuery:
    """How the statement builds the search text's query (migration 005's functions)."""
    lexemes = f"{sql.text_query_lexemes}({p['query']}::text, {p['common_lexemes']}::text[])"
    return TextQuery(lexemes, sql.text_lexeme_query, sql.text_pair_query)


def _found(
    sql: Statements,
    p: Placeholders,
    where: str,
    settings: SearchSettings,
    limit: str,
    extra: str = "",
) -> str:
    """The SELECT of the nearest matching rows, with the scan settings in its InitPlan."""
    q = f"{p['vector']}::{sql.vector}"
    match = (
        f"e.collection_id = (SELECT c.id FROM {sql.collections} c WHERE c.name = "
        f"{p['collection']}) AND {LIVE} AND {where}"
    )
    if settings.exact:
        order = f"{sql.exact_distance}(e.embedding, {q})"
    else:
        order = f"e.embedding {sql.distance} {sql.search_vector}({q})"
        match = f"CASE WHEN {match} THEN true END"
    # ORDER BY the output column: each row's vector is read (detoasted) and compared once.
    # The access log records each row's collection id (written by this statement's INSERT, or
    # buffered by the store: see _log_buffer).
    return (
        f"SELECT {sql.entry_columns}, e.collection_id, {order} AS distance{extra} "
        f"FROM {sql.entries} e "
        f"WHERE {match} AND (SELECT {settings.config_sql(p['ef_search'])}) IS NOT NULL "
        f"ORDER BY distance LIMIT {limit}"
    )


def _limit(k: int) -> str:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValueError(f"k out of range: {k!r}")
    return f"{k:d}"
