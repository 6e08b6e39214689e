"""Waiting for a PostgreSQL server to accept connections (``sam-db wait``, ``migrate(wait=S)``).

Replicas of a service often start beside their database: the first connection attempts meet a
refused port, a missing socket or a server that is still starting up. Those are retried until the
server accepts a connection. A server that answers but refuses the login, or has no such database,
is up: waiting would not change its answer, so that error is raised at once.
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg

from ._connect import application_name
from ._driver_errors import connect_error
from ._redact import redact, redact_dsn, secrets_of
from .errors import ConfigurationError, DatabaseConnectionError, ServerNotReadyError

log = logging.getLogger("sam_db")

#: The first pause between attempts, doubled after each failure up to ``MAX_INTERVAL`` seconds.
FIRST_INTERVAL = 0.1
MAX_INTERVAL = 1.0
#: Longest one connection attempt may take (a host that drops packets never refuses).
ATTEMPT_TIMEOUT = 5.0

# Answers from a running server that no amount of waiting changes.
_FINAL = (
    asyncpg.InvalidAuthorizationSpecificationError,  # bad password, no such role, pg_hba
    asyncpg.InvalidCatalogNameError,  # no such database
    asyncpg.InvalidPasswordError,
)


def _check_timeout(timeout: float) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
        raise ConfigurationError(
            f"the wait must be a number of seconds >= 0, got {timeout!r} (e.g. wait=30)"
        )
    return float(timeout)


async def wait_for_server(dsn: str, timeout: float) -> float:
    """Retry connecting to ``dsn`` until the server accepts, for at most ``timeout`` seconds.

    Returns the seconds waited. Raises :class:`~sam_db.errors.ServerNotReadyError` (the last
    error, redacted, in its message) when time runs out, or the connection error itself at once
    when the server answered with a refusal that waiting cannot change.
    """
    timeout = _check_timeout(timeout)
    if not isinstance(dsn, str) or not dsn.strip():
        raise ConfigurationError.empty_dsn()
    start = time.monotonic()
    deadline = start + timeout
    interval = FIRST_INTERVAL
    attempts = 0
    while True:
        attempts += 1
        remaining = deadline - time.monotonic()
        last = await _attempt(dsn, max(0.1, min(ATTEMPT_TIMEOUT, remaining)))
        if last is None:
            waited = time.monotonic() - start
            if attempts > 1:
                log.info("%s accepted a connection after %.1f s", redact_dsn(dsn), waited)
            return waited
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        if attempts == 1:
            log.info("waiting up to %g s for %s: %s", timeout, redact_dsn(dsn), last)
        await asyncio.sleep(min(interval, remaining))
        interval = min(interval * 2, MAX_INTERVAL)
    raise ServerNotReadyError.timed_out(redact_dsn(dsn), timeout, attempts, last)


async def _attempt(dsn: str, timeout: float) -> str | None:
    """Connect once: None when the server accepted, else why not (redacted).

    An error that waiting cannot change is raised here, typed as :func:`connect` raises it.
    """
    try:
        conn = await asyncpg.connect(
            dsn,
            timeout=timeout,
            statement_cache_size=0,
            server_settings={"application_name": application_name("wait")},
        )
    except Exception as caught:  # cancellation passes through
        exc = caught
        error = connect_error(exc, dsn)
        # A refusal from a running server, or a malformed DSN: no later attempt fares better.
        final = isinstance(exc, _FINAL) or not isinstance(error, DatabaseConnectionError)
    else:
        await conn.close()
        return None
    if final:
        raise error  # outside the except block: no __context__ holding the driver's error
    # The driver's words only: the message names the DSN once (the redaction of free text reads
    # a URL's userinfo up to the line's last '@').
    return redact(str(exc), secrets_of(dsn)) or type(exc).__name__


def wait_command(dsn: str, timeout: float) -> int:
    """``sam-db wait``: block until ``dsn``'s server accepts connections; the exit code."""
    waited = asyncio.run(wait_for_server(dsn, timeout))
    print(f"ready: {redact_dsn(dsn)} accepts connections (waited {waited:.1f} s)")
    return 0
