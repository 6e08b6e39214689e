"""The store's housekeeping: collections, entries by id and by filter, expiry and the access log.

Everything ``MemoryStore`` does besides its lifecycle, writing and searching, kept here so the
façade in ``_store`` stays short. ``MemoryStore`` inherits these methods (they are part of its
public API and documented with it); each checks the store is open and hands over to the module
of its behaviour (``_collections``, ``_entries``, ``_keys``, ``_selection``, ``_access_log``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from ..errors import MemoryStoreError
from . import _access_log, _collections, _entries, _keys, _selection
from ._checked import CheckedConnection
from ._connections import Connections
from ._log_buffer import LogBuffer
from ._models import AccessLogRecord, AccessStat, Collection, MemoryEntry
from ._schema import StoreSchema


class _Maintenance:
    """``MemoryStore``'s collections, entry, filter-wide and access-log methods.

    Not used alone: ``MemoryStore``'s lifecycle sets the state declared below, which
    ``_opened()`` and ``_connect()`` (used by the store's other methods too) read.
    """

    # The state MemoryStore's __init__/open()/close() keep: what open() found (None when
    # closed), the pool, where connections come from, and the access-log buffer.
    _found: StoreSchema | None
    _pool: asyncpg.Pool[Any] | None
    _connections: Connections | None
    _log_buffer: LogBuffer | None
    access_log_mode: str

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
