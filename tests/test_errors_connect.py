"""Wrong DSNs give typed, readable errors, and a password never reaches an error, a log or the CLI.

The wrong-password cases use a private embedded server whose ``pg_hba.conf`` asks one role for a
SCRAM password on the unix socket (the shared test server trusts every local login).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

import sam_db
from sam_db._embedded import embedded_dsn, start_embedded
from sam_db.errors import ConfigurationError, DatabaseConnectionError
from tests.helpers import execute, fetchval

PASSWORD = "hunter2x-swordfish9"
ROLE = "sam_db_pw_user"
# Passwords with URL delimiters in them, written into the DSN unencoded (as people do): neither the
# password nor any piece of it between delimiters may show up in an error.
AWKWARD_PASSWORDS = [
    "hunter2x",
    "hunter2x@swordfish9",
    "hunter2x/swordfish9",
    "hunter2x?swordfish9",
    "hunter2x#swordfish9",
    "hunter2x:swordfish9",
    "hunter2x swordfish9",
]
_DELIMITERS = "@/?#: "


def _pieces(password: str) -> list[str]:
    """The password and every run of it between URL delimiters."""
    pieces = [password]
    current = ""
    for ch in password:
        if ch in _DELIMITERS:
            pieces.append(current)
            current = ""
        else:
            current += ch
    pieces.append(current)
    return [p for p in pieces if p]


def _assert_no_secret(text: str, password: str = PASSWORD) -> None:
    for piece in _pieces(password):
        assert piece not in text, f"{piece!r} leaked into: {text}"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _with(
    dsn: str, *, database: str | None = None, password: str | None = None, user: str | None = None
) -> str:
    """``dsn`` (URL form, unix socket in ``?host=``) with another database, user or password."""
    parts = urlsplit(dsn)
    user = user if user is not None else (parts.username or "postgres")
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@" if password else f"{user}@"
    path = "/" + database if database is not None else parts.path
    return urlunsplit(parts._replace(netloc=netloc, path=path))


def _cli(*args: str, env_dsn: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if env_dsn is not None:
        env["DATABASE_URL"] = env_dsn
    return subprocess.run(
        [sys.executable, "-m", "sam_db", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture(scope="module")
def password_server() -> Iterator[str]:
    """Superuser DSN of a private embedded server that asks ``ROLE`` for its password."""
    root = Path(tempfile.mkdtemp(prefix="sam_db_pwserver_"))
    server = start_embedded(root / "data", cleanup="delete")
    try:
        admin = embedded_dsn(server)
        hba = Path(str(asyncio.run(fetchval(admin, "SHOW hba_file"))))
        hba.write_text(f"local all {ROLE} scram-sha-256\n" + hba.read_text())
        asyncio.run(
            execute(
                admin,
                f"CREATE ROLE {ROLE} LOGIN SUPERUSER PASSWORD '{PASSWORD}'",
                "SELECT pg_reload_conf()",
            )
        )
        yield admin
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def password_dsn(password_server: str) -> Iterator[str]:
    """A fresh database on the password server, reached as ``ROLE`` with the right password."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    asyncio.run(execute(password_server, f'CREATE DATABASE "{name}"'))
    try:
        yield _with(password_server, database=name, user=ROLE, password=PASSWORD)
    finally:
        asyncio.run(execute(password_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def wrong_password_dsn(password_dsn: str) -> str:
    return _with(password_dsn, user=ROLE, password="wrong-" + PASSWORD)


# --- unreachable server ----------------------------------------------------------------------


async def test_closed_port_raises_database_connection_error() -> None:
    with pytest.raises(DatabaseConnectionError, match="cannot reach PostgreSQL"):
        await sam_db.migrate(f"postgresql://u:{PASSWORD}@127.0.0.1:{_closed_port()}/db")


async def test_closed_port_error_names_host_and_port_without_the_password() -> None:
    port = _closed_port()
    with pytest.raises(DatabaseConnectionError) as info:
        await sam_db.status(f"postgresql://u:{PASSWORD}@127.0.0.1:{port}/db")
    assert f"127.0.0.1:{port}" in str(info.value)
    _assert_no_secret(str(info.value))


@pytest.mark.parametrize("password", AWKWARD_PASSWORDS)
async def test_awkward_password_never_appears_in_a_dsn_error(
    password: str,
) -> None:
    dsn = f"postgresql://u:{password}@127.0.0.1:{_closed_port()}/db"
    with pytest.raises((DatabaseConnectionError, ConfigurationError)) as info:
        await sam_db.migrate(dsn)
    _assert_no_secret(str(info.value), password)


async def test_missing_socket_directory_raises_database_connection_error(tmp_path: Path) -> None:
    with pytest.raises(DatabaseConnectionError, match="cannot reach PostgreSQL"):
        await sam_db.migrate(f"postgresql://postgres@/postgres?host={tmp_path / 'nowhere'}")


# --- wrong database --------------------------------------------------------------------------


async def test_missing_database_raises_database_connection_error(password_server: str) -> None:
    dsn = _with(password_server, database="sam_db_no_such_database", password=PASSWORD)
    with pytest.raises(DatabaseConnectionError) as info:
        await sam_db.migrate(dsn)
    message = str(info.value)
    assert "sam_db_no_such_database" in message
    assert "does not exist" in message
    _assert_no_secret(message)


# --- malformed DSN ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://u:{PASSWORD}@127.0.0.1:notaport/db",
        f"mysql://u:{PASSWORD}@127.0.0.1/db",
        f"postgresql://u:{PASSWORD}@127.0.0.1/db?sslmode=sometimes",
        f"postgresql://u:{PASSWORD}@[::1/db",
        "not a dsn at all",
    ],
    ids=["bad-port", "other-scheme", "bad-sslmode", "broken-ipv6", "no-scheme"],
)
async def test_malformed_dsn_raises_configuration_error(dsn: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        await sam_db.migrate(dsn)
    assert "postgresql://user:password@host:port/database" in str(info.value)
    _assert_no_secret(str(info.value))


@pytest.mark.parametrize("dsn", ["", "   "], ids=["empty", "blank"])
async def test_empty_dsn_raises_configuration_error(dsn: str) -> None:
    with pytest.raises(ConfigurationError, match="DSN is empty"):
        await sam_db.migrate(dsn)


async def test_key_value_dsn_error_never_contains_the_password() -> None:
    with pytest.raises((ConfigurationError, DatabaseConnectionError)) as info:
        await sam_db.migrate(f"host=127.0.0.1 port={_closed_port()} password={PASSWORD}")
    _assert_no_secret(str(info.value))


# --- wrong password --------------------------------------------------------------------------


async def test_right_password_migrates(password_dsn: str) -> None:
    # Guards the wrong-password tests: the server accepts this role with its password.
    applied = await sam_db.migrate(password_dsn)
    assert [m.version for m in applied] == ["001", "002", "003", "004", "005"]


async def test_wrong_password_raises_database_connection_error(wrong_password_dsn: str) -> None:
    with pytest.raises(DatabaseConnectionError, match="refused the login"):
        await sam_db.migrate(wrong_password_dsn)


async def test_wrong_password_error_never_contains_either_password(wrong_password_dsn: str) -> None:
    with pytest.raises(DatabaseConnectionError) as info:
        await sam_db.status(wrong_password_dsn)
    _assert_no_secret(str(info.value), "wrong-" + PASSWORD)
    _assert_no_secret(str(info.value))


async def test_missing_password_raises_database_connection_error(password_dsn: str) -> None:
    no_password = _with(password_dsn, user=ROLE, password=None)
    with pytest.raises(DatabaseConnectionError):
        await sam_db.migrate(no_password)


# --- logs ------------------------------------------------------------------------------------


async def test_sam_db_logger_never_emits_the_password(
    password_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await sam_db.migrate(password_dsn)
    await sam_db.migrate(password_dsn)
    await sam_db.status(password_dsn)
    await sam_db.rollback(password_dsn)
    sam_db_records = [r for r in caplog.records if r.name.startswith("sam_db")]
    assert sam_db_records, "expected sam_db to log its progress at DEBUG/INFO"
    for record in caplog.records:
        _assert_no_secret(record.getMessage())


async def test_logs_of_a_failed_login_never_contain_the_password(
    wrong_password_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DatabaseConnectionError):
        await sam_db.migrate(wrong_password_dsn)
    for record in caplog.records:
        _assert_no_secret(record.getMessage(), "wrong-" + PASSWORD)


# --- CLI -------------------------------------------------------------------------------------


def test_cli_unreachable_server_exits_1_without_the_password() -> None:
    result = _cli(
        "migrate", "-v", "--dsn", f"postgresql://u:{PASSWORD}@127.0.0.1:{_closed_port()}/db"
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach PostgreSQL")
    assert "Traceback" not in result.stderr
    _assert_no_secret(result.stdout + result.stderr)


def test_cli_wrong_password_exits_1_without_the_password(wrong_password_dsn: str) -> None:
    result = _cli("status", "-v", "--dsn", wrong_password_dsn)
    assert result.returncode == 1
    assert "refused the login" in result.stderr
    assert "Traceback" not in result.stderr
    _assert_no_secret(result.stdout + result.stderr, "wrong-" + PASSWORD)


def test_cli_dsn_from_database_url_never_printed_with_its_password() -> None:
    result = _cli(
        "migrate", "-v", env_dsn=f"postgresql://u:{PASSWORD}@127.0.0.1:{_closed_port()}/db"
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    _assert_no_secret(result.stdout + result.stderr)


def test_cli_malformed_dsn_exits_1_without_the_password() -> None:
    result = _cli("status", "--dsn", f"postgresql://u:{PASSWORD}@127.0.0.1:notaport/db")
    assert result.returncode == 1
    assert result.stderr.startswith("error: invalid DSN")
    assert "Traceback" not in result.stderr
    _assert_no_secret(result.stdout + result.stderr)


def test_cli_verbose_migrate_output_never_contains_the_password(password_dsn: str) -> None:
    result = _cli("migrate", "-v", "--dsn", password_dsn)
    assert result.returncode == 0, result.stderr
    assert "applied 004_memory_system.sql" in result.stdout
    _assert_no_secret(result.stdout + result.stderr)
