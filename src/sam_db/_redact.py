"""Redaction of secrets (DSN passwords) before anything reaches a log line, a repr or an error.

One rule finds a DSN's password whatever its shape, so that every place a DSN can surface (the
connection errors of the engine and the CLI, ``MemoryStore``'s repr and open) hides the same
thing: the text between the start of the authority (after ``scheme://``, or after any leading
slashes when there is no ``scheme://``) and the last ``@`` is the userinfo, and everything after its
first ``:`` is the password. That deliberately over-reads odd shapes (``sam:pw@host``,
``//sam:pw@host``, ``postgresql:/sam:pw@host``, an unencoded ``@`` or ``/`` in the password), which
parsers split in different places. ``password=`` and ``sslpassword=`` in a query string or a
key/value DSN are secrets too.

A parser can echo a fragment of a password (as a port, a host or a database name), so the pieces
of a password between delimiters are redacted as well, in their raw and percent-decoded forms.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

#: Pieces of a password shorter than this are not redacted on their own (they would match too much).
MIN_PIECE = 3
_MASK = "***"

# Only PostgreSQL's own schemes count as a scheme: in ``sam://pw@host`` (no scheme, a user ``sam``
# and a password starting with "//") "sam:" may as well be a user name, and the password must hide.
_AUTHORITY_START = re.compile(r"\s*(?:postgres(?:ql)?://|/*)", re.I)
# In free text (a foreign error message), a URL's userinfo up to the LAST '@' on the line.
_URL_PASSWORD = re.compile(
    r"(?P<head>(?:\b[a-z][a-z0-9+.\-]*:)?//[^:/@\s]*:)(?P<pw>[^\n]*)(?P<at>@)", re.I
)
# Connection parameters (libpq's and asyncpg's). A password value runs on over '&' and blanks
# unless one of these follows them: an unencoded "&x=y" may as well be part of the password.
_PARAMETERS = (
    "host|hostaddr|port|dbname|database|user|password|passfile|require_auth|channel_binding|"
    "connect_timeout|client_encoding|options|application_name|fallback_application_name|"
    "keepalives\\w*|tcp_user_timeout|replication|gssencmode|ssl\\w*|requirepeer|"
    "krbsrvname|gsslib|gssdelegation|service|target_session_attrs|load_balance_hosts|"
    "server_settings|search_path|statement_timeout|lock_timeout|timezone"
)
_MORE = rf"(?!(?:{_PARAMETERS})\s*=)"
_KV_PASSWORD = re.compile(
    r"(?P<head>(?<![\w.?&])(?:ssl)?password\s*=\s*)"
    rf"(?P<pw>'(?:[^'\\]|\\.)*'?|(?:\S|\s+{_MORE})+)",
    re.I,
)
_QUERY_PASSWORD = re.compile(
    rf"(?P<head>[?&](?:ssl)?password=)(?P<pw>(?:[^&\s]|[&\s]+{_MORE})*)", re.I
)
# PostgreSQL cuts identifiers (a database or role name) to NAMEDATALEN - 1 bytes.
_NAME_BYTES = 63
_QUOTED_NAME = re.compile(r'"(?P<name>[^"]*)"')
# What a parser may cut a password at, or escape when it quotes it (repr, JSON).
_SPLIT = re.compile(r"[^\w.\-~+!$*()]+")


def _userinfo(dsn: str) -> tuple[int, int, int] | None:
    """Offsets of (authority start, first ':' of the userinfo, last '@') in ``dsn``, if any."""
    start = _AUTHORITY_START.match(dsn)
    begin = start.end() if start else 0
    at = dsn.rfind("@", begin)
    if at < 0:
        return None
    colon = dsn.find(":", begin, at)
    if colon < 0:
        return None
    return begin, colon, at


def _password_spans(dsn: str) -> list[tuple[int, int]]:
    """Where ``dsn`` may hold a password (userinfo, query, key/value), as (start, end) offsets."""
    spans: list[tuple[int, int]] = []
    span = _userinfo(dsn)
    if span is not None and span[2] > span[1] + 1:
        spans.append((span[1] + 1, span[2]))
    for pattern in (_QUERY_PASSWORD, _KV_PASSWORD):
        spans.extend(m.span("pw") for m in pattern.finditer(dsn) if m["pw"])
    return spans


def passwords_of(dsn: str) -> list[str]:
    """Every text of ``dsn`` that may be a password (userinfo, query, key/value), raw as written."""
    return [dsn[start:end] for start, end in _password_spans(dsn)]


def secrets_of(dsn: str) -> list[str]:
    """The passwords of ``dsn`` and the pieces a parser may cut them into (longest first)."""
    pieces: set[str] = set()
    for pw in passwords_of(dsn):
        for form in {pw, unquote(pw), pw.strip("'"), unquote(pw.strip("'"))}:
            pieces.add(form)
            pieces.update(p for p in _SPLIT.split(form) if len(p) >= MIN_PIECE)
    return sorted((p for p in pieces if p), key=len, reverse=True)


def _cut_short(text: str, secrets: list[str] | tuple[str, ...]) -> str:
    """Mask a secret's head left at the end of a quoted name the server cut to NAMEDATALEN-1 bytes.

    A misparsed DSN can send a password fragment as a database or role name; PostgreSQL quotes it
    back truncated to 63 bytes, so the fragment no longer matches the whole secret.
    """

    def cut(m: re.Match[str]) -> str:
        name = m["name"]
        if len(name.encode()) < _NAME_BYTES - 3:  # a multibyte character may end it early
            return m[0]
        for secret in secrets:
            for k in range(min(len(secret), len(name)) - 1, MIN_PIECE - 1, -1):
                if name.endswith(secret[:k]):
                    return f'"{name[:-k]}{_MASK}"'
        return m[0]

    return _QUOTED_NAME.sub(cut, text)


def redact(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """``text`` with ``secrets`` and anything shaped like a password (URL userinfo, ``password=``)
    replaced by ``***``. Pass ``secrets_of(dsn)`` whenever the DSN is known."""
    for secret in secrets:
        text = text.replace(secret, _MASK)
    if secrets:
        text = _cut_short(text, secrets)
    text = _URL_PASSWORD.sub(lambda m: m["head"] + (_MASK if m["pw"] else "") + m["at"], text)
    text = _QUERY_PASSWORD.sub(lambda m: m["head"] + _MASK, text)
    return _KV_PASSWORD.sub(lambda m: m["head"] + _MASK, text)


def redact_dsn(dsn: str) -> str:
    """``dsn`` as it may be shown: its password (whatever the DSN's shape) replaced by ``***``.

    Masked by position, everywhere :func:`passwords_of` looks (overlapping places merged), so
    that a password that is also a common word (``postgres``) does not mask the rest of the DSN.
    """
    merged: list[list[int]] = []
    for start, end in sorted(_password_spans(dsn)):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in reversed(merged):
        dsn = dsn[:start] + _MASK + dsn[end:]
    return redact(dsn)


def secrets_in(texts: list[str] | tuple[str, ...]) -> list[str]:
    """The secrets of every text that may hold a DSN (a command line's arguments, longest first)."""
    found = {s for text in texts for s in secrets_of(text)}
    return sorted(found, key=len, reverse=True)
