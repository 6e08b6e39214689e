"""Waiting for a server that starts late: ``sam-db wait``, ``migrate --wait`` and ``migrate(wait=)``.

The late server is the real test server behind a TCP relay that starts listening only after a
delay, in a thread of its own, so that a ``sam-db`` process started before it meets a refused
port first, as a replica started beside its database does.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from urllib.parse import parse_qs, urlsplit

import pytest

from sam_db import migrate
from sam_db._sources import discover
from sam_db.errors import ConfigurationError, DatabaseConnectionError, ServerNotReadyError

LATE = 1.5  # seconds before the relay starts listening


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _relay_dsn(dsn: str, port: int, password: str = "") -> str:
    parts = urlsplit(dsn)
    user = parts.username or "postgres"
    secret = f":{password}" if password else ""
    return f"postgresql://{user}{secret}@127.0.0.1:{port}{parts.path}?sslmode=disable"


async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    with suppress(ConnectionError):
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    dst.close()


@contextmanager
def late_server(dsn: str, delay: float = LATE) -> Iterator[int]:
    """A TCP port that forwards to ``dsn``'s server once ``delay`` seconds have passed."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "localhost"])[0]
    upstream_port = int(query.get("port", [parts.port or 5432])[0])
    port = _free_port()
    stop = threading.Event()

    async def serve(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if host.startswith("/"):
            server_r, server_w = await asyncio.open_unix_connection(
                f"{host}/.s.PGSQL.{upstream_port}"
            )
        else:
            server_r, server_w = await asyncio.open_connection(host, upstream_port)
        await asyncio.gather(_pump(client_r, server_w), _pump(server_r, client_w))

    async def main() -> None:
        if await asyncio.to_thread(stop.wait, delay):  # the test ended before the server was up
            return
        server = await asyncio.start_server(serve, "127.0.0.1", port)
        async with server:
            await asyncio.to_thread(stop.wait)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(10)


def _sam_db(*argv: str, timeout: float = 60) -> tuple[int, str, str, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SAM_DB_TEST_DSN")}
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "sam_db", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start


def test_wait_returns_once_a_late_server_accepts_connections(db_dsn: str) -> None:
    with late_server(db_dsn) as port:
        code, out, err, took = _sam_db("wait", "--dsn", _relay_dsn(db_dsn, port), "--timeout", "30")
    assert code == 0, err
    assert "ready:" in out and f"127.0.0.1:{port}" in out
    assert took >= LATE  # it did meet the closed port first, and waited


def test_wait_times_out_with_the_last_error_redacted() -> None:
    dsn = f"postgresql://app:s3cret-pw@127.0.0.1:{_free_port()}/db"
    code, out, err, _ = _sam_db("wait", "--dsn", dsn, "--timeout", "1")
    assert code == 1 and out == ""
    assert "did not accept a connection within 1 s" in err
    assert "Connect call failed" in err or "refused" in err.lower()  # the last error, quoted
    assert "s3cret-pw" not in err and "app:***@127.0.0.1" in err
    assert "Traceback" not in err


def test_wait_stops_at_once_when_the_server_refuses_the_database(db_dsn: str) -> None:
    missing = db_dsn.replace(urlsplit(db_dsn).path, "/no_such_database_here")
    # Well within the 300 s it was given (subprocess.run's own timeout fails the test otherwise).
    code, _, err, _ = _sam_db("wait", "--dsn", missing, "--timeout", "300", timeout=120)
    assert code == 1 and "does not exist" in err
    assert "did not accept" not in err  # not a time-out: the server answered


def test_migrate_wait_applies_once_the_server_is_up(db_dsn: str) -> None:
    with late_server(db_dsn) as port:
        relay = _relay_dsn(db_dsn, port)
        code, out, err, took = _sam_db("migrate", "--dsn", relay, "--wait", "30")
    assert code == 0, err
    assert "applied 004_memory_system.sql" in out
    assert took >= LATE


def test_migrate_without_wait_fails_on_a_server_not_up_yet(db_dsn: str) -> None:
    with late_server(db_dsn, delay=30) as port:
        code, _, err, _ = _sam_db("migrate", "--dsn", _relay_dsn(db_dsn, port))
    assert code == 1 and "cannot reach PostgreSQL" in err


async def test_migrate_api_waits_for_a_late_server(db_dsn: str) -> None:
    with late_server(db_dsn) as port:
        done = await migrate(_relay_dsn(db_dsn, port), wait=30)
    assert [m.version for m in done] == [m.version for m in discover()]  # every bundled one


async def test_migrate_api_wait_runs_out_with_a_typed_error() -> None:
    dsn = f"postgresql://app:s3cret-pw@127.0.0.1:{_free_port()}/db"
    with pytest.raises(ServerNotReadyError) as caught:
        await migrate(dsn, wait=0.5)
    assert isinstance(caught.value, DatabaseConnectionError)
    assert "within 0.5 s" in str(caught.value) and "s3cret-pw" not in str(caught.value)
    assert caught.value.__context__ is None and caught.value.__cause__ is None


@pytest.mark.parametrize("wait", [-1, float("nan"), "10", True])
async def test_migrate_api_rejects_a_wait_that_is_no_number_of_seconds(wait: object) -> None:
    with pytest.raises(ConfigurationError, match="wait must be a number of seconds"):
        await migrate("postgresql://u@127.0.0.1:1/db", wait=wait)  # type: ignore[arg-type]
