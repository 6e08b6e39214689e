"""A DSN's password and the OpenAI API key never surface, whatever shape the DSN has.

Hypothesis writes DSNs in every shape people type (URL, scheme-less ``sam:pw@host/db``,
``//sam:pw@…``, ``postgresql:/sam:pw@…``, ``?password=``, key/value), with passwords full of URL
delimiters, percent-encoded or not, bad ports and broken IPv6 hosts. For migrate, status, rollback,
repair, the CLI (in-process and as a real subprocess), ``MemoryStore`` (repr and open) and the
OpenAI embedder, no word of the secret (nor its head) may appear in an error's str, repr, args,
attributes or traceback, anywhere in its ``__cause__`` / ``__context__`` chain (suppressed
contexts included), in a log line or in the CLI's output; and every failure is a typed
``SamDbError``.

Passwords are built from "words" (``Zq`` + random characters, 5-8 of them or, sometimes, more than
a 63-byte PostgreSQL name holds) joined by delimiters, so that a word's head found anywhere is a
leak, never a coincidence. Connections that fall back to libpq defaults reach the real test server
(PGHOST/PGPORT point at it) as a role that does not exist, so server error messages quoting
misparsed fragments are covered too.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import socket
import subprocess
import sys
import traceback
from collections.abc import Iterator
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sam_db
from sam_db import cli
from sam_db.errors import ConfigurationError, DatabaseConnectionError, EmbeddingError, SamDbError
from sam_db.memory import MemoryStore, OpenAIEmbedder
from sam_db.testing import HashEmbedder
from tests.memory.fake_openai import FakeOpenAI

NO_ROLE = "sam_db_secrets_no_such_role"
NO_DATABASE = "sam_db_secrets_no_such_db"
_WORD_CHARS = "abcdefghjkmnpqrstuvwxyz0123456789"
_SEPARATORS = [*"@/?#:;,[]%&= '\"\\\t", "é", "%40", "%2F", "@@", "//", "::", "\\x"]
_PREFIXES = [
    "postgresql://",
    "postgres://",
    "POSTGRESQL://",
    "postgresql+asyncpg://",
    "",
    "//",
    "/",
    "postgresql:/",
    "postgresql:",
    "postgres:",
    "mysql://",
]
_HOSTS = [
    "127.0.0.1",
    "localhost",
    "[::1]",
    "[::1",
    "::1",
    "[fe80::1%lo]",
    "",
    "127.0.0.1,localhost",
]
_TAILS = [
    f"/{NO_DATABASE}",
    "",
    "/",
    f"/{NO_DATABASE}?sslmode=disable",
    f"/{NO_DATABASE}?sslmode=sometimes",
    f"/{NO_DATABASE}?host=/nonexistent-sam-db-dir",
    f"/{NO_DATABASE}?port=notaport",
    f"/{NO_DATABASE}?connect_timeout=x&application_name=a",
]
_ENGINE_CALLS = [sam_db.migrate, sam_db.status, sam_db.rollback, sam_db.repair]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


CLOSED_PORT = _closed_port()
_PORTS = ["", f":{CLOSED_PORT}", ":notaport", ":99999", ":-1", ":", f":{CLOSED_PORT}:1"]


# --- what a secret is and where it may hide -------------------------------------------------

# Mostly short words; sometimes one longer than PostgreSQL's 63-byte names, which the server
# quotes back cut short (a misparsed password sent as a database name).
_words = (
    st.text(alphabet=_WORD_CHARS, min_size=5, max_size=8)
    | st.text(alphabet=_WORD_CHARS, min_size=60, max_size=70)
).map(lambda s: "Zq" + s)


@st.composite
def secrets(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A password (as written in the DSN) and the words that must never surface."""
    words = draw(st.lists(_words, min_size=1, max_size=3))
    seps = draw(st.lists(st.sampled_from(_SEPARATORS), min_size=len(words), max_size=len(words)))
    text = words[0] + "".join(sep + word for sep, word in zip(seps[1:], words[1:], strict=True))
    if draw(st.booleans()):
        text = seps[0] + text  # a password that starts with a delimiter
    if draw(st.booleans()):
        text = quote(text, safe="")  # written percent-encoded, as the docs advise
    return text, words


