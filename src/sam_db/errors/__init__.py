"""Typed errors raised by sam_db.

Every error says what went wrong and what to do about it; the "what to do" is worded here, in the
error's class (its named constructors), so that one kind of failure reads the same wherever it is
raised. None of them ever contains a password: DSNs are redacted before they reach a message.

The hierarchy:

* SamDbError
  x ConfigurationError (also a ValueError)
  x DatabaseConnectionError
    + ServerNotReadyError
    + ConnectionLostError (also a MemoryStoreError)
  x EmbeddedServerError
  x SchemaDumpError
  x ExtensionMissingError
  x MigrationError
    + MigrationFileError
      - DuplicateMigrationError
    + MigrationFailedError
      - DDLLockTimeoutError
      - InvalidIndexError
    + MigrationModifiedError
    + UnknownMigrationError
    + UnknownTargetError (also a ValueError)
    + RollbackUnavailableError
    + MigrationLockTimeoutError
  x MemoryStoreError
    + InvalidInputError (also a ValueError)
    + DimensionMismatchError (also a ValueError)
    + EmbeddingError
    + FilterError (also a ValueError)
    + CollectionNotFoundError (also a LookupError)
    + EntryNotFoundError (also a LookupError)
    + BatchWriteError

The classes live in private modules by area (``_base``: configuration, connections, the server;
``_migrations``; ``_memory``: the store); import them from here. Driver errors (asyncpg, OSError,
timeouts) become these in one place: ``sam_db._driver_errors``.
"""

from __future__ import annotations

from ._base import (
    ConfigurationError,
    DatabaseConnectionError,
    EmbeddedServerError,
    ExtensionMissingError,
    SamDbError,
    SchemaDumpError,
    ServerNotReadyError,
)
from ._memory import (
    BatchWriteError,
    CollectionNotFoundError,
    ConnectionLostError,
    DimensionMismatchError,
    EmbeddingError,
    EntryNotFoundError,
    FilterError,
    InvalidInputError,
    MemoryStoreError,
)
from ._migrations import (
    DDLLockTimeoutError,
    DuplicateMigrationError,
    InvalidIndexError,
    MigrationError,
    MigrationFailedError,
    MigrationFileError,
    MigrationLockTimeoutError,
    MigrationModifiedError,
    RollbackUnavailableError,
    UnknownMigrationError,
    UnknownTargetError,
)

__all__ = [
    "BatchWriteError",
    "CollectionNotFoundError",
    "ConfigurationError",
    "ConnectionLostError",
    "DDLLockTimeoutError",
    "DatabaseConnectionError",
    "DimensionMismatchError",
    "DuplicateMigrationError",
    "EmbeddedServerError",
    "EmbeddingError",
    "EntryNotFoundError",
    "ExtensionMissingError",
    "FilterError",
    "InvalidIndexError",
    "InvalidInputError",
    "MemoryStoreError",
    "MigrationError",
    "MigrationFailedError",
    "MigrationFileError",
    "MigrationLockTimeoutError",
    "MigrationModifiedError",
    "RollbackUnavailableError",
    "SamDbError",
    "SchemaDumpError",
    "ServerNotReadyError",
    "UnknownMigrationError",
    "UnknownTargetError",
]


# Shown (tracebacks, repr of the class) and pickled under the public module, where users import them.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
