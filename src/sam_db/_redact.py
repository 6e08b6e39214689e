"""Redaction of secrets (DSN passwords) before anything reaches a log line or an error."""

from __future__ import annotations

import re
from urllib.parse import unquote

# URL userinfo up to the LAST '@': an unencoded password may hold '@', '/', '?', '#', ' '.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^:/@\s]*:)(?P<pw>.*)(?P<at>@)", re.I)
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.I)
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)(?P<pw>[^&\s]*)", re.I)
_SPLIT = re.compile(r"[@/?#:\s&=]+")


def password_of(dsn: str) -> str | None:
    """The password written in ``dsn`` (URL userinfo or ``password=``), raw as written."""
    for pattern in (_URL_PASSWORD, _QUERY_PASSWORD, _KV_PASSWORD):
        m = pattern.search(dsn)
        if m and m["pw"]:
            return m["pw"]
    return None


def secrets_of(dsn: str) -> list[str]:
    """The password of ``dsn`` and the pieces a parser may have cut it into (longest first)."""
    pw = password_of(dsn)
    if not pw:
        return []
    pieces = {pw, unquote(pw), pw.strip("'")}
    pieces.update(p for p in _SPLIT.split(pw) if len(p) >= 3)
    return sorted((p for p in pieces if p), key=len, reverse=True)


def redact(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Replace every password in ``text`` (URL userinfo, ``password=`` pairs, ``secrets``) with ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    text = _URL_PASSWORD.sub(lambda m: m["head"] + ("***" if m["pw"] else "") + m["at"], text)
    text = _QUERY_PASSWORD.sub(lambda m: m["head"] + "***", text)
    return _KV_PASSWORD.sub(lambda m: m["head"] + "***", text)
