"""MemoryStore: embed texts, store them once per collection, and search them with pgvector HNSW.

The class is the public face: its lifecycle, writing and searching, each method checking the
store is open and handing over to the module of its behaviour (``_write``, ``_keys``, ``_search``;
connections in ``_connections``, what ``open()`` finds in ``_schema``). Collections, entries by id
and by filter, expiry and the access log come from its base class in ``_store_maintenance``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import asyncpg

from .._redact import redact_dsn
from ..errors import ConfigurationError, InvalidInputError, MemoryStoreError
from . import _inputs as inp
from . import _keys, _write
from ._connections import Connections
from ._embedder import Embedder
from ._log_buffer import (
    DEFAULT_CAPACITY,
    DEFAULT_FLUSH_INTERVAL,
    LogBuffer,
    check_interval,
    check_mode,
)
from ._models import MemoryEntry, SearchHit
from ._query_cache import QueryCache
from ._scan import MAX_EF_SEARCH
from ._schema import StoreSchema, discover, embedder_dimensions
from ._search import SearchRequest, explain, prepare, run
from ._store_maintenance import _Maintenance
from ._vectors import embed_texts, pack_vector


class MemoryStore(_Maintenance):
    """Agent memories in PostgreSQL: embedded once, deduplicated per collection, searched by HNSW.

    ``dsn_or_pool`` is a DSN (the store opens and closes its own asyncpg pool) or an
    ``asyncpg.Pool`` (borrowed: never closed; the store registers pgvector's codec on each of its
    connections at first use — register it in your pool's ``init`` to save that round trip).
    ``schema`` names the schema holding the memory tables; by default the connection's
    ``search_path`` finds them. Use as ``async with MemoryStore(...) as store:``.

    Tuning: ``ef_search`` (HNSW candidate list, per store; each search may override it),
    ``access_log`` (record what searches return), ``batch_size`` / ``write_concurrency``
    (``add_many`` batches and how many run at once on separate connections), ``max_connections``
    (size of an owned pool).
    """

    def __init__(
        self,
        dsn_or_pool: str | asyncpg.Pool[Any],
        embedder: Embedder | None = None,
        *,
        schema: str | None = None,
        ef_search: int = 40,
        access_log: bool = True,
        log_query_text: bool = True,
        access_log_mode: str = "buffered",
        access_log_buffer: int = DEFAULT_CAPACITY,
        access_log_flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        batch_size: int = 256,
        write_concurrency: int = 4,
        max_connections: int = 8,
        query_cache_size: int = 0,
    ) -> None:
        if isinstance(dsn_or_pool, str):
            self._dsn: str | None = dsn_or_pool
            self._pool: asyncpg.Pool[Any] | None = None
        elif isinstance(dsn_or_pool, asyncpg.Pool):
            self._dsn = None
            self._pool = dsn_or_pool
        else:
            raise ConfigurationError("MemoryStore needs a DSN string or an asyncpg.Pool")
        if schema is not None:
            inp.check_text(schema, what="schema")
        self._schema = schema
        self._embedder = embedder
        self.ef_search = inp.check_int(ef_search, "ef_search", 1, MAX_EF_SEARCH)
        self.access_log = bool(access_log)
        self.log_query_text = bool(log_query_text)
        # "buffered": searches hand log rows to a buffer written in the background (see
        # _log_buffer); "sync": each search statement writes its own.
        self.access_log_mode = check_mode(access_log_mode)
        self._log_capacity = inp.check_int(access_log_buffer, "access_log_buffer", 1, 10**7)
        self._log_interval = check_interval(access_log_flush_interval)
        self._log_buffer: LogBuffer | None = None
        self.batch_size = inp.check_int(batch_size, "batch_size", 1, 100_000)
        self.write_concurrency = inp.check_int(write_concurrency, "write_concurrency", 1, 64)
        self._max_connections = inp.check_int(max_connections, "max_connections", 1, 1000)
        # The last query_cache_size query vectors (0: none), so a repeated query skips the
        # embedding call (see _query_cache).
        self._query_cache: QueryCache[Any] = QueryCache(query_cache_size)
        self._owns_pool = self._pool is None
        self._found: StoreSchema | None = None  # what open() found; None when closed
        self._iterative_scans = False  # the last open()'s finding, kept after close()
        self._connections: Connections | None = None  # where operations get connections

    # -- lifecycle --------------------------------------------------------------------------
    async def __aenter__(self) -> MemoryStore:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> MemoryStore:
        """Open the pool (if owned), find the tables and pgvector, and check the embedder's size.

        Raises DimensionMismatchError (naming both sizes) before anything is written when the
        embedder's ``dimensions`` differ from the ``embedding`` column's.
        """
        if self._found is not None:
            return self
        if self._embedder is None:
            from ._openai import OpenAIEmbedder

            self._embedder = OpenAIEmbedder()
        dims = embedder_dimensions(self._embedder)
        if self._owns_pool:
            assert self._dsn is not None
            self._connections = await Connections.own(self._dsn, self._max_connections)
            self._pool = self._connections.pool
        else:
            assert self._pool is not None
            self._connections = Connections.borrow(self._pool)
        try:
            async with self._connections.pool.acquire() as conn:
                found = await discover(conn, self._schema, dims, self._embedder)
        except BaseException:
            await self.close()
            raise
        self._connections.use_extension_schema(found.extension_schema)
        self._iterative_scans = found.iterative_scans
        self._found = found
        table = (found.statements.table_schema, "memory_access_log")
        self._log_buffer = LogBuffer(self._connect, table, self._log_capacity, self._log_interval)
        return self

    async def close(self) -> None:
        """Write the buffered access log, then close the pool if the store opened it (a borrowed
        pool stays open)."""
        if self._log_buffer is not None and self._found is not None:
            await self._log_buffer.close()
        self._found = None
        connections, self._connections = self._connections, None
        if self._owns_pool:
            self._pool = None
        if connections is not None:
            await connections.close()

    @property
    def embedder(self) -> Embedder:
        """The embedder this store uses."""
        if self._embedder is None:
            raise MemoryStoreError.not_open()
        return self._embedder

    @property
    def iterative_scans(self) -> bool:
        """Whether the server's pgvector (0.8+) has iterative index scans (found at open)."""
        return self._iterative_scans

    # -- writing ----------------------------------------------------------------------------
    async def add(
        self,
        text: str,
        collection: str = "default",
        metadata: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        workflow_id: str | None = None,
        *,
        ttl: timedelta | None = None,
        expires_at: datetime | None = None,
        key: str | None = None,
    ) -> MemoryEntry:
        """Remember ``text`` in ``collection`` (created on first use); returns the stored entry.

        Content already stored in the collection is not embedded again: its entry is returned
        unchanged (an expired one is renewed with this call's metadata, links and expiry).
        With ``key`` (your stable id, unique per collection) it is an upsert: that key's entry
        gets this text, metadata, links and expiry, re-embedded only when the text changed.
        """
        rest = (collection, metadata, session_id, workflow_id)
        if key is not None:
            return await _keys.add(
                self._write_context, text, key, *rest, ttl=ttl, expires_at=expires_at
            )
        return await _write.add(self._write_context, text, *rest, ttl=ttl, expires_at=expires_at)

    async def add_many(
        self,
        texts: Sequence[str],
        collection: str = "default",
        metadata: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
        *,
        session_id: str | None = None,
        workflow_id: str | None = None,
        ttl: timedelta | None = None,
        expires_at: datetime | None = None,
        batch_size: int | None = None,
        keys: Sequence[str] | None = None,
    ) -> list[MemoryEntry]:
        """Remember many texts; returns one entry per input text, in input order.

        ``metadata`` is None, one dict for every text, or one dict per text. Texts already stored
        (and repeats within ``texts``, which map to the same entry) are not embedded again. Every
        text, metadata dict and vector is validated before the first write; rows are then
        written in batches of ``batch_size`` (and at most ``MAX_BATCH_CHARS`` characters), one
        transaction each, ``write_concurrency`` at a time on separate connections (HNSW inserts
        are CPU-bound on the server). A failing batch raises BatchWriteError naming it; batches
        already committed stay and are listed in the error. Cancelled, it rolls back the batches
        whose COMMIT was not sent and waits for those under way before the cancellation goes on:
        nothing is written afterwards. Calling it again with the same texts completes the job
        (stored texts are neither embedded nor written again).

        ``keys`` (one per text, no repeats) makes it an upsert per key, as ``add(key=)`` is.
        """
        if keys is not None:
            return await _keys.add_many(
                self._write_context,
                texts,
                keys,
                collection,
                metadata,
                session_id=session_id,
                workflow_id=workflow_id,
                ttl=ttl,
                expires_at=expires_at,
                batch_size=batch_size,
            )
        return await _write.add_many(
            self._write_context,
            texts,
            collection,
            metadata,
            session_id=session_id,
            workflow_id=workflow_id,
            ttl=ttl,
            expires_at=expires_at,
            batch_size=batch_size,
        )

    def _write_context(self) -> _write.WriteContext:
        found = self._opened()
        return _write.WriteContext(
            found.statements,
            found.dimensions,
            self.embedder,
            self._connect,
            self.batch_size,
            self.write_concurrency,
            found.half,
        )

    async def update(
        self,
        entry_id: uuid.UUID | str,
        text: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> MemoryEntry:
        """Replace an entry's text (re-embedding it) and/or its metadata; returns the new entry.

        Raises EntryNotFoundError for an unknown or expired id, and InvalidInputError when the new
        text is already stored as another entry of the collection.
        """
        return await _write.update(self._write_context, entry_id, text, metadata)

    # -- searching --------------------------------------------------------------------------
    async def search(
        self,
        query: str,
        collection: str = "default",
        k: int = 10,
        filter: Mapping[str, Any] | None = None,
        min_similarity: float | None = None,
        session_id: str | None = None,
        *,
        mode: str = "vector",
        mmr_lambda: float | None = None,
        fetch_k: int | None = None,
        ef_search: int | None = None,
        exact: bool = False,
        log: bool | None = None,
    ) -> list[SearchHit]:
        """The ``k`` entries most similar to ``query`` (cosine), best first.

        ``mode="text"`` ranks by PostgreSQL full-text search instead (no embedding call), and
        ``mode="hybrid"`` fuses both rankings by Reciprocal Rank Fusion in one statement (see
        docs/memory.md); both need migration 005.

        ``filter`` is a metadata filter (see docs/memory.md), ``session_id`` keeps entries of one
        session, ``min_similarity`` drops weaker hits. The HNSW index serves the search (with
        pgvector's iterative scans when filtered, so k matches come back when k exist); when it
        still comes back short, the search is re-run exactly. ``exact=True`` skips the index.
        ``ef_search`` overrides the store's for this call; ``log`` the store's ``access_log``.
        ``mmr_lambda`` (0-1) picks the k hits from ``fetch_k`` candidates (default 4·k) by
        Maximal Marginal Relevance, trading relevance (1) for diversity (0): see ``_mmr``.
        """
        inp.check_text(query, what="query")
        # Validate everything (filter included) before paying for an embedding call.
        args = (collection, k, filter, min_similarity, session_id, ef_search, exact, log)
        request = prepare(self._opened(), self, *args, mode, mmr_lambda, fetch_k)
        vector = None if request.mode == "text" else await self._embed_query(query, request)
        return await run(self._connect, request, vector, query, self._buffer())

    async def search_by_vector(
        self,
        vector: Sequence[float],
        collection: str = "default",
        k: int = 10,
        filter: Mapping[str, Any] | None = None,
        min_similarity: float | None = None,
        session_id: str | None = None,
        *,
        mmr_lambda: float | None = None,
        fetch_k: int | None = None,
        ef_search: int | None = None,
        exact: bool = False,
        log: bool | None = None,
    ) -> list[SearchHit]:
        """Like :meth:`search` with a precomputed query vector (the log stores its hash only)."""
        found = self._opened()
        packed = pack_vector(vector, found.dimensions, what="query vector", half=found.half)
        args = (collection, k, filter, min_similarity, session_id, ef_search, exact, log)
        request = prepare(self._opened(), self, *args, "vector", mmr_lambda, fetch_k)
        return await run(self._connect, request, packed, None, self._buffer())

    async def explain_search(
        self,
        query: str | Sequence[float],
        collection: str = "default",
        k: int = 10,
        filter: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        *,
        mode: str = "vector",
        ef_search: int | None = None,
        exact: bool = False,
        analyze: bool = False,
    ) -> str:
        """The PostgreSQL plan of a search, run with the same SQL and settings as :meth:`search`.

        For checking that the HNSW index serves your searches (look for
        ``memory_entries_embedding_hnsw_idx``); ``analyze=True`` runs it and adds timings.
        Text and hybrid searches (``mode=``) need ``query`` as text.
        """
        dims = self._opened().dimensions
        if isinstance(query, str):
            inp.check_text(query, what="query")
        args = (collection, k, filter, None, session_id, ef_search, exact, False, mode)
        request = prepare(self._opened(), self, *args)
        if request.mode != "vector" and not isinstance(query, str):
            raise InvalidInputError(f"mode={mode!r} searches by text: pass the query as a str")
        if request.mode == "text":
            vector = None
        elif isinstance(query, str):
            vector = await self._embed_query(query, request)
        else:
            vector = pack_vector(query, dims, what="query vector", half=self._opened().half)
        text = query if isinstance(query, str) else None
        return await explain(self._connect, request, vector, analyze, text)

    async def _embed_query(self, query: str, request: SearchRequest) -> Any:
        found = request.schema
        embedder = self.embedder

        async def compute() -> Any:
            return (await embed_texts(embedder, [query], found.dimensions, found.half))[0]

        # Keyed by the packed form too: a store reopened after a migration to halfvec packs anew.
        model = f"{embedder.model}\x00halfvec" if found.half else str(embedder.model)
        return await self._query_cache.get(model, found.dimensions, query, compute)

    def __repr__(self) -> str:
        where = "borrowed pool" if not self._owns_pool else redact_dsn(self._dsn or "")
        return f"MemoryStore({where!r}, embedder={self._embedder!r}, schema={self._schema!r})"