@st.composite
def dsns(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A DSN of some shape holding a password, and the password's words."""
    password, words = draw(secrets())
    user = draw(st.sampled_from(["sam", "u", ""]))
    host = draw(st.sampled_from(_HOSTS)) + draw(st.sampled_from(_PORTS))
    tail = draw(st.sampled_from(_TAILS))
    prefix = draw(st.sampled_from(_PREFIXES))
    shape = draw(st.sampled_from(["userinfo", "userinfo", "query", "keyvalue"]))
    if shape == "userinfo":
        return f"{prefix}{user}:{password}@{host}{tail}", words
    if shape == "query":
        joiner = "&" if "?" in tail else "?"
        return f"{prefix}{user or 'sam'}@{host}{tail}{joiner}password={password}", words
    quoted = draw(st.booleans())
    escaped = password.replace("\\", "\\\\").replace("'", "\\'")  # libpq quoting
    value = f"'{escaped}'" if quoted else password
    return f"host={host or '127.0.0.1'} port={CLOSED_PORT} user={user} password={value}", words


def _texts_of(exc: BaseException, seen: set[int] | None = None) -> Iterator[str]:
    """Every text an exception carries: str, repr, args, attributes, traceback, whole chain."""
    seen = set() if seen is None else seen
    if id(exc) in seen:
        return
    seen.add(id(exc))
    yield str(exc)
    yield repr(exc)
    for arg in exc.args:
        yield str(arg)
        yield repr(arg)
    for name, value in vars(exc).items():
        yield f"{name}={value!r}"
    yield from getattr(exc, "__notes__", ())
    yield "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    for linked in (exc.__cause__, exc.__context__, *getattr(exc, "exceptions", ())):
        if linked is not None:
            yield from _texts_of(linked, seen)


def _assert_clean(texts: Iterator[str] | list[str], words: list[str], where: str) -> None:
    """No word of the secret, nor the head of one (a cut-short name), is in any of ``texts``."""
    for text in texts:
        for word in words:
            head = word[:6]  # "Zq" + 4 random characters: never there by chance
            assert head not in text, f"{word!r} of the secret leaked into {where}: {text!r}"


def _assert_records_clean(records: list[logging.LogRecord], words: list[str]) -> None:
    for record in records:
        _assert_clean([record.getMessage()], words, f"log record {record.name}")
        if record.exc_info and record.exc_info[1] is not None:
            _assert_clean(_texts_of(record.exc_info[1]), words, "a logged exception")


def _assert_typed_and_clean(exc: BaseException, words: list[str], what: str) -> None:
    assert isinstance(exc, SamDbError), (
        f"{what} raised {type(exc).__name__}, not a SamDbError: {exc}"
    )
    assert isinstance(exc, (ConfigurationError, DatabaseConnectionError)), repr(exc)
    _assert_clean(_texts_of(exc), words, what)


# --- environment: libpq defaults that lead nowhere dangerous --------------------------------


@pytest.fixture(scope="module")
def defaults_env(pg_admin_dsn: str) -> Iterator[dict[str, str]]:
    """PGHOST/PGPORT at the real test server, PGUSER a role that does not exist.

    A DSN whose host or user got lost in misparsing then reaches a real PostgreSQL, which refuses
    the login with a message that quotes what it was sent; no generated DSN can log in.
    """
    parts = urlsplit(pg_admin_dsn)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    env = {
        "PGHOST": query.get("host") or parts.hostname or "127.0.0.1",
        "PGPORT": query.get("port") or str(parts.port or 5432),
        "PGUSER": NO_ROLE,
        "PGDATABASE": NO_DATABASE,
        "PGPASSFILE": "/nonexistent-sam-db-passfile",
        "PGCONNECT_TIMEOUT": "5",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# SAM_DB_SECRETS_SCALE=20 runs twenty times as many examples (a longer hunt, not for CI).
_SCALE = int(os.environ.get("SAM_DB_SECRETS_SCALE", "1"))
_SETTINGS = settings(
    max_examples=80 * _SCALE,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# --- the migration API ----------------------------------------------------------------------


@_SETTINGS
@given(case=dsns())
def test_engine_errors_never_carry_the_password(
    defaults_env: dict[str, str], caplog: pytest.LogCaptureFixture, case: tuple[str, list[str]]
) -> None:
    dsn, words = case
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    for call in _ENGINE_CALLS:
        with pytest.raises(Exception) as info:
            asyncio.run(call(dsn))
        _assert_typed_and_clean(info.value, words, f"{call.__name__}({dsn!r})")
    _assert_records_clean(caplog.records, words)


# --- MemoryStore ----------------------------------------------------------------------------


@_SETTINGS
@given(case=dsns())
def test_memory_store_repr_and_open_never_carry_the_password(
    defaults_env: dict[str, str], caplog: pytest.LogCaptureFixture, case: tuple[str, list[str]]
) -> None:
    dsn, words = case
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    store = MemoryStore(dsn, HashEmbedder(8), max_connections=1)
    _assert_clean([repr(store), str(store)], words, "repr(MemoryStore)")

    async def open_it() -> None:
        await store.open()

    with pytest.raises(Exception) as info:
        asyncio.run(open_it())
    _assert_typed_and_clean(info.value, words, f"MemoryStore({dsn!r}).open()")
    _assert_clean([repr(store)], words, "repr(MemoryStore) after open")
    _assert_records_clean(caplog.records, words)


# --- the CLI --------------------------------------------------------------------------------


@settings(_SETTINGS, max_examples=60 * _SCALE)
@given(case=dsns(), command=st.sampled_from(["migrate", "status", "rollback", "repair"]))
def test_cli_output_never_carries_the_password(
    defaults_env: dict[str, str], case: tuple[str, list[str]], command: str
) -> None:
    dsn, words = case
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([command, "-v", "--dsn", dsn])
    assert code == 1, (command, dsn, err.getvalue())
    assert err.getvalue().startswith("error: "), err.getvalue()
    _assert_clean([out.getvalue(), err.getvalue()], words, f"sam-db {command}")


def _no_nul(case: tuple[str, list[str]]) -> bool:
    return "\x00" not in case[0]


@settings(_SETTINGS, max_examples=3 * _SCALE)
@given(
    case=dsns().filter(_no_nul),
    command=st.sampled_from(["migrate", "status", "rollback", "repair"]),
    via_env=st.booleans(),
)
def test_cli_subprocess_output_never_carries_the_password(
    defaults_env: dict[str, str], case: tuple[str, list[str]], command: str, via_env: bool
) -> None:
    dsn, words = case
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    args = [sys.executable, "-m", "sam_db", command, "-v"]
    if via_env:
        env["DATABASE_URL"] = dsn
    else:
        args += ["--dsn", dsn]
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    _assert_clean([result.stdout, result.stderr], words, f"sam-db {command} (subprocess)")


# --- the shapes the issue names, as plain examples --------------------------------------------

PASSWORD = "Zqhunter2x"
LONG_PASSWORD = "Zq" + "swordfish" * 8
NAMED_SHAPES = [
    f"sam:{PASSWORD}@127.0.0.1:{CLOSED_PORT}/db",
    f"//sam:{PASSWORD}@127.0.0.1:{CLOSED_PORT}/db",
    f"postgresql:/sam:{PASSWORD}@127.0.0.1:{CLOSED_PORT}/db",
    f"postgresql://sam:{PASSWORD}/x@127.0.0.1:{CLOSED_PORT}/db",
    f"postgresql://sam:{PASSWORD}@127.0.0.1:99999/db",
    f"postgresql://sam:{PASSWORD}@[::1/db",
    f"postgresql://sam:{PASSWORD}@127.0.0.1:notaport/db",
]


@pytest.mark.parametrize(
    "dsn",
    NAMED_SHAPES,
    ids=[
        "scheme-less",
        "//",
        "postgresql:/",
        "slash-in-password",
        "port-99999",
        "[::1",
        "notaport",
    ],
)
async def test_named_shapes_give_typed_errors_without_the_password(
    defaults_env: dict[str, str], dsn: str
) -> None:
    for call in _ENGINE_CALLS:
        with pytest.raises(Exception) as info:
            await call(dsn)
        _assert_typed_and_clean(info.value, [PASSWORD], f"{call.__name__}({dsn!r})")
    store = MemoryStore(dsn, HashEmbedder(8), max_connections=1)
    assert PASSWORD not in repr(store)
    with pytest.raises(Exception) as info:
        await store.open()
    _assert_typed_and_clean(info.value, [PASSWORD], f"MemoryStore({dsn!r}).open()")


@pytest.mark.parametrize(
    "dsn",
    [f"postgresql:/sam:{LONG_PASSWORD}@h/db", f"postgresql:///db:{LONG_PASSWORD}@h"],
    ids=["postgresql:/", "postgresql:///"],
)
async def test_a_password_cut_short_in_a_server_message_is_masked(
    defaults_env: dict[str, str], pg_admin_dsn: str, monkeypatch: pytest.MonkeyPatch, dsn: str
) -> None:
    # These shapes send the password as part of the database name: the server says the database
    # does not exist, quoting the name cut to 63 bytes, so the password's head ends the quote.
    monkeypatch.setenv("PGUSER", urlsplit(pg_admin_dsn).username or "postgres")
    with pytest.raises(DatabaseConnectionError, match="does not exist") as info:
        await sam_db.status(dsn)
    _assert_typed_and_clean(info.value, [LONG_PASSWORD], f"status({dsn!r})")


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://sam:{PASSWORD}@127.0.0.1:99999/db",
        f"postgresql://sam:{PASSWORD}@127.0.0.1:notaport/db",
        f"postgresql://sam:{PASSWORD}@[::1/db",
        f"postgresql://sam:{PASSWORD}@[not-an-ip]:5432/db",
    ],
    ids=["port-out-of-range", "port-not-a-number", "unclosed-ipv6", "bad-ipv6"],
)
async def test_a_bad_port_or_ipv6_is_a_configuration_error(dsn: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        await sam_db.status(dsn)
    assert "postgresql://user:password@host:port/database" in str(info.value)
    with pytest.raises(ConfigurationError):
        await MemoryStore(dsn, HashEmbedder(8), max_connections=1).open()


# --- the OpenAI embedder's API key ------------------------------------------------------------


@st.composite
def api_keys(draw: st.DrawFn) -> tuple[str, list[str]]:
    """An API key (sometimes one no HTTP header can carry) and the words that must not surface."""
    words = draw(st.lists(_words, min_size=1, max_size=3))
    seps = draw(st.lists(st.sampled_from(["-", "_", "", " ", "\n", "é", "\x00"]), min_size=3))
    key = draw(st.sampled_from(["sk-", "sk-proj-", "", "key-"])) + words[0]
    key += "".join(sep + word for sep, word in zip(seps[: len(words) - 1], words[1:], strict=True))
    return key, words


@pytest.fixture(scope="module")
def openai_server() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    try:
        yield server
    finally:
        server.stop()


@settings(_SETTINGS, max_examples=20 * _SCALE)
@given(case=api_keys(), status=st.sampled_from([401, 403, 400, 500]))
def test_openai_errors_never_carry_the_api_key(
    openai_server: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
    case: tuple[str, list[str]],
    status: int,
) -> None:
    key, words = case
    caplog.clear()
    caplog.set_level(logging.DEBUG)

    async def embed() -> None:
        embedder = OpenAIEmbedder(
            base_url=openai_server.base_url, api_key=key, backoff=0.0, max_retries=1
        )
        _assert_clean([repr(embedder), str(embedder)], words, "repr(OpenAIEmbedder)")
        # Servers echo the key they got (OpenAI masks part of it; a proxy may not). A 5xx is
        # retried once, so the server answers both attempts with it.
        message = f"Incorrect API key provided: {key}"
        openai_server.fail_next(status, times=2 if status >= 500 else 1, message=message)
        await embedder.embed(["a text"])

    with pytest.raises(Exception) as info:
        asyncio.run(embed())
    assert isinstance(info.value, (EmbeddingError, ConfigurationError)), repr(info.value)
    _assert_clean(_texts_of(info.value), words, "an OpenAIEmbedder error")
    _assert_records_clean(caplog.records, words)


def test_migrated_schema_repr_hides_the_password() -> None:
    from sam_db.testing import MigratedSchema

    schema = MigratedSchema(f"postgresql://sam:{PASSWORD}@db.example/app", "t_1")
    assert PASSWORD not in repr(schema)
    assert "postgresql://sam:***@db.example/app" in repr(schema)


@pytest.mark.parametrize(
    "argv",
    [
        ["migrate", f"postgresql://sam:{PASSWORD}@127.0.0.1:{CLOSED_PORT}/db"],
        ["status", f"sam:{PASSWORD}@127.0.0.1/db"],
        ["repair", "--dsn", f"postgresql://u@127.0.0.1:{CLOSED_PORT}/db", f"sam:{PASSWORD}@h"],
    ],
    ids=["url-without---dsn", "scheme-less-without---dsn", "dsn-as-a-version"],
)
def test_cli_never_prints_a_dsn_typed_in_the_wrong_place(argv: list[str]) -> None:
    # Forgetting --dsn: argparse or a version check quotes the argument back.
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exit:
            code = exit.code  # type: ignore[assignment]
    assert code in (1, 2), err.getvalue()
    assert "error" in err.getvalue()
    assert PASSWORD not in out.getvalue() + err.getvalue()


def test_a_password_that_is_a_common_word_does_not_garble_the_dsn_shown() -> None:
    dsn = f"postgresql://postgres:postgres@127.0.0.1:{CLOSED_PORT}/postgres"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert cli.main(["status", "--dsn", dsn]) == 1
    assert f"postgresql://postgres:***@127.0.0.1:{CLOSED_PORT}/postgres" in err.getvalue()
    assert repr(MemoryStore(dsn, HashEmbedder(8))) == (
        f"MemoryStore('postgresql://postgres:***@127.0.0.1:{CLOSED_PORT}/postgres', "
        "embedder=HashEmbedder(dimensions=8, model='hash-embedder'), schema=None)"
    )


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://sam:pw@h:5432/db", "postgresql://sam:***@h:5432/db"),
        ("sam:pw@h/db", "sam:***@h/db"),
        ("//sam:pw@h/db", "//sam:***@h/db"),
        ("postgresql:/sam:pw@h/db", "postgresql:***@h/db"),
        ("postgresql://sam:p@w/x@h/db", "postgresql://sam:***@h/db"),
        (
            "postgresql://h/db?password=pw&sslmode=disable",
            "postgresql://h/db?password=***&sslmode=disable",
        ),
        ("host=h password='p w' user=u", "host=h password=*** user=u"),
        ("postgresql://sam@h/db", "postgresql://sam@h/db"),
    ],
)
def test_a_dsn_is_shown_with_its_password_masked_whatever_its_shape(dsn: str, shown: str) -> None:
    from sam_db._redact import redact_dsn

    assert redact_dsn(dsn) == shown


def test_a_scheme_less_dsn_whose_password_starts_with_slashes_is_masked() -> None:
    # "sam:" + "//pw@pw" + "@host": read as a URL, "sam" would be a scheme and the password a user
    # name; only PostgreSQL's own schemes are taken as schemes, so the password is hidden.
    from sam_db._redact import redact_dsn

    dsn = "sam://Zq00000@Zq00000@127.0.0.1/db"
    assert "Zq00000" not in redact_dsn(dsn)
    assert "Zq00000" not in repr(MemoryStore(dsn, HashEmbedder(8)))
