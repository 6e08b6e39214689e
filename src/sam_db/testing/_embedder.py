"""HashEmbedder: deterministic, offline vectors for tests. NOT semantic.

The vector of a text is derived from a hash of the text alone: equal texts get equal vectors,
different texts get unrelated (nearly orthogonal) ones. "cat" is no closer to "kitten" than to
"tax law", so use it to test storage, deduplication, filters and plumbing — never relevance.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Sequence


class HashEmbedder:
    """An :class:`~sam_db.memory.Embedder` whose vectors are a pure function of the text's hash.

    Each vector is SHAKE-256 of the UTF-8 text expanded to ``dimensions`` uniform values in
    [-1, 1), then normalised to unit length. No network, no model, stable across runs and
    platforms. ``calls`` and ``texts_embedded`` count usage, so tests can assert that nothing
    was embedded twice.
    """

    def __init__(self, dimensions: int = 1536, model: str = "hash-embedder") -> None:
        if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
            raise ValueError(f"dimensions must be a positive int, got {dimensions!r}")
        self.dimensions = dimensions
        self.model = model
        self.calls = 0
        self.texts_embedded = 0

    def vector(self, text: str) -> list[float]:
        """The unit vector of ``text`` (synchronous; what :meth:`embed` returns for it)."""
        raw = hashlib.shake_256(text.encode("utf-8")).digest(4 * self.dimensions)
        values = [v / 2147483648.0 for v in struct.unpack(f"<{self.dimensions}i", raw)]
        norm = math.sqrt(math.fsum(v * v for v in values)) or 1.0
        return [v / norm for v in values]

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One deterministic unit vector per text, in order."""
        self.calls += 1
        self.texts_embedded += len(texts)
        return [self.vector(t) for t in texts]

    def __repr__(self) -> str:
        return f"HashEmbedder(dimensions={self.dimensions}, model={self.model!r})"
