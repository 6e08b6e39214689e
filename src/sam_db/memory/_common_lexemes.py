"""The lexemes a text or hybrid search leaves out of its query: those that ANALYZE counts in many
entries (``memory_text_common_lexemes()``, migration 005).

Reading them from ``pg_stats`` costs more than building the rest of the query, and they change
only when ANALYZE runs, so each store keeps them and reads them again once they are ``max_age``
seconds old. A stale list only shifts which very common words a query ignores.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

MAX_AGE = 60.0  # seconds a store keeps the list before reading it again


class CommonLexemes:
    """One store's copy of its table's common lexemes, read at most once per ``max_age``."""

    def __init__(
        self, max_age: float = MAX_AGE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_age = max_age
        self._clock = clock
        self._lexemes: list[str] = []
        self._read_at = -math.inf

    async def get(self, conn: Any, function: str) -> list[str]:
        """The list, read on ``conn`` through ``function`` (schema-qualified) when it is older
        than ``max_age``; empty while the table has no statistics."""
        now = self._clock()
        if now - self._read_at >= self._max_age:
            found = await conn.fetchval(f"SELECT {function}()")
            self._lexemes = list(found or ())
            self._read_at = now
        return self._lexemes
