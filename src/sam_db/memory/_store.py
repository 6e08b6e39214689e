"""MemoryStore: embed texts, store them once per collection, and search them with pgvector HNSW."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, NamedTuple

import asyncpg
from pgvector.asyncpg import register_vector

from .._connect import create_pool
from .._redact import redact_dsn
from ..errors import (
    BatchWriteError,
    CollectionNotFoundError,
    ConfigurationError,
    DimensionMismatchError,
    EmbeddingError,
    EntryNotFoundError,
    InvalidInputError,
    MemoryStoreError,
)
from . import _inputs as inp
from ._checked import CheckedConnection
from ._embedder import Embedder
from ._filters import Params, compile_filter
from ._leases import Borrowed, Leases
from ._models import AccessLogRecord, AccessStat, Collection, MemoryEntry, SearchHit
from ._rows import distance_then_id, entry_from_row, hits_from_rows
from ._search import choose_settings, parse_version
from ._sql import (
    DISCOVER_EXTENSION,
    DISCOVER_TABLE,
    Statements,
    search_param_start,
)
from ._tasks import gather_or_cancel
from ._vectors import pack_vector, pack_vectors, vector_hash
from ._writes import Shared, in_transaction, plan_units, write_units

_log = logging.getLogger("sam_db.memory")

_Conn = Any  # asyncpg Connection or PoolConnectionProxy
_DIMENSIONS = re.compile(r"vector\((\d+)\)$")
_LONG_VECTOR = re.compile(r"'\[[-+0-9.e,]{64,}\]'")
# Texts handed to the embedder per call; their vectors are packed to float32 right after, so
# memory stays bounded for very large add_many calls.
_EMBED_CHUNK = 1024
_EMBED_PARALLEL = 2


def _collection(row: Mapping[str, Any]) -> Collection:
    return Collection(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        metadata=inp.decode_metadata(row["metadata"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        entry_count=row["entry_count"],
    )


def _check_model(model: object) -> None:
    """The embedder's ``model`` is stored with every entry: it must be storable text."""
    try:
        inp.check_link(model, "embedder.model")
        if model is None:
            raise InvalidInputError("embedder.model is None")
    except InvalidInputError as exc:
        raise ConfigurationError(
            f"{exc}: name the embedding model, e.g. 'all-MiniLM-L6-v2'"
        ) from None


async def _init_connection(conn: Any) -> None:
    """Owned pools: register pgvector's binary codec with the schema the extension lives in."""
    ext = await conn.fetchrow(DISCOVER_EXTENSION)
    if ext is not None:  # missing extension: open() reports it
        await register_vector(conn, schema=ext["ext_schema"])


async def _keep_session(conn: Any) -> None:
    """Owned pools skip asyncpg's reset query (a round trip per release): the store never
    changes session state — its settings are transaction-local — and asyncpg still ends any
    open transaction on release."""


class _LogContext:
    """What the access log records about one search besides its hits."""

    def __init__(
        self,
        session_id: str | None,
        query: str | None,
        vector: Any,
        keep_text: bool,
    ) -> None:
        self.session_id = session_id
        self.query = query if keep_text else None
        self.query_hash = (
            hashlib.sha256(query.encode()).digest() if query is not None else vector_hash(vector)
        )


