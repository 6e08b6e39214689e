"""The buffered access log: searches hand their hits to a bounded buffer in the store, and a
background task writes the buffer to ``memory_access_log`` with one COPY.

A search then pays for appending its rows to a Python list, not for writing them (the
synchronous mode, ``access_log_mode="sync"``, writes them in the search statement instead: see
``_search``). The buffer is written when the store closes, every ``flush_interval`` seconds, when
it is half full, and before the store reads the log (``most_accessed``, ``access_records``,
``purge_access_log``). What is still in the buffer when the process dies is lost: at most
``flush_interval`` seconds of searches, never more than ``capacity`` rows; the log is usage
analytics, entries are never at risk.

A full buffer drops the rows of the searches that do not fit, whole (they are counted in
``dropped`` and a warning is logged): a search never waits for the log. A failed write (server
down) puts its rows back in front of the buffer, as many as fit, for the next flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from ..errors import ConfigurationError
from ._models import SearchHit

logger = logging.getLogger("sam_db.memory")

Connect = Callable[..., Any]  # the store's connect(read_only=...)

# The columns a buffered row fills, in the order of its tuple; ``id`` is generated.
COLUMNS = (
    "entry_id",
    "collection_id",
    "session_id",
    "query_hash",
    "query",
    "similarity",
    "rank",
    "accessed_at",
)
MODES = ("buffered", "sync")  # the values of ``access_log_mode``
DEFAULT_CAPACITY = 10_000
DEFAULT_FLUSH_INTERVAL = 1.0


def check_mode(mode: object) -> str:
    """``access_log_mode``: ``"buffered"`` (the default) or ``"sync"``."""
    if not isinstance(mode, str) or mode not in MODES:
        raise ConfigurationError(
            f"access_log_mode must be 'buffered' (written in the background) or 'sync' "
            f"(written by each search), got {mode!r}"
        )
    return mode


def check_interval(value: object) -> float:
    """``access_log_flush_interval``: seconds, a positive number (at most a day)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 86400:
        raise ConfigurationError(
            f"access_log_flush_interval must be a number of seconds in (0, 86400], got {value!r}"
        )
    return float(value)


def log_rows(
    hits: Sequence[SearchHit],
    collection_id: int,
    session_id: str | None,
    query_hash: bytes,
    query: str | None,
    at: datetime,
) -> list[tuple[Any, ...]]:
    """The access-log rows of one search's hits (one per hit, with its rank and similarity);
    a search's hits are all of one collection."""
    return [
        (h.entry.id, collection_id, session_id, query_hash, query, h.similarity, h.rank, at)
        for h in hits
    ]


async def copy_rows(conn: Any, table: tuple[str, str], rows: Sequence[tuple[Any, ...]]) -> None:
    """Write access-log rows with one COPY; ``table`` is (schema, name), unquoted."""
    schema, name = table
    await conn.copy_records_to_table(name, schema_name=schema, columns=COLUMNS, records=rows)


class LogBuffer:
    """The store's buffer of access-log rows and the task that writes it (see the module)."""

    def __init__(
        self, connect: Connect, table: tuple[str, str], capacity: int, flush_interval: float
    ) -> None:
        self._connect = connect
        self._table = table
        self.capacity = capacity
        self.flush_interval = flush_interval
        self._rows: list[tuple[Any, ...]] = []
        self.dropped = 0  # rows lost to a full buffer or a failed final write
        self._full_warned = False
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._rows)

    def add(
        self,
        hits: Sequence[SearchHit],
        collection_id: int,
        session_id: str | None,
        query_hash: bytes,
        query: str | None,
    ) -> None:
        """Buffer one search's rows; never waits (a full buffer drops them, see the module)."""
        if not hits:
            return
        at = datetime.now(timezone.utc)
        rows = log_rows(hits, collection_id, session_id, query_hash, query, at)
        self._keep(rows, front=False)
        self._start()
        if len(self._rows) * 2 >= self.capacity and self._wake is not None:
            self._wake.set()

    def _keep(self, rows: list[tuple[Any, ...]], *, front: bool) -> None:
        """Add ``rows`` if they fit. A new search's rows are kept or dropped whole; rows put
        back after a failed write keep their newest part that fits. Drops are counted, and
        warned about once per filling."""
        room = max(0, self.capacity - len(self._rows))
        if len(rows) > room:
            kept = rows[len(rows) - room :] if front and room else []
            self.dropped += len(rows) - len(kept)
            rows = kept
            if not self._full_warned:
                self._full_warned = True
                logger.warning(
                    "access log buffer full (%d rows): dropping rows until it is written; "
                    "raise access_log_buffer or lower access_log_flush_interval",
                    self.capacity,
                )
        if front:
            self._rows[:0] = rows
        else:
            self._rows.extend(rows)

    def _start(self) -> None:
        if self._task is None and not self._closed:
            self._wake = asyncio.Event()
            self._lock = asyncio.Lock()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def flush(self) -> int:
        """Write every buffered row now (one COPY); returns how many.

        Raises what the write raised, with the rows put back (as many as fit).
        """
        if not self._rows:
            return 0
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            rows, self._rows = self._rows, []
            self._full_warned = False
            if not rows:
                return 0
            try:
                async with self._connect() as conn:
                    await copy_rows(conn, self._table, rows)
            except BaseException:
                self._keep(rows, front=True)
                raise
            return len(rows)

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._closed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:  # the next interval retries; searches never see it
                logger.warning("access log write failed, retrying later: %s", type(exc).__name__)

    async def close(self) -> None:
        """Stop the background task (letting a write under way finish) and write what is
        buffered; a failure is logged and its rows counted in ``dropped`` (close() goes on)."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            assert self._wake is not None
            self._wake.set()
            await task
        try:
            await self.flush()
        except Exception as exc:
            self.dropped += len(self._rows)
            self._rows = []
            logger.warning("access log rows lost at close: %s: %s", type(exc).__name__, exc)
