"""A search, whole: the request checked and compiled, the statement and its numbered parameters,
the run with its exact re-run, and the hits. ``search``, ``search_by_vector`` and
``explain_search`` all go through here.

A search is a single statement (one round trip, no explicit transaction). What it needs from
PostgreSQL comes from three places, because each is decided at a different moment:

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

Parameters are named, not numbered by hand: each group below is a NamedTuple whose fields, in
order, are the statement's ``$1..$n`` (``Placeholders``); the filter numbers its own after them.
"""

# ruff: noqa: S608 -- SQL here is built from quote_ident()-quoted names and placeholders only
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, NamedTuple, Protocol

import asyncpg

from ..errors import ConfigurationError, InvalidInputError
from . import _inputs as inp
from ._filters import Params, compile_filter
from ._models import SearchHit
from ._rows import distance_then_id, hits_from_rows
from ._scan import MAX_EF_SEARCH, MAX_K, SearchSettings, choose_settings
from ._schema import StoreSchema
from ._sql import ENTRY_COLUMNS, LIVE, Statements
from ._text_search import fusion_depth, hybrid_search, text_search
from ._vectors import vector_hash

Connect = Callable[..., AbstractAsyncContextManager[Any]]  # the store's connect(read_only=...)
_LONG_VECTOR = re.compile(r"'\[[-+0-9.e,]{64,}\]'")


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
# Text and hybrid searches (never logged): the query's text too; a text search has no vector.
_TEXT = Placeholders(("query", "collection"))
_HYBRID = Placeholders(_Args._fields, ("query",))
MODES = ("vector", "text", "hybrid")


def _placeholders(log: bool, mode: str = "vector") -> Placeholders:
    if mode == "text":
        return _TEXT
    if mode == "hybrid":
        return _HYBRID
    return _LOGGED if log else _PLAIN


# -- the request ------------------------------------------------------------------------------
class StoreDefaults(Protocol):
    """The store's settings a search falls back on (``MemoryStore`` has them)."""

    ef_search: int
    access_log: bool
    log_query_text: bool


class SearchRequest(NamedTuple):
    """One search as validated and compiled, before its query vector exists."""

    schema: StoreSchema
    collection: str
    k: int
    ef_search: int
    threshold: float | None  # min_similarity
    session_id: str | None
    exact: bool
    log: bool  # write the access log
    log_query_text: bool  # the log keeps the query's text (else its hash only)
    where: str  # filter and session conditions, numbered after the placeholders
    filter_args: list[Any]
    filtered: bool
    mode: str = "vector"  # "vector", "text" (full-text only) or "hybrid" (both, fused by RRF)


def prepare(
    schema: StoreSchema,
    defaults: StoreDefaults,
    collection: str,
    k: int,
    filter: Mapping[str, Any] | None,
    min_similarity: float | None,
    session_id: str | None,
    ef_search: int | None,
    exact: bool,
    log: bool | None,
    mode: str = "vector",
) -> SearchRequest:
    """Validate a search's arguments and compile its filter (raises before any work).

    ``ef_search`` and ``log`` left None take the store's. Text and hybrid searches do not write
    the access log (its rows carry a cosine similarity and a vector rank).
    """
    mode = _check_mode(mode, log, min_similarity)
    log = defaults.access_log if log is None else bool(log)
    log = log and mode == "vector"
    collection = inp.check_collection(collection)
    k = inp.check_int(k, "k", 1, MAX_K)
    ef = defaults.ef_search if ef_search is None else ef_search
    ef = inp.check_int(ef, "ef_search", 1, MAX_EF_SEARCH)
    session_id = inp.check_link(session_id, "session_id")
    threshold = inp.check_similarity(min_similarity)
    params = Params(start=_placeholders(log, mode).next)
    where = [compile_filter(filter, params)]
    if session_id is not None:
        where.append(f"e.session_id = {params.add(session_id)}")
    return SearchRequest(
        schema=schema,
        collection=collection,
        k=k,
        ef_search=ef,
        threshold=threshold,
        session_id=session_id,
        exact=bool(exact),
        log=log,
        log_query_text=defaults.log_query_text,
        where=" AND ".join(where),
        filter_args=params.values,
        filtered=filter is not None or session_id is not None,
        mode=mode,
    )


def _check_mode(mode: object, log: bool | None, min_similarity: object) -> str:
    if not isinstance(mode, str) or mode not in MODES:
        raise InvalidInputError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    if mode != "vector" and log:
        raise InvalidInputError(
            f"log=True needs mode='vector': {mode} searches do not write the access log"
        )
    if mode == "text" and min_similarity is not None:
        raise InvalidInputError(
            "min_similarity compares cosine similarities, which a text search (no embedding) "
            "does not have: use mode='hybrid', or drop min_similarity"
        )
    return mode


# -- running it -------------------------------------------------------------------------------
class _LogFields(NamedTuple):
    """What the access log records about one search besides its hits."""

    session_id: str | None
    query: str | None
    query_hash: bytes


def _log_fields(request: SearchRequest, query: str | None, vector: Any) -> _LogFields:
    query_hash = (
        hashlib.sha256(query.encode()).digest() if query is not None else vector_hash(vector)
    )
    kept = query if request.log_query_text else None
    return _LogFields(request.session_id, kept, query_hash)


async def run(
    connect: Connect, request: SearchRequest, vector: Any, query: str | None
) -> list[SearchHit]:
    """The hits of a prepared search for ``vector`` (embedded from ``query``, if any: the log
    keeps the query's text or hash, a vector's hash)."""
    log = _log_fields(request, query, vector) if request.log else None
    async with connect(read_only=log is None) as conn:
        rows = await _rows(conn, request, vector, log, query)
    return hits_from_rows(rows, request.collection, request.threshold)


