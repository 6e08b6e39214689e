"""Driver errors (asyncpg, OSError, timeouts) translated into :mod:`sam_db.errors`, in one place.

Connecting (the engine, the CLI, ``sam-db wait``, a MemoryStore's own pool), a store's connections
being dropped, a store's writes failing and a missing extension are all recognised here; the
error classes word what to do. Nothing returned here holds a DSN's password: callers raise the
result OUTSIDE their ``except`` block, because ``raise ... from None`` only hides ``__context__``,
which still holds the driver's error and, in it, the DSN or a fragment of its password.
"""

from __future__ import annotations

import asyncio
import re

import asyncpg

from ._redact import redact, redact_dsn, secrets_of
from .errors import (
    CollectionNotFoundError,
    ConfigurationError,
    DatabaseConnectionError,
    MemoryStoreError,
    SamDbError,
)

#: Errors that end a session: the connection is gone even when asyncpg has not yet seen its
#: socket close. Not all of class 08: a protocol violation (08P01) can leave the connection
#: usable. (Names looked up so that an older asyncpg lacking one still works.)
SESSION_ENDED: tuple[type[BaseException], ...] = tuple(
    getattr(asyncpg, name)
    for name in (
        "ConnectionDoesNotExistError",  # asyncpg: "closed in the middle of operation"
        "AdminShutdownError",
        "CrashShutdownError",
        "CannotConnectNowError",
        "IdleSessionTimeoutError",
        "IdleInTransactionSessionTimeoutError",
    )
    if hasattr(asyncpg, name)
)

#: What getting a connection raises when the server is down, restarting, full or unreachable.
CONNECT_FAILED: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


def connect_error(exc: Exception, dsn: str) -> SamDbError:
    """The typed error for a failure to connect to ``dsn``; no secret of ``dsn`` is in its text."""
    if isinstance(exc, SamDbError):  # already typed (raised by a pool's ``init`` callback)
        return exc
    shown = redact_dsn(dsn)
    said = redact(str(exc), secrets_of(dsn)) or type(exc).__name__
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return DatabaseConnectionError.login_refused(shown, exc.__class__.__name__)
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return DatabaseConnectionError.no_database(shown, said)
    if isinstance(exc, asyncpg.PostgresError):
        return DatabaseConnectionError.refused(shown, said)
    if isinstance(exc, (OSError, asyncio.TimeoutError)):
        return DatabaseConnectionError.unreachable(shown, said)
    if isinstance(exc, (ValueError, TypeError, OverflowError, asyncpg.ClientConfigurationError)):
        # Malformed DSNs: a bad port (ValueError, or OverflowError when out of range), a broken
        # IPv6 host, an unknown scheme or option. Their text may quote a piece of the DSN.
        return ConfigurationError.invalid_dsn(shown, said)
    return DatabaseConnectionError.failed(shown, type(exc).__name__, said)


def write_error(exc: BaseException) -> BaseException:
    """What a store's write raises when its statement failed with ``exc``."""
    if isinstance(exc, MemoryStoreError):
        return exc
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return CollectionNotFoundError.deleted_while_writing()
    return MemoryStoreError(f"writing the entry failed: {type(exc).__name__}: {exc}")


_EXTENSION = re.compile(r'extension "([^"]+)"')


def primary_message(exc: asyncpg.PostgresError) -> str:
    """The server's primary message only: ``str(exc)`` adds DETAIL and HINT lines of its own."""
    return str(getattr(exc, "message", None) or exc).rstrip(".")


def missing_extension(exc: BaseException) -> str | None:
    """The extension ``exc`` says the server does not have (``CREATE EXTENSION`` of one whose
    files are not installed), or None when ``exc`` is about something else.

    Callers raise :meth:`ExtensionMissingError.for_migration` (or ``for_store``) with it.
    """
    if not isinstance(exc, asyncpg.PostgresError) or exc.sqlstate not in ("0A000", "58P01"):
        return None
    message = primary_message(exc)
    found = _EXTENSION.search(message)
    if found is None:
        return None
    detail = str(getattr(exc, "detail", "") or "")
    if "control file" not in message + detail and "not available" not in message:
        return None
    return found.group(1)
