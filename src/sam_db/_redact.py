"""Redaction of secrets (DSN passwords) before anything reaches a log line or an error."""

from __future__ import annotations

import re

_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^:/@\s]*:)(?P<pw>\S*)(?P<at>@)", re.I)
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.I)
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)(?P<pw>[^&\s]*)", re.I)


def redact(text: str) -> str:
    """Replace every password in ``text`` (URL userinfo, ``password=`` pairs) with ``***``."""
    text = _URL_PASSWORD.sub(lambda m: m["head"] + ("***" if m["pw"] else "") + m["at"], text)
    text = _QUERY_PASSWORD.sub(lambda m: m["head"] + "***", text)
    return _KV_PASSWORD.sub(lambda m: m["head"] + "***", text)
