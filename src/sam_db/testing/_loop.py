"""A private event loop in a daemon thread, where the synchronous fixtures run their asyncpg code.

Synchronous fixtures cannot share the test's event loop (there may be none, or it may belong to
pytest-asyncio or anyio and be closed after each test), and ``asyncio.run`` would replace the
thread's current loop. A loop of our own that lives for the whole session also lets the plugin keep
its admin connections open between tests and do work (prefetching the next clone, dropping used
databases) in the background while tests run.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class BackgroundLoop:
    """An asyncio loop running forever in a daemon thread; :meth:`run` blocks on a coroutine."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="sam_db-fixtures", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the background loop and return its result (or raise its exception)."""
        if not self._thread.is_alive():
            coro.close()
            raise RuntimeError("the sam_db fixture loop is closed")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Cancel what is left, stop the loop and join the thread."""
        if not self._thread.is_alive():
            return

        async def cancel_rest() -> None:
            me = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not me]
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        try:
            self.run(cancel_rest(), timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=30)
            if not self._thread.is_alive():
                self.loop.close()
