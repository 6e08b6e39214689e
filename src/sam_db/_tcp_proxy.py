"""A loopback TCP port that forwards each connection to a server's unix socket (``serve --port``).

The embedded server listens on a unix socket only; some tools (GUI clients, other languages'
drivers, containers) need a host and a port. Forwarding bytes leaves the server's own settings
alone, so a server that other processes already share need not restart for it.
"""

from __future__ import annotations

import asyncio
import contextlib


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def serve_tcp(socket_path: str, port: int, host: str = "127.0.0.1") -> asyncio.Server:
    """Listen on ``host:port`` (0: any free port); forward each connection to ``socket_path``."""

    async def forward(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_unix_connection(socket_path)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pipe(client_r, server_w), _pipe(server_r, client_w))

    return await asyncio.start_server(forward, host, port)
