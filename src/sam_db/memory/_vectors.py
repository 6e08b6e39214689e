"""Vector validation and packing: finite, right length, not all zero, as ``pgvector.Vector``.

Vectors travel in pgvector's binary format through the codec registered on every connection the
store uses (a Python ``real[]`` parameter would cost ~0.4 ms of client CPU per 1536-d vector,
the binary codec ~0.01 ms). Checks run over a float32 array in C-level loops.
"""

from __future__ import annotations

import hashlib
import math
import struct
import sys
from array import array
from collections.abc import Sequence
from typing import Any

from pgvector import Vector

from ..errors import DimensionMismatchError, InvalidInputError


def _first_bad(values: array[float]) -> str:
    for i, x in enumerate(values):
        if not math.isfinite(x):
            return f"{x!r} at index {i}"
    return "overflow"  # pragma: no cover - fsum found one, so the loop does too


def pack_vector(value: Any, dimensions: int, *, what: str = "vector") -> Any:
    """Validate one vector and return it as a ``pgvector.Vector`` (float32).

    Raises DimensionMismatchError for a wrong length and InvalidInputError for non-numbers, NaN,
    infinities (float32 overflow included) and the zero vector (cosine distance is undefined).
    """
    if isinstance(value, Vector) or hasattr(value, "tolist"):  # pgvector.Vector, numpy arrays
        value = value.to_list() if isinstance(value, Vector) else value.tolist()
    try:
        n = len(value)
    except TypeError:
        raise InvalidInputError(
            f"{what} must be a sequence of floats, got {type(value).__name__}"
        ) from None
    if n != dimensions:
        raise DimensionMismatchError(
            f"{what} has {n} dimensions, the store expects {dimensions}",
            expected=dimensions,
            actual=n,
        )
    try:
        floats = array("f", value if isinstance(value, (list, tuple)) else list(value))
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what} contains a value that is not a number") from None
    try:
        total = math.fsum(floats)  # NaN and inf (also float32 overflow) poison the sum
    except (ValueError, OverflowError):
        total = math.nan
    if not math.isfinite(total):
        raise InvalidInputError(f"{what} contains a non-finite value ({_first_bad(floats)})")
    if not any(floats):
        raise InvalidInputError(f"{what} is all zeros: cosine similarity is undefined for it")
    if sys.byteorder == "little":
        floats.byteswap()
    return Vector.from_binary(struct.pack(">HH", n, 0) + floats.tobytes())


def pack_vectors(
    values: Sequence[Any], dimensions: int, *, count: int, what: str = "embedder"
) -> list[Any]:
    """Validate the output of an embedder for ``count`` texts and pack every vector."""
    if not isinstance(values, Sequence) or isinstance(values, (str, bytes)):
        raise InvalidInputError(f"{what} returned {type(values).__name__}, not a list of vectors")
    if len(values) != count:
        raise InvalidInputError(f"{what} returned {len(values)} vectors for {count} texts")
    return [pack_vector(v, dimensions, what=f"{what} vector {i}") for i, v in enumerate(values)]


def vector_hash(vector: Any) -> bytes:
    """sha256 of a vector's binary form: the access log's query hash for vector queries."""
    return hashlib.sha256(vector.to_binary()).digest()
