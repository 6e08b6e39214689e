"""The ``Embedder`` protocol MemoryStore talks to, and a one-line wrapper for plain functions."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, runtime_checkable

from ..errors import ConfigurationError

EmbedFunction = Callable[
    [Sequence[str]], "Sequence[Sequence[float]] | Awaitable[Sequence[Sequence[float]]]"
]


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into fixed-size vectors: OpenAI, sentence-transformers, a server.

    ``embed`` returns one vector of ``dimensions`` floats per input text, in input order.
    ``model`` is recorded with every stored entry, so vectors of different models are never mixed
    unknowingly.
    """

    dimensions: int
    model: str

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed ``texts``; one vector per text, in order."""
        ...


class FunctionEmbedder:
    """An :class:`Embedder` around a plain sync or async function ``texts -> vectors``.

    Sync functions run in a worker thread (``asyncio.to_thread``) so a CPU-bound local model does
    not block the event loop.
    """

    def __init__(self, fn: EmbedFunction, *, dimensions: int, model: str) -> None:
        if not callable(fn):
            raise ConfigurationError("embedder_from_function needs a callable")
        if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
            raise ConfigurationError(f"dimensions must be a positive int, got {dimensions!r}")
        if not isinstance(model, str) or not model:
            raise ConfigurationError("model must be a non-empty string naming the embedding model")
        self._fn = fn
        self.dimensions = dimensions
        self.model = model

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Call the wrapped function and return its vectors as lists of floats."""
        if inspect.iscoroutinefunction(self._fn):
            result = await self._fn(texts)
        else:
            result = await asyncio.to_thread(self._fn, texts)
            if inspect.isawaitable(result):
                result = await result
        # numpy rows (a local model's matrix) become lists of Python floats; anything else goes
        # to the store as it is, which checks it (a dict is not a vector of its keys).
        return [v.tolist() if hasattr(v, "tolist") else v for v in result]

    def __repr__(self) -> str:
        return f"FunctionEmbedder({self.model!r}, dimensions={self.dimensions})"


def embedder_from_function(fn: EmbedFunction, *, dimensions: int, model: str) -> FunctionEmbedder:
    """Wrap a sync or async function ``texts -> vectors`` as an :class:`Embedder` (a one-liner)."""
    return FunctionEmbedder(fn, dimensions=dimensions, model=model)
