"""Quoting of SQL identifiers: the only way a name reaches SQL text in sam_db."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """Return ``name`` as a double-quoted PostgreSQL identifier, rejecting what cannot be one."""
    if not isinstance(name, str) or not name:
        raise ValueError("an SQL identifier must be a non-empty string")
    if "\x00" in name:
        raise ValueError("an SQL identifier cannot contain a NUL byte")
    if len(name.encode()) > 63:
        raise ValueError(f"identifier {name!r} is longer than PostgreSQL's 63-byte limit")
    return '"' + name.replace('"', '""') + '"'