class _SearchRequest(NamedTuple):
    """One search as validated and compiled, before its query vector exists."""

    sql: Statements
    where: str
    extra: list[Any]  # the filter's parameters
    collection: str
    k: int
    ef: int
    filtered: bool
    threshold: float | None
    session_id: str | None
    exact: bool
    log: bool


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
        batch_size: int = 256,
        write_concurrency: int = 4,
        max_connections: int = 8,
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
        self.ef_search = inp.check_int(ef_search, "ef_search", 1, inp.MAX_EF_SEARCH)
        self.access_log = bool(access_log)
        self.log_query_text = bool(log_query_text)
        self.batch_size = inp.check_int(batch_size, "batch_size", 1, 100_000)
        self.write_concurrency = inp.check_int(write_concurrency, "write_concurrency", 1, 64)
        self._max_connections = inp.check_int(max_connections, "max_connections", 1, 1000)
        self._owns_pool = self._pool is None
        self._sql: Statements | None = None
        self._dimensions: int | None = None
        self._iterative = False
        self._pgvector_version = ""
        self._ext_schema = "public"
        self._codec_ready: dict[int, Any] = {}
        self._source: Leases | Borrowed | None = None  # where operations get connections

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
        if self._sql is not None:
            return self
        if self._embedder is None:
            from ._openai import OpenAIEmbedder

            self._embedder = OpenAIEmbedder()
        dims = self._embedder.dimensions
        if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
            raise ConfigurationError(f"embedder.dimensions must be a positive int, got {dims!r}")
        _check_model(self._embedder.model)
        if self._owns_pool:
            assert self._dsn is not None
            # Failures come back typed, without the DSN's password (sam_db._connect).
            self._pool = await create_pool(
                self._dsn,
                min_size=1,
                max_size=self._max_connections,
                init=_init_connection,
                reset=_keep_session,
            )
            self._source = Leases(self._pool, self._max_connections, redact_dsn(self._dsn))
        else:
            assert self._pool is not None
            self._source = Borrowed(self._pool, self._ensure_codec)
        try:
            await self._discover(dims)
        except BaseException:
            await self.close()
            raise
        return self

    async def _discover(self, dims: int) -> None:
        pool = self._require_pool()
        table = "memory_entries"
        if self._schema is not None:
            from .._ident import quote_ident

            table = f"{quote_ident(self._schema)}.memory_entries"
        async with pool.acquire() as conn:
            found = await conn.fetchrow(DISCOVER_TABLE, table)
            ext = await conn.fetchrow(DISCOVER_EXTENSION)
        where = f"schema {self._schema!r}" if self._schema else "the search_path"
        if found is None:
            raise MemoryStoreError(
                f"table memory_entries not found in {where}: apply sam_db's migrations first "
                "(await sam_db.migrate(dsn))"
            )
        if ext is None:
            raise MemoryStoreError("the pgvector extension (vector) is not installed")
        match = _DIMENSIONS.search(found["embedding_type"])
        if match is None:
            raise MemoryStoreError(
                f"memory_entries.embedding has type {found['embedding_type']}, expected vector(n)"
            )
        column = int(match.group(1))
        if column != dims:
            raise DimensionMismatchError(
                f"embedder {self._embedder!r} makes {dims}-dimensional vectors but "
                f"memory_entries.embedding is vector({column}): use an embedder with "
                f"dimensions={column} or migrate the column to vector({dims})",
                expected=column,
                actual=dims,
            )
        self._dimensions = column
        self._pgvector_version = ext["extversion"]
        self._ext_schema = ext["ext_schema"]
        self._iterative = parse_version(ext["extversion"]) >= (0, 8)
        sql = Statements.build(found["table_schema"], ext["ext_schema"])
        if not found["has_search_helper"]:
            raise MemoryStoreError(
                f"function {sql.search_vector}() is missing: the schema was migrated by a "
                "development build of sam_db whose 004_memory_system.sql predates it; roll 004 "
                "back and migrate again"
            )
        self._sql = sql

    async def close(self) -> None:
        """Close the pool if the store opened it; a borrowed pool stays open."""
        self._sql = None
        source, self._source = self._source, None
        if isinstance(source, Leases):
            await source.close()
        if self._owns_pool and self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
        self._codec_ready.clear()

    @property
    def embedder(self) -> Embedder:
        """The embedder this store uses."""
        if self._embedder is None:
            raise MemoryStoreError("the store is not open: use `async with store:`")
        return self._embedder

    @property
    def iterative_scans(self) -> bool:
        """Whether the server's pgvector (0.8+) has iterative index scans (found at open)."""
        return self._iterative

    def _connect(self, read_only: bool = False) -> CheckedConnection:
        """A connection with the pgvector codec registered: leased (owned pool) or borrowed.

        A connection the server dropped is replaced before a statement is sent; ``read_only``
        operations are also re-run once when it is lost while they run (see ``_checked``).
        """
        self._require_pool()
        if self._source is None:
            raise MemoryStoreError("the store is not open: use `async with store:`")
        return self._source.connection(read_only)

    async def _ensure_codec(self, conn: Any) -> None:
        # A borrowed pool's connections get the codec on first use. They are told apart by
        # their settings object, kept referenced so that its id() cannot be reused.
        settings = conn.get_settings()
        if id(settings) in self._codec_ready:
            return
        if len(self._codec_ready) > 10_000:  # connections come and go: forget old ones
            self._codec_ready.clear()
        await register_vector(conn, schema=self._ext_schema)
        self._codec_ready[id(settings)] = settings

    def _require_pool(self) -> asyncpg.Pool[Any]:
        if self._pool is None:
            raise MemoryStoreError("the store is not open: use `async with store:`")
        return self._pool

    def _require(self) -> tuple[asyncpg.Pool[Any], Statements, int]:
        if self._sql is None or self._pool is None or self._dimensions is None:
            raise MemoryStoreError("the store is not open: use `async with store:`")
        return self._pool, self._sql, self._dimensions

    # -- collections ------------------------------------------------------------------------
    async def create_collection(
        self,
        name: str,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Collection:
        """Create a collection, or update the description/metadata given for an existing one."""
        _, sql, _ = self._require()
        name = inp.check_collection(name)
        if description is not None:
            inp.check_text(description, what="description")
        meta = None if metadata is None else inp.metadata_json(metadata)
        async with self._connect() as conn:
            row = await conn.fetchrow(sql.collection_upsert, name, description, meta)
        assert row is not None
        return _collection(row)

    async def list_collections(self) -> list[Collection]:
        """All collections by name, each with its number of live (unexpired) entries."""
        _, sql, _ = self._require()
        async with self._connect(read_only=True) as conn:
            rows = await conn.fetch(sql.collection_list)
        return [_collection(r) for r in rows]

    async def delete_collection(self, name: str) -> int:
        """Delete a collection with its entries and their access log; returns how many entries.

        Raises CollectionNotFoundError when there is no such collection.
        """
        _, sql, _ = self._require()
        name = inp.check_collection(name)
        async with self._connect() as conn, conn.transaction():
            row = await conn.fetchrow(sql.collection_delete, name)
        if row is None or not row["deleted"]:
            raise CollectionNotFoundError(f"collection {name!r} does not exist")
        return int(row["entries"] or 0)

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
    ) -> MemoryEntry:
        """Remember ``text`` in ``collection`` (created on first use); returns the stored entry.

        Content already stored in the collection is not embedded again: its entry is returned
        unchanged (an expired one is renewed with this call's metadata, links and expiry).
        """
        inp.check_text(text)
        entries = await self._add(
            [text],
            collection,
            [inp.metadata_json(metadata)],
            session_id=session_id,
            workflow_id=workflow_id,
            ttl=ttl,
            expires_at=expires_at,
            single=True,
            batch_size=None,
        )
        return entries[0]

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
        """
        if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
            raise InvalidInputError("add_many takes a list of texts (use add() for one text)")
        for i, t in enumerate(texts):
            inp.check_text(t, what=f"texts[{i}]")
        metas = inp.metadata_list(metadata, len(texts))
        if batch_size is not None:
            inp.check_int(batch_size, "batch_size", 1, 100_000)
        return await self._add(
            list(texts),
            collection,
            metas,
            session_id=session_id,
            workflow_id=workflow_id,
            ttl=ttl,
            expires_at=expires_at,
            single=False,
            batch_size=batch_size,
        )

    async def _embed_packed(self, texts: list[str], dims: int) -> list[Any]:
        """Embed texts in bounded chunks and validate/pack each chunk's vectors at once.

        Whatever the embedder raises reaches the caller as EmbeddingError (or the
        MemoryStoreError it raised); bad vectors as InvalidInputError.
        """
        if not texts:
            return []
        embedder = self.embedder
        chunks = [texts[i : i + _EMBED_CHUNK] for i in range(0, len(texts), _EMBED_CHUNK)]
        gate = asyncio.Semaphore(_EMBED_PARALLEL)

        async def one(chunk: list[str]) -> list[Any]:
            async with gate:
                try:
                    vectors = await embedder.embed(chunk)
                except MemoryStoreError:
                    raise
                except Exception as exc:  # the embedder's own failure, whatever it is
                    raise EmbeddingError(
                        f"embedder {embedder!r} failed: {type(exc).__name__}: {exc}"
                    ) from exc
                return pack_vectors(vectors, dims, count=len(chunk))

        packed = await gather_or_cancel(one(c) for c in chunks)
        return [v for chunk in packed for v in chunk]

    async def _add(
        self,
        texts: list[str],
        collection: str,
        metas: list[str],
        *,
        session_id: str | None,
        workflow_id: str | None,
        ttl: timedelta | None,
        expires_at: datetime | None,
        single: bool,
        batch_size: int | None,
    ) -> list[MemoryEntry]:
        _, sql, dims = self._require()
        collection = inp.check_collection(collection)
        session_id = inp.check_link(session_id, "session_id")
        workflow_id = inp.check_link(workflow_id, "workflow_id")
        expiry = inp.expiry(ttl, expires_at)
        if not texts:
            return []
        hashes = [inp.content_hash(t) for t in texts]
        first: dict[bytes, int] = {}
        for i, h in enumerate(hashes):
            first.setdefault(h, i)
        by_hash: dict[bytes, MemoryEntry] = {}
        # Reads only: nothing is written until every new text's vector is in hand.
        async with self._connect(read_only=True) as conn:
            cid = await conn.fetchval(sql.collection_id, collection)
            rows = [] if cid is None else await conn.fetch(sql.existing_by_hash, cid, list(first))
        expired: dict[bytes, Any] = {}
        for r in rows:
            h = bytes(r["content_hash"])
            if r["expired"]:
                expired[h] = r["id"]
            else:
                by_hash[h] = entry_from_row(r, collection)
        missing = [h for h in first if h not in by_hash and h not in expired]
        # An embedding failure or a bad vector raises here, before anything is written.
        vectors = await self._embed_packed([texts[first[h]] for h in missing], dims)
        size = batch_size or self.batch_size
        units = plan_units(texts, metas, first, missing, vectors, expired, size)
        shared = Shared(sql, collection, self.embedder.model, session_id, workflow_id, expiry)
        stored, failures = await write_units(
            self._connect, shared, cid, units, self.write_concurrency
        )
        by_hash.update(stored)
        if failures:
            n = min(failures)
            exc = failures[n]
            if single:
                raise self._translate(exc) from exc
            committed = [by_hash[h] for h in hashes if h in by_hash]
            positions = units[n].positions
            raise BatchWriteError(
                f"add_many batch {n} of {len(units)} (input texts {positions[0]}.."
                f"{positions[-1]}) failed: {type(exc).__name__}: {exc}; "
                f"{len(committed)} of {len(texts)} input texts are stored",
                batch=n,
                committed=len(committed),
                entries=list(committed),
            ) from exc
        lost = [h for h in hashes if h not in by_hash]
        if lost:  # an expired entry was purged between the read and the renewal
            raise MemoryStoreError(
                f"input text {first[lost[0]]} was deleted while it was being renewed: "
                "call again to store it anew"
            )
        return [by_hash[h] for h in hashes]

    @staticmethod
    def _translate(exc: BaseException) -> BaseException:
        if isinstance(exc, MemoryStoreError):
            return exc
        if isinstance(exc, asyncpg.ForeignKeyViolationError):
            return CollectionNotFoundError("the collection was deleted while writing to it")
        return MemoryStoreError(f"writing the entry failed: {type(exc).__name__}: {exc}")

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
        _, sql, dims = self._require()
        eid = inp.to_uuid(entry_id)
        if text is not None:
            inp.check_text(text)
        meta = None if metadata is None else inp.metadata_json(metadata)
        async with self._connect(read_only=True) as conn:
            current = await conn.fetchrow(sql.get, eid)
        if current is None:
            raise EntryNotFoundError(f"entry {eid} does not exist (or has expired)")
        new_hash: bytes | None = None
        vector: Any = None
        if text is not None and text != current["content"]:
            new_hash = inp.content_hash(text)
            # Embedded with no connection held and no lock taken: nothing waits on the network.
            vector = (await self._embed_packed([text], dims))[0]
        args = (eid, text if new_hash else None, new_hash, vector, self.embedder.model, meta)
        async with self._connect() as conn:
            try:
                # A transaction: cancelled, the update is rolled back or its COMMIT awaited.
                row = await in_transaction(conn, lambda: conn.fetchrow(sql.update, *args))
            except asyncpg.UniqueViolationError:
                other = await conn.fetchval(sql.find_by_hash, eid, new_hash)
                raise InvalidInputError(
                    f"collection {current['collection']!r} already stores this text "
                    f"as entry {other}"
                ) from None
        if row is None:
            raise EntryNotFoundError(f"entry {eid} does not exist (or has expired)")
        return entry_from_row(row, current["collection"])

    async def get(self, entry_id: uuid.UUID | str) -> MemoryEntry | None:
        """The entry with this id, or None when there is none or it has expired."""
        _, sql, _ = self._require()
        eid = inp.to_uuid(entry_id)
        async with self._connect(read_only=True) as conn:
            row = await conn.fetchrow(sql.get, eid)
        return None if row is None else entry_from_row(row, row["collection"])

    async def delete(self, entry_id_or_ids: uuid.UUID | str | Sequence[uuid.UUID | str]) -> int:
        """Delete one entry or several; returns how many existed (their access log goes too)."""
        _, sql, _ = self._require()
        ids = inp.to_uuids(entry_id_or_ids)
        if not ids:
            return 0
        async with self._connect() as conn:
            return int(await conn.fetchval(sql.delete, ids))

    async def purge_expired(self, collection: str | None = None) -> int:
        """Delete expired entries (of one collection, or all) in SQL; returns how many."""
        _, sql, _ = self._require()
        async with self._connect() as conn:
            if collection is None:
                return int(await conn.fetchval(sql.purge_all))
            return int(await conn.fetchval(sql.purge_collection, inp.check_collection(collection)))

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
        ef_search: int | None = None,
        exact: bool = False,
        log: bool | None = None,
    ) -> list[SearchHit]:
        """The ``k`` entries most similar to ``query`` (cosine), best first.

        ``filter`` is a metadata filter (see docs/memory.md), ``session_id`` keeps entries of one
        session, ``min_similarity`` drops weaker hits. The HNSW index serves the search (with
        pgvector's iterative scans when filtered, so k matches come back when k exist); when it
        still comes back short, the search is re-run exactly. ``exact=True`` skips the index.
        ``ef_search`` overrides the store's for this call; ``log`` the store's ``access_log``.
        """
        inp.check_text(query, what="query")
        # Validate everything (filter included) before paying for an embedding call.
        request = self._prepare_search(
            collection, k, filter, min_similarity, session_id, ef_search, exact, log
        )
        vector = (await self._embed_packed([query], self._require()[2]))[0]
        return await self._search(request, vector, query)

    async def search_by_vector(
        self,
        vector: Sequence[float],
        collection: str = "default",
        k: int = 10,
        filter: Mapping[str, Any] | None = None,
        min_similarity: float | None = None,
        session_id: str | None = None,
        *,
        ef_search: int | None = None,
        exact: bool = False,
        log: bool | None = None,
    ) -> list[SearchHit]:
        """Like :meth:`search` with a precomputed query vector (the log stores its hash only)."""
        packed = pack_vector(vector, self._require()[2], what="query vector")
        request = self._prepare_search(
            collection, k, filter, min_similarity, session_id, ef_search, exact, log
        )
        return await self._search(request, packed, None)

    def _prepare_search(
        self,
        collection: str,
        k: int,
        filter: Mapping[str, Any] | None,
        min_similarity: float | None,
        session_id: str | None,
        ef_search: int | None,
        exact: bool,
        log: bool | None,
    ) -> _SearchRequest:
        """Validate a search's arguments and compile its filter (raises before any work)."""
        _, sql, _ = self._require()
        logging_on = self.access_log if log is None else bool(log)
        collection = inp.check_collection(collection)
        k = inp.check_int(k, "k", 1, inp.MAX_K)
        ef = self.ef_search if ef_search is None else ef_search
        ef = inp.check_int(ef, "ef_search", 1, inp.MAX_EF_SEARCH)
        session_id = inp.check_link(session_id, "session_id")
        threshold = inp.check_similarity(min_similarity)
        params = Params(start=search_param_start(logging_on))
        where = [compile_filter(filter, params)]
        if session_id is not None:
            where.append(f"e.session_id = {params.add(session_id)}")
        filtered = filter is not None or session_id is not None
        return _SearchRequest(
            sql,
            " AND ".join(where),
            params.values,
            collection,
            k,
            ef,
            filtered,
            threshold,
            session_id,
            bool(exact),
            logging_on,
        )

    async def _search(
        self, request: _SearchRequest, vector: Any, query: str | None
    ) -> list[SearchHit]:
        logged = None
        if request.log:
            logged = _LogContext(request.session_id, query, vector, self.log_query_text)
        async with self._connect(read_only=logged is None) as conn:
            rows = await self._search_rows(conn, request, vector, logged)
        return hits_from_rows(rows, request.collection, request.threshold)

    async def _search_rows(
        self, conn: _Conn, request: _SearchRequest, vector: Any, logged: _LogContext | None
    ) -> list[Any]:
        """The index search, re-run exactly when it found fewer than ``k`` rows."""
        if not request.exact:
            rows = await self._run_search(conn, request, vector, False, logged)
            if len(rows) >= request.k:
                return rows
            # The index came back short (a filter too selective for the scan's limits, or a
            # small collection): the exact scan says how many matches really exist.
        return await self._run_search(conn, request, vector, True, logged)

    async def _run_search(
        self,
        conn: _Conn,
        request: _SearchRequest,
        vector: Any,
        exact: bool,
        logged: _LogContext | None,
    ) -> list[Any]:
        """One search: a single statement that carries its own settings (see ``_search``)."""
        text, args = self._statement(request, vector, exact, logged)
        rows = await conn.fetch(text, *args)
        # Relaxed-order iterative scans return rows nearly, not strictly, by distance.
        return sorted(rows, key=distance_then_id)

    def _statement(
        self, request: _SearchRequest, vector: Any, exact: bool, logged: _LogContext | None
    ) -> tuple[str, list[Any]]:
        """The search statement and its parameters (see ``Statements.search`` for their order)."""
        settings = choose_settings(
            exact=exact,
            ef_search=request.ef,
            k=request.k,
            filtered=request.filtered,
            iterative=self._iterative,
            log=logged is not None,
        )
        args: list[Any] = [vector, request.collection, str(settings.ef_search)]
        if logged is not None:
            # An exact result is final; an index result only when it is not short.
            args += [request.threshold, logged.session_id, logged.query_hash, logged.query, exact]
        return request.sql.search(request.where, settings, request.k), [*args, *request.extra]

    async def explain_search(
        self,
        query: str | Sequence[float],
        collection: str = "default",
        k: int = 10,
        filter: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        *,
        ef_search: int | None = None,
        exact: bool = False,
        analyze: bool = False,
    ) -> str:
        """The PostgreSQL plan of a search, run with the same SQL and settings as :meth:`search`.

        For checking that the HNSW index serves your searches (look for
        ``memory_entries_embedding_hnsw_idx``); ``analyze=True`` runs it and adds timings.
        """
        _, _, dims = self._require()
        if isinstance(query, str):
            inp.check_text(query, what="query")
        request = self._prepare_search(
            collection, k, filter, None, session_id, ef_search, exact, log=False
        )
        if isinstance(query, str):
            vector = (await self._embed_packed([query], dims))[0]
        else:
            vector = pack_vector(query, dims, what="query vector")
        text, args = self._statement(request, vector, exact, None)
        explain = "EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN "
        async with self._connect(read_only=True) as conn:
            rows = await conn.fetch(explain + text, *args)
        # The query vector is inlined in the plan as a 1536-number literal: abbreviate it.
        return _LONG_VECTOR.sub("'[...]'", "\n".join(r[0] for r in rows))

    # -- access log -------------------------------------------------------------------------
    async def most_accessed(
        self, collection: str = "default", *, since: datetime | None = None, limit: int = 10
    ) -> list[AccessStat]:
        """The live entries of ``collection`` searches returned most often (since ``since``)."""
        _, sql, _ = self._require()
        collection = inp.check_collection(collection)
        if since is not None:
            since = inp.check_aware(since, "since")
        limit = inp.check_int(limit, "limit", 1, 100_000)
        async with self._connect(read_only=True) as conn:
            rows = await conn.fetch(sql.most_accessed, collection, since, limit)
        return [
            AccessStat(
                entry=entry_from_row(r, collection),
                access_count=r["access_count"],
                last_accessed_at=r["last_accessed_at"],
                mean_similarity=r["mean_similarity"],
            )
            for r in rows
        ]

    async def access_records(
        self,
        *,
        entry_id: uuid.UUID | str | None = None,
        collection: str | None = None,
        session_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AccessLogRecord]:
        """Raw access-log rows, newest first, optionally for one entry, collection or session."""
        _, sql, _ = self._require()
        eid = None if entry_id is None else inp.to_uuid(entry_id)
        if collection is not None:
            collection = inp.check_collection(collection)
        session_id = inp.check_link(session_id, "session_id")
        if since is not None:
            since = inp.check_aware(since, "since")
        limit = inp.check_int(limit, "limit", 1, 100_000)
        async with self._connect(read_only=True) as conn:
            rows = await conn.fetch(sql.access_records, eid, collection, session_id, since, limit)
        return [
            AccessLogRecord(
                id=r["id"],
                entry_id=r["entry_id"],
                collection=r["collection"],
                session_id=r["session_id"],
                query=r["query"],
                query_hash=bytes(r["query_hash"]),
                similarity=r["similarity"],
                rank=r["rank"],
                accessed_at=r["accessed_at"],
            )
            for r in rows
        ]

    def __repr__(self) -> str:
        where = "borrowed pool" if not self._owns_pool else redact_dsn(self._dsn or "")
        return f"MemoryStore({where!r}, embedder={self._embedder!r}, schema={self._schema!r})"
