"""MemoryStore: embed texts, store them once per collection, and search them with pgvector HNSW.

The class is the public face: its lifecycle, and methods that check the store is open and hand
over to the module of each behaviour (``_write``, ``_search``, ``_collections``, ``_entries``,
``_access_log``; connections in ``_connections``, what ``open()`` finds in ``_schema``).
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
from . import _access_log, _collections, _entries, _keys, _selection, _write
from . import _inputs as inp
from ._checked import CheckedConnection
from ._connections import Connections
from ._embedder import Embedder
from ._log_buffer import (
    DEFAULT_CAPACITY,
    DEFAULT_FLUSH_INTERVAL,
    LogBuffer,
    check_interval,
    check_mode,
)
from ._models import AccessLogRecord, AccessStat, Collection, MemoryEntry, SearchHit
from ._query_cache import QueryCache
from ._scan import MAX_EF_SEARCH
from ._schema import StoreSchema, discover, embedder_dimensions
from ._search import SearchRequest, explain, prepare, run
from ._vectors import embed_texts, pack_vector


class MemoryStore:
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

    def _opened(self) -> StoreSchema:
        """What open() found; raises when the store is not open."""
        if self._found is None or self._pool is None:
            raise MemoryStoreError.not_open()
        return self._found

    def _connect(self, read_only: bool = False) -> CheckedConnection:
        """A connection with the pgvector codec registered: leased (owned pool) or borrowed.

        A connection the server dropped is replaced before a statement is sent; ``read_only``
        operations are also re-run once when it is lost while they run (see ``_checked``).
        """
        if self._pool is None or self._connections is None:
            raise MemoryStoreError.not_open()
        return self._connections.connection(read_only)

    # -- collections ------------------------------------------------------------------------
    async def create_collection(
        self,
        name: str,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Collection:
        """Create a collection, or update the description/metadata given for an existing one."""
        sql = self._opened().statements
        return await _collections.create(self._connect, sql, name, description, metadata)

    async def list_collections(self) -> list[Collection]:
        """All collections by name, each with its number of live (unexpired) entries."""
        return await _collections.list_all(self._connect, self._opened().statements)

    async def delete_collection(self, name: str) -> int:
        """Delete a collection with its entries and their access log; returns how many entries.

        Raises CollectionNotFoundError when there is no such collection.
        """
        return await _collections.delete(self._connect, self._opened().statements, name)

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
        if key is not None:
            args = (text, key, collection, metadata, session_id, workflow_id)
            return await _keys.add(self._write_context, *args, ttl=ttl, expires_at=expires_at)
        return await _write.add(
            self._write_context,
            text,
            collection,
            metadata,
            session_id,
            workflow_id,
            ttl=ttl,
            expires_at=expires_at,
        )

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

    # -- entries by id ----------------------------------------------------------------------
    async def get(self, entry_id: uuid.UUID | str) -> MemoryEntry | None:
        """The entry with this id, or None when there is none or it has expired."""
        return await _entries.get(self._connect, self._opened().statements, entry_id)

    async def get_by_key(self, key: str, collection: str = "default") -> MemoryEntry | None:
        """The entry of ``collection`` with this key, or None (as :meth:`get`: none, expired)."""
        return await _keys.get_by_key(self._connect, self._opened().statements, key, collection)

    async def delete(self, entry_id_or_ids: uuid.UUID | str | Sequence[uuid.UUID | str]) -> int:
        """Delete one entry or several; returns how many existed (their access log goes too)."""
        return await _entries.delete(self._connect, self._opened().statements, entry_id_or_ids)

    async def purge_expired(self, collection: str | None = None) -> int:
        """Delete expired entries (of one collection, or all) in SQL; returns how many."""
        sql = self._opened().statements
        return await _entries.purge_expired(self._connect, sql, collection)

    # -- operations over a filter (the search's conditions; see _selection) -----------------
    async def count(
        self,
        collection: str = "default",
        filter: Mapping[str, Any] | None = None,
        session_id: str | None = None,
    ) -> int:
        """How many live entries of ``collection`` match ``filter`` and ``session_id``."""
        sql = self._opened().statements
        return await _selection.count(self._connect, sql, collection, filter, session_id)

    async def find(
        self,
        collection: str = "default",
        filter: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        *,
        limit: int = 100,
        after: uuid.UUID | str | None = None,
    ) -> list[MemoryEntry]:
        """Live matching entries ordered by id, ``limit`` at a time; ``after=page[-1].id``
        gives the next page (keyset pagination)."""
        sql, args = self._opened().statements, (collection, filter, session_id)
        return await _selection.find(self._connect, sql, *args, limit=limit, after=after)

    async def delete_where(
        self,
        collection: str = "default",
        filter: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        *,
        all: bool = False,
    ) -> int:
        """Delete the matching entries (expired ones too); returns how many. A filter or a
        session is required unless ``all=True`` (every entry of the collection)."""
        sql, args = self._opened().statements, (collection, filter, session_id)
        return await _selection.delete_where(self._connect, sql, *args, all=all)

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

        return await self._query_cache.get(str(embedder.model), found.dimensions, query, compute)

    # -- access log -------------------------------------------------------------------------
    def _buffer(self) -> LogBuffer | None:
        """Where searches put their log rows: the buffer, or None when they write them."""
        return self._log_buffer if self.access_log_mode == "buffered" else None

    async def flush_access_log(self) -> int:
        """Write the buffered access-log rows now (one COPY); returns how many.

        Raises the write's error with the rows kept for the next flush. Reading the log
        (``most_accessed``, ``access_records``) and ``close()`` flush first.
        """
        self._opened()
        return 0 if self._log_buffer is None else await self._log_buffer.flush()

    @property
    def access_log_dropped(self) -> int:
        """Access-log rows lost since open(): dropped by a full buffer, or unwritable at close."""
        return 0 if self._log_buffer is None else self._log_buffer.dropped

    async def purge_access_log(
        self, older_than: timedelta | datetime, *, collection: str | None = None
    ) -> int:
        """Delete access-log rows older than ``older_than`` (an age, or an aware datetime), of
        one collection or all; returns how many. Schedule it to bound the log (docs/memory.md)."""
        sql = self._opened().statements
        cutoff = _access_log.cutoff(older_than, collection)  # checked before anything is done
        await self.flush_access_log()
        return await _access_log.purge(self._connect, sql, *cutoff)

    async def most_accessed(
        self, collection: str = "default", *, since: datetime | None = None, limit: int = 10
    ) -> list[AccessStat]:
        """The live entries of ``collection`` searches returned most often (since ``since``);
        this store's buffered rows are written first."""
        sql = self._opened().statements
        await self.flush_access_log()
        return await _access_log.most_accessed(self._connect, sql, collection, since, limit)

    async def access_records(
        self,
        *,
        entry_id: uuid.UUID | str | None = None,
        collection: str | None = None,
        session_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AccessLogRecord]:
        """Raw access-log rows, newest first, optionally for one entry, collection or session;
        this store's buffered rows are written first."""
        sql = self._opened().statements
        await self.flush_access_log()
        return await _access_log.records(
            self._connect, sql, entry_id, collection, session_id, since, limit
        )

    def __repr__(self) -> str:
        where = "borrowed pool" if not self._owns_pool else redact_dsn(self._dsn or "")
        return f"MemoryStore({where!r}, embedder={self._embedder!r}, schema={self._schema!r})"