async def _rows(
    conn: Any, request: SearchRequest, vector: Any, log: _LogFields | None, query: str | None
) -> list[Any]:
    """The index search, re-run exactly when it found fewer than ``k`` rows."""
    if not request.exact:
        rows = await _fetch(conn, request, vector, False, log, query)
        if len(rows) >= request.k or request.mode == "text":
            return rows
        # The index came back short (a filter too selective for the scan's limits, or a
        # small collection): the exact scan says how many matches really exist.
    return await _fetch(conn, request, vector, True, log, query)


async def _fetch(
    conn: Any,
    request: SearchRequest,
    vector: Any,
    exact: bool,
    log: _LogFields | None,
    query: str | None,
) -> list[Any]:
    text, args = statement(request, vector, exact, log, query)
    if request.mode != "vector":
        return await _fetch_text(conn, text, args, request.mode)  # in order already
    rows = await conn.fetch(text, *args)
    # Relaxed-order iterative scans return rows nearly, not strictly, by distance.
    return sorted(rows, key=distance_then_id)


async def _fetch_text(conn: Any, text: str, args: list[Any], mode: str) -> list[Any]:
    try:
        return list(await conn.fetch(text, *args))
    except (asyncpg.UndefinedColumnError, asyncpg.UndefinedFunctionError) as exc:
        failure = ConfigurationError(
            f"mode={mode!r} needs the text search columns of migration 005 "
            f"({type(exc).__name__}: {exc}): run `sam-db migrate` on this database"
        )
    raise failure


async def explain(
    connect: Connect, request: SearchRequest, vector: Any, analyze: bool, query: str | None = None
) -> str:
    """The plan of the statement a search would run first (index or exact as requested);
    text and hybrid searches need the ``query`` text."""
    text, args = statement(request, vector, request.exact, None, query)
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN "
    async with connect(read_only=True) as conn:
        rows = await conn.fetch(prefix + text, *args)
    # The query vector is inlined in the plan as a long literal: abbreviate it.
    return _LONG_VECTOR.sub("'[...]'", "\n".join(r[0] for r in rows))


# -- the statement ----------------------------------------------------------------------------
def statement(
    request: SearchRequest,
    vector: Any,
    exact: bool,
    log: _LogFields | None,
    query_text: str | None = None,
) -> tuple[str, list[Any]]:
    """The statement of one run of a search (index or ``exact``) and its arguments; text and
    hybrid searches need ``query_text``."""
    if request.mode == "text":
        text_args = [query_text, request.collection, *request.filter_args]
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
        args.append(query_text)
        args += request.filter_args
        return _hybrid(request.schema.statements, request.where, settings, request.k), args
    args += request.filter_args
    return _text(request.schema.statements, request.where, settings, request.k), args


def _text(sql: Statements, where: str, settings: SearchSettings, k: int) -> str:
    """The search statement, with its access-log write when ``settings.log``.

    ``k`` is written into the text as ``LIMIT k`` (a validated int, formatted by
    ``int.__format__``): with a ``LIMIT $n`` PostgreSQL prices a generic plan as if a tenth of
    the rows came back, finds it dearer than the custom plans, and so re-plans every search.

    Rows come back in no guaranteed order: the caller sorts them by (distance, id), as
    relaxed-order iterative scans need.
    """
    p = _placeholders(settings.log)
    limit = _limit(k)
    found = _found(sql, p, where, settings, limit)
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
    tsquery = f"{sql.text_query}({p['query']}::text)"
    match = f"e.collection_id = (SELECT c.id FROM {sql.collections} c WHERE c.name = " + (
        f"{p['collection']}) AND {LIVE} AND {where}"
    )
    return "/* sam_db text search */ " + text_search(sql.entries, tsquery, match, _limit(k))


def _hybrid(sql: Statements, where: str, settings: SearchSettings, k: int) -> str:
    """A hybrid search: the vector search (index or exact, ``fusion_depth`` rows) and the text
    search fused by RRF, in one statement (see ``_text_search``)."""
    p = _HYBRID
    depth = _limit(fusion_depth(k))
    found = _found(sql, p, where, settings, depth)
    tsquery = f"{sql.text_query}({p['query']}::text)"
    match = f"e.collection_id = (SELECT c.id FROM {sql.collections} c WHERE c.name = " + (
        f"{p['collection']}) AND {LIVE} AND {where}"
    )
    distance = f"e.embedding {sql.distance} {p['vector']}::{sql.vector}"
    mode = "/* sam_db exact hybrid search */" if settings.exact else "/* sam_db hybrid search */"
    return f"{mode} " + hybrid_search(
        sql.entries, found, distance, tsquery, match, depth, _limit(k)
    )


def _found(
    sql: Statements, p: Placeholders, where: str, settings: SearchSettings, limit: str
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
    # Only the log's INSERT needs the collection id of each row.
    log_columns = "e.collection_id, " if settings.log else ""
    return (
        f"SELECT {ENTRY_COLUMNS}, {log_columns}{order} AS distance "
        f"FROM {sql.entries} e "
        f"WHERE {match} AND (SELECT {settings.config_sql(p['ef_search'])}) IS NOT NULL "
        f"ORDER BY distance LIMIT {limit}"
    )


def _limit(k: int) -> str:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValueError(f"k out of range: {k!r}")
    return f"{k:d}"
