"""Errors raised by the memory store."""

from __future__ import annotations

from collections.abc import Sequence

from ._base import DatabaseConnectionError, SamDbError


class MemoryStoreError(SamDbError):
    """Base class of errors raised by :class:`sam_db.MemoryStore`."""

    @classmethod
    def not_open(cls) -> MemoryStoreError:
        return cls("the store is not open: use `async with store:`")

    @classmethod
    def tables_missing(cls, where: str) -> MemoryStoreError:
        """No ``memory_entries`` table in ``where`` (a schema, or "the search_path")."""
        return cls(
            f"table memory_entries not found in {where}: apply sam_db's migrations first "
            "(await sam_db.migrate(dsn))"
        )

    @classmethod
    def not_made_by_sam_db(cls, function: str) -> MemoryStoreError:
        """``memory_entries`` exists, but not the search ``function`` migration 004 creates."""
        return cls(
            f"function {function}() is missing: memory_entries was not created "
            "by sam_db's 004_memory_system.sql; roll 004 back and migrate again"
        )

    @classmethod
    def deleted_while_renewing(cls, position: int) -> MemoryStoreError:
        """Input text ``position``'s expired entry was purged while the call renewed it."""
        return cls(
            f"input text {position} was deleted while it was being renewed: "
            "call again to store it anew"
        )


class InvalidInputError(MemoryStoreError, ValueError):
    """Text or a vector cannot be stored: empty, contains NUL, not finite, wrong type."""


class DimensionMismatchError(MemoryStoreError, ValueError):
    """The embedder's vector size does not match the ``embedding`` column (or a returned vector)."""

    def __init__(self, message: str, *, expected: int, actual: int) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual

    @classmethod
    def embedder_vs_column(
        cls, embedder: object, dims: int, column: int, kind: str = "vector"
    ) -> DimensionMismatchError:
        """``embedder`` makes ``dims``-dimensional vectors; the column is ``kind(column)``."""
        half = " --half" if kind == "halfvec" or dims > 2000 else ""
        return cls(
            f"embedder {embedder!r} makes {dims}-dimensional vectors but "
            f"memory_entries.embedding is {kind}({column}): use an embedder with "
            f"dimensions={column}, or write a migration to {dims} dimensions with "
            f"`sam-db new --memory-dimensions {dims}{half}` (entries of {column} dimensions "
            "must be embedded again: docs/memory.md, 'Embedding size')",
            expected=column,
            actual=dims,
        )


class EmbeddingError(MemoryStoreError):
    """The embedding provider failed after all retries, or rejected an input."""


class FilterError(MemoryStoreError, ValueError):
    """A metadata filter is malformed (unknown operator, bad key, wrong value type)."""


class CollectionNotFoundError(MemoryStoreError, LookupError):
    """A collection named in a call does not exist."""

    @classmethod
    def named(cls, name: str) -> CollectionNotFoundError:
        return cls(f"collection {name!r} does not exist")

    @classmethod
    def deleted_while_writing(cls) -> CollectionNotFoundError:
        return cls("the collection was deleted while writing to it")


class EntryNotFoundError(MemoryStoreError, LookupError):
    """A memory entry named in a call (``update``) does not exist or has expired."""

    @classmethod
    def named(cls, entry_id: object) -> EntryNotFoundError:
        return cls(f"entry {entry_id} does not exist (or has expired)")


class BatchWriteError(MemoryStoreError):
    """A batch of ``add_many`` failed; earlier batches stay committed.

    ``batch`` is the 0-based index of the failed batch, ``committed`` how many entries were
    written by earlier batches (they are in ``entries``, in input order).
    """

    def __init__(self, message: str, *, batch: int, committed: int, entries: list[object]) -> None:
        super().__init__(message)
        self.batch = batch
        self.committed = committed
        self.entries = entries

    @classmethod
    def failed(
        cls,
        batch: int,
        batches: int,
        texts: tuple[int, int],
        cause: BaseException,
        entries: Sequence[object],
        total: int,
    ) -> BatchWriteError:
        """Batch ``batch`` of ``batches`` (input texts ``texts[0]..texts[1]``) failed with
        ``cause``; ``entries`` were stored by earlier batches, out of ``total`` input texts."""
        return cls(
            f"add_many batch {batch} of {batches} (input texts {texts[0]}..{texts[1]}) failed: "
            f"{type(cause).__name__}: {cause}; {len(entries)} of {total} input texts are stored",
            batch=batch,
            committed=len(entries),
            entries=list(entries),
        )


class ConnectionLostError(DatabaseConnectionError, MemoryStoreError):
    """A store's connection to PostgreSQL was dropped, or no new connection could be made.

    ``maybe_applied`` is True only when a statement that writes was running as the connection
    went away: it may or may not have been committed. Otherwise nothing of the call was written
    (reads, and statements that were never sent, are first retried once on a new connection).
    In the constructors, ``cause`` is the driver's error (redacted) and ``committed`` whether
    statements of the same call completed before.
    """

    def __init__(self, message: str, *, maybe_applied: bool) -> None:
        super().__init__(message)
        self.maybe_applied = maybe_applied

    @staticmethod
    def _before(committed: bool) -> str:
        return "; statements before it were committed" if committed else ""

    @classmethod
    def cannot_connect(cls, server: str, cause: str, committed: bool) -> ConnectionLostError:
        return cls(
            f"cannot connect to PostgreSQL at {server} ({cause}): nothing of this statement was "
            f"sent{cls._before(committed)}. The server may be down or restarting; the store "
            "reconnects by itself, so repeat the call once it is reachable",
            maybe_applied=committed,
        )

    @classmethod
    def ended_in_a_row(cls, count: int, cause: str, committed: bool) -> ConnectionLostError:
        return cls(
            f"PostgreSQL ended {count} connections in a row before a statement could be "
            f"sent on them ({cause}): nothing of it was sent{cls._before(committed)}. The server "
            "may be shutting down: repeat the call later",
            maybe_applied=committed,
        )

    @classmethod
    def lost_reading(cls, cause: str) -> ConnectionLostError:
        return cls(
            f"the connection to PostgreSQL was lost twice while reading ({cause}); "
            "nothing was written. The server may be restarting: repeat the call later",
            maybe_applied=False,
        )

    @classmethod
    def lost_writing(cls, cause: str) -> ConnectionLostError:
        return cls(
            f"the connection to PostgreSQL was lost while a statement that writes was running "
            f"({cause}); it may or may not have been committed. Check (get, search) before "
            "repeating the call, or repeat it if that is harmless (add and add_many store a text "
            "once per collection); the store has replaced the connection",
            maybe_applied=True,
        )

    @classmethod
    def lost_in_transaction(cls, cause: str | None, committed: bool) -> ConnectionLostError:
        said = "" if cause is None else f" ({cause})"
        return cls(
            f"the connection to PostgreSQL was lost inside a transaction{said}; PostgreSQL "
            f"rolled the transaction back{cls._before(committed)}: repeat the call",
            maybe_applied=committed,
        )

    @classmethod
    def lost_committing(cls, cause: str) -> ConnectionLostError:
        return cls(
            f"the connection to PostgreSQL was lost while committing ({cause}); the "
            "transaction may or may not have been committed: check before repeating the call",
            maybe_applied=True,
        )
