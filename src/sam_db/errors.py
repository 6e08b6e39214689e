"""Typed errors raised by sam_db.

Every error says what went wrong and what to do about it. None of them ever contains a password:
DSNs are redacted before they reach a message.
"""

from __future__ import annotations

__all__ = [
    "SamDbError",
    "ConfigurationError",
    "DatabaseConnectionError",
    "EmbeddedServerError",
    "ExtensionMissingError",
    "MigrationError",
    "MigrationFileError",
    "DuplicateMigrationError",
    "MigrationFailedError",
    "MigrationModifiedError",
    "UnknownMigrationError",
    "UnknownTargetError",
    "RollbackUnavailableError",
    "MigrationLockTimeoutError",
    "DDLLockTimeoutError",
    "InvalidIndexError",
    "MemoryStoreError",
    "InvalidInputError",
    "DimensionMismatchError",
    "EmbeddingError",
    "FilterError",
    "CollectionNotFoundError",
    "BatchWriteError",
]


class SamDbError(Exception):
    """Base class of every error sam_db raises on purpose."""


class ConfigurationError(SamDbError, ValueError):
    """An argument or setting is invalid (bad DSN shape, bad option value, missing extra)."""


class DatabaseConnectionError(SamDbError):
    """The database could not be reached or refused the login."""


class EmbeddedServerError(SamDbError):
    """The embedded PostgreSQL server (the CLI's default) could not be set up or started."""


class ExtensionMissingError(SamDbError):
    """A PostgreSQL extension a migration needs (pgvector) is not installed on the server."""

    def __init__(self, message: str, *, extension: str) -> None:
        super().__init__(message)
        self.extension = extension


class MigrationError(SamDbError):
    """Base class of errors about migration files or their application."""


class MigrationFileError(MigrationError):
    """A migration file or folder cannot be used (bad name, unreadable, missing folder)."""


class DuplicateMigrationError(MigrationFileError):
    """Two migration files share one version number."""


class MigrationFailedError(MigrationError):
    """A migration's SQL failed; its transaction was rolled back.

    ``file`` is the migration file, ``statement`` the failing statement's text (when it could be
    located), ``line`` its 1-based line in the file and ``sqlstate`` PostgreSQL's error code.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str,
        statement: str | None = None,
        line: int | None = None,
        sqlstate: str | None = None,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.statement = statement
        self.line = line
        self.sqlstate = sqlstate


class MigrationModifiedError(MigrationError):
    """An applied migration's file has changed since it was applied (drift)."""

    def __init__(self, message: str, *, files: list[str]) -> None:
        super().__init__(message)
        self.files = files


class UnknownMigrationError(MigrationError):
    """The database has applied versions this code has no file for (raised only when strict)."""

    def __init__(self, message: str, *, versions: list[str]) -> None:
        super().__init__(message)
        self.versions = versions


class UnknownTargetError(MigrationError, ValueError):
    """A ``target`` version names no known migration."""


class RollbackUnavailableError(MigrationError):
    """A migration to roll back has no ``.rollback.sql`` file (or no file at all)."""


class MigrationLockTimeoutError(MigrationError):
    """Another process held the migration lock for longer than ``lock_wait`` allowed."""


class DDLLockTimeoutError(MigrationFailedError):
    """A migration kept waiting for a table lock past ``lock_timeout`` after every retry."""


class InvalidIndexError(MigrationFailedError):
    """A non-transactional migration failed and left an INVALID index behind."""

    def __init__(self, message: str, *, file: str, indexes: list[str], **kw: object) -> None:
        super().__init__(message, file=file, **kw)  # type: ignore[arg-type]
        self.indexes = indexes


class MemoryStoreError(SamDbError):
    """Base class of errors raised by :class:`sam_db.MemoryStore`."""


class InvalidInputError(MemoryStoreError, ValueError):
    """Text or a vector cannot be stored: empty, contains NUL, not finite, wrong type."""


class DimensionMismatchError(MemoryStoreError, ValueError):
    """The embedder's vector size does not match the ``embedding`` column (or a returned vector)."""

    def __init__(self, message: str, *, expected: int, actual: int) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class EmbeddingError(MemoryStoreError):
    """The embedding provider failed after all retries, or rejected an input."""


class FilterError(MemoryStoreError, ValueError):
    """A metadata filter is malformed (unknown operator, bad key, wrong value type)."""


class CollectionNotFoundError(MemoryStoreError, LookupError):
    """A collection named in a call does not exist."""


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


class EntryNotFoundError(MemoryStoreError, LookupError):
    """A memory entry named in a call (``update``) does not exist or has expired."""


__all__ += ["EntryNotFoundError"]


class ConnectionLostError(DatabaseConnectionError, MemoryStoreError):
    """A store's connection to PostgreSQL was dropped, or no new connection could be made.

    ``maybe_applied`` is True only when a statement that writes was running as the connection
    went away: it may or may not have been committed. Otherwise nothing of the call was written
    (reads, and statements that were never sent, are first retried once on a new connection).
    """

    def __init__(self, message: str, *, maybe_applied: bool) -> None:
        super().__init__(message)
        self.maybe_applied = maybe_applied


__all__ += ["ConnectionLostError"]


class ServerNotReadyError(DatabaseConnectionError):
    """The server did not accept a connection within the wait given (``wait=``, ``sam-db wait``).

    Its message ends with the last attempt's error (redacted).
    """


__all__ += ["ServerNotReadyError"]
