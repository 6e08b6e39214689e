"""A search, whole: the request checked and its filter compiled, the run with its exact re-run,
and the hits. ``search``, ``search_by_vector`` and ``explain_search`` all go through here; the
statement each run sends, with its numbered parameters, comes from ``_search_statement``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timezone
from typing import Any, NamedTuple, Protocol

import asyncpg

from ..errors import ConfigurationError, InvalidInputError
from . import _inputs as inp
from . import _mmr
from ._filters import Params, compile_filter
from ._log_buffer import LogBuffer, copy_rows, log_rows
from ._models import SearchHit
from ._rows import distance_then_id, hits_from_rows
from ._scan import MAX_EF_SEARCH, MAX_K
from ._schema import StoreSchema
from ._search_statement import LogFields, placeholders, statement
from ._vectors import vector_hash

Connect = Callable[..., AbstractAsyncContextManager[Any]]  # the store's connect(read_only=...)
_LONG_VECTOR = re.compile(r"'\[[-+0-9.e,]{64,}\]'")
MODES = ("vector", "text", "hybrid")


# -- the request ------------------------------------------------------------------------------
class StoreDefaults(Protocol):
    """The store's settings a search falls back on (``MemoryStore`` has them)."""

    ef_search: int
    access_log: bool
    access_log_mode: str  # "buffered" or "sync" (see _log_buffer)
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
    mmr: _mmr.MMR | None = None  # pick mmr.k of the k rows fetched by MMR (see _mmr)
    # The search statement writes the log (access_log_mode="sync", no MMR); else the store does.
    log_in_statement: bool = True


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
    mmr_lambda: float | None = None,
    fetch_k: int | None = None,
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
    mmr, k = _mmr.check(mmr_lambda, fetch_k, k)  # with MMR, k rows are fetched: fetch_k
    ef = defaults.ef_search if ef_search is None else ef_search
    ef = inp.check_int(ef, "ef_search", 1, MAX_EF_SEARCH)
    session_id = inp.check_link(session_id, "session_id")
    threshold = inp.check_similarity(min_similarity)
    in_statement = log and defaults.access_log_mode == "sync" and mmr is None
    params = Params(start=placeholders(in_statement, mode).next)
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
        mmr=mmr,
        log_in_statement=in_statement,
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
def _log_fields(request: SearchRequest, query: str | None, vector: Any) -> LogFields:
    query_hash = (
        hashlib.sha256(query.encode()).digest() if query is not None else vector_hash(vector)
    )
    kept = query if request.log_query_text else None
    return LogFields(request.session_id, kept, query_hash)


async def run(
    connect: Connect,
    request: SearchRequest,
    vector: Any,
    query: str | None,
    buffer: LogBuffer | None = None,
) -> list[SearchHit]:
    """The hits of a prepared search for ``vector`` (embedded from ``query``, if any: the log
    keeps the query's text or hash, a vector's hash).

    The access log's rows go to ``buffer`` when given (``access_log_mode="buffered"``);
    otherwise the search statement writes them, or, for an MMR search (whose hits are picked
    after the statement), one COPY on the same connection.
    """
    log = _log_fields(request, query, vector) if request.log else None
    in_statement = log if request.log_in_statement else None
    buffered = buffer is not None and in_statement is None
    async with connect(read_only=log is None or buffered) as conn:
        rows = await _rows(conn, request, vector, in_statement, query)
        if request.mmr is None:
            hits = hits_from_rows(rows, request.collection, request.threshold)
        else:
            hits = _mmr.hits(rows, request.mmr, request.mode, request.collection, request.threshold)
        if log is None or in_statement is not None or not hits:
            return hits
        fields = (rows[0]["collection_id"], log.session_id, log.query_hash, log.query)
        if not buffered:  # sync mode, MMR: the hits are known only now
            table = (request.schema.statements.table_schema, "memory_access_log")
            await copy_rows(conn, table, log_rows(hits, *fields, datetime.now(timezone.utc)))
    if buffer is not None and buffered:
        buffer.add(hits, *fields)
    return hits


async def _rows(
    conn: Any, request: SearchRequest, vector: Any, log: LogFields | None, query: str | None
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
    log: LogFields | None,
    query: str | None,
) -> list[Any]:
    if request.mode != "vector":
        return await _fetch_text(conn, request, vector, exact, query)  # in order already
    text, args = statement(request, vector, exact, log, query)
    if request.mmr is not None:
        text = _mmr_wrap(text, request)
    rows = await conn.fetch(text, *args)
    # Relaxed-order iterative scans return rows nearly, not strictly, by distance.
    return sorted(rows, key=distance_then_id)


async def _fetch_text(
    conn: Any, request: SearchRequest, vector: Any, exact: bool, query: str | None
) -> list[Any]:
    """The rows of a text or hybrid search (never logged by its statement)."""
    try:
        common = await _common_lexemes(conn, request)
        text, args = statement(request, vector, exact, None, query, common)
        if request.mmr is not None:
            text = _mmr_wrap(text, request)
        return list(await conn.fetch(text, *args))
    except (asyncpg.UndefinedColumnError, asyncpg.UndefinedFunctionError) as exc:
        failure = ConfigurationError(
            f"mode={request.mode!r} needs the text search columns of migration 005 "
            f"({type(exc).__name__}: {exc}): run `sam-db migrate` on this database"
        )
    raise failure


async def _common_lexemes(conn: Any, request: SearchRequest) -> list[str]:
    """The lexemes a text or hybrid search's query leaves out (none for a vector search)."""
    if request.mode == "vector":
        return []
    schema = request.schema
    return await schema.common_lexemes.get(conn, schema.statements.text_common_lexemes)


def _mmr_wrap(text: str, request: SearchRequest) -> str:
    # l2_normalize came with pgvector 0.7; iterative scans (0.8) tell a server that has it.
    return _mmr.wrap(text, request.schema.statements, request.schema.iterative_scans, request.mode)


async def explain(
    connect: Connect, request: SearchRequest, vector: Any, analyze: bool, query: str | None = None
) -> str:
    """The plan of the statement a search would run first (index or exact as requested);
    text and hybrid searches need the ``query`` text."""
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN "
    async with connect(read_only=True) as conn:
        common = await _common_lexemes(conn, request)
        text, args = statement(request, vector, request.exact, None, query, common)
        rows = await conn.fetch(prefix + text, *args)
    # The query vector is inlined in the plan as a long literal: abbreviate it.
    return _LONG_VECTOR.sub("'[...]'", "\n".join(r[0] for r in rows))
