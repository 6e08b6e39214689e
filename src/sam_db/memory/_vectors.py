"""Vectors from the embedder or the caller: validated (finite, right length, not all zero) and
packed as ``pgvector.Vector``.

Vectors travel in pgvector's binary format through the codec registered on every connection the
store uses (far less client CPU than a Python ``real[]`` parameter). Checks and packing run in
C-level loops (``sum`` and ``struct`` for lists, numpy for arrays), and the packed bytes are kept:
the codec sends them as they are (``PackedVector``; bench/vector_pack_bench.py measures it against
pgvector's public path, tests/memory/test_packed_vector_internals.py holds its invariants).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import numbers
import struct
from collections.abc import Mapping, Sequence
from typing import Any

try:
    from pgvector import Vector
except ImportError:  # pgvector-python 0.3 (langchain-postgres pins it) has the class only here
    from pgvector.utils import Vector  # type: ignore[no-redef, unused-ignore]

from ..errors import DimensionMismatchError, EmbeddingError, InvalidInputError, MemoryStoreError
from ._embedder import Embedder
from ._halfvec import pack_half, pack_half_array
from ._tasks import gather_or_cancel


def _first_bad(values: Sequence[Any]) -> str:
    for i, x in enumerate(values):
        try:
            finite = math.isfinite(x) and abs(x) <= _FLOAT32_MAX
        except OverflowError:  # an int beyond float's range
            finite = False
        if not finite:
            if isinstance(x, int) and x.bit_length() > 128:  # (its repr may be refused)
                return f"a {x.bit_length()}-bit int at index {i}"
            return f"{x!r} at index {i}"
    return "a sum beyond the float range"  # pragma: no cover - needs values near 1e308


class PackedVector(Vector):
    """A ``pgvector.Vector`` that keeps its wire form, so the codec sends it without re-encoding
    (pgvector's ``to_binary`` copies and byte-swaps the floats again). The float values are
    decoded only if something asks for them."""

    def __init__(self, binary: bytes) -> None:
        # Not pgvector's constructor on purpose: it would parse floats this class never needs.
        self._binary = binary

    def to_binary(self) -> bytes:
        return self._binary

    @property
    def _value(self) -> Any:  # type: ignore[override]  # pgvector's methods read floats here
        return Vector.from_binary(self._binary)._value


_FLOAT32_MAX = 3.4028234663852886e38
_FORMATS: dict[int, struct.Struct] = {}


def _wrong_length(n: int, dimensions: int, what: str) -> DimensionMismatchError:
    return DimensionMismatchError(
        f"{what} has {n} dimensions, the store expects {dimensions}", expected=dimensions, actual=n
    )


def pack_vector(value: Any, dimensions: int, *, what: str = "vector", half: bool = False) -> Any:
    """Validate one vector and return it as a ``pgvector.Vector`` (float32), or with ``half``
    as a ``pgvector.HalfVector`` (float16, for a halfvec column; see ``_halfvec``).

    Raises DimensionMismatchError for a wrong length and InvalidInputError for what is not a
    sequence of real numbers (mappings, sets, strings; bools, complex numbers), NaN,
    infinities (float32 overflow included) and vectors that are zero in float32 (cosine
    distance is undefined for them).
    """
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 1:
        return _pack_array(value, dimensions, what, half)
    if not isinstance(value, (list, tuple)):
        value = _as_list(value, what)
    n = len(value)
    if n != dimensions:
        raise _wrong_length(n, dimensions, what)
    if value[0].__class__ is not float:  # ints, numpy scalars: checked, as Python floats
        value = _as_floats(value, what)
    try:
        total = sum(value)  # NaN and inf poison the sum; C-level loop over the floats
    except (TypeError, OverflowError):  # not numbers; ints beyond float's range
        value = _as_floats(value, what)
        total = sum(value)
    if total.__class__ is not float:  # other kinds of numbers further on
        value = _as_floats(value, what)
        total = sum(value)
    fmt = _FORMATS.get(n)
    if fmt is None:
        fmt = _FORMATS.setdefault(n, struct.Struct(f">HH{n}f"))  # pgvector's binary format
    try:
        if not math.isfinite(total):
            raise OverflowError
        binary = fmt.pack(n, 0, *value)  # big-endian float32; raises beyond float32's range
    except OverflowError:
        raise InvalidInputError(
            f"{what} contains a non-finite value ({_first_bad(value)})"
        ) from None
    except struct.error:
        raise InvalidInputError(f"{what} contains a value that is not a number") from None
    # struct packs bools as 1.0 and 0.0: where the packed floats hold either exactly, look
    # at the types (a search of the bytes; rare for real embeddings, whose values are seldom
    # exactly 0 or 1; a match at a position that is not a float's start only costs the look).
    if binary.find(_ONE, 4) >= 0 or binary.find(_ZERO, 4) >= 0:
        _check_real(value, what)
    # Every value rounds to zero in float32 only if |value| <= 2**-150, so |sum| < 1e-38:
    # above that the vector is not zero and the packed floats need no look.
    if -1e-38 < total < 1e-38 and not any(fmt.unpack(binary)[2:]):
        raise InvalidInputError(
            f"{what} is all zeros (in float32): cosine similarity is undefined for it"
        )
    return pack_half(value, total, what) if half else PackedVector(binary)


_ONE = struct.pack(">f", 1.0)
_ZERO = bytes(4)


def _as_list(value: Any, what: str) -> list[Any]:
    """A vector given as something other than a list or tuple, as a list of its values."""
    if isinstance(value, Vector) or (hasattr(value, "tolist") and not isinstance(value, Mapping)):
        return list(value.to_list() if isinstance(value, Vector) else value.tolist())
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
        return list(value)
    raise InvalidInputError(f"{what} must be a sequence of floats, got {type(value).__name__}")


def _as_floats(values: Sequence[Any], what: str) -> list[float]:
    """Real numbers as Python floats (summed in float64, not in a numpy scalar's precision)."""
    _check_real(values, what)
    try:
        return [float(x) for x in values]
    except OverflowError:  # an int beyond float's range
        raise InvalidInputError(
            f"{what} contains a non-finite value ({_first_bad(values)})"
        ) from None


def _check_real(values: Sequence[Any], what: str) -> None:
    """Refuse values that are not real numbers: bools (numpy's too), complex, Decimal, str."""
    for kind in set(map(type, values)):
        if kind is float or kind is int:
            continue
        if issubclass(kind, numbers.Real) and not issubclass(kind, bool):
            continue
        i = next(i for i, x in enumerate(values) if type(x) is kind)
        raise InvalidInputError(
            f"{what} contains {values[i]!r} at index {i}: not a number a vector can hold "
            "(a float or an int)"
        )


def _pack_array(value: Any, dimensions: int, what: str, half: bool = False) -> Any:
    """A 1-d numpy array: the same checks, vectorised (bench/vector_pack_bench.py compares it with
    a list's and with pgvector's own ``Vector(array)``, which checks nothing)."""
    import numpy as np  # only reached with a numpy array in hand

    n = len(value)
    if n != dimensions:
        raise _wrong_length(n, dimensions, what)
    if value.dtype.kind not in "iuf":  # ints, floats; not bools, objects, strings, complex
        raise InvalidInputError(
            f"{what} contains a value that is not a number (dtype {value.dtype}; use floats)"
        )
    if value.dtype == np.float32:  # what embedding models return: nothing to cast
        floats = value
    else:
        with np.errstate(over="ignore"):
            floats = value.astype(np.float32)  # beyond float32's range → inf, refused below
    # One BLAS call checks every value: float64 holds the square of any float32 and the sum of
    # 65,535 of them, so the sum of squares is finite exactly when every value is, and positive
    # exactly when one is not zero. (A float32 sum could overflow, and warn, for finite input.)
    wide = floats.astype(np.float64)
    square = float(np.dot(wide, wide))
    if not square < math.inf:  # NaN compares false too
        i = int(np.argmin(np.isfinite(floats)))
        bad = float(value[i])
        raise InvalidInputError(f"{what} contains a non-finite value ({bad!r} at index {i})")
    if square == 0.0:
        raise InvalidInputError(
            f"{what} is all zeros (in float32): cosine similarity is undefined for it"
        )
    if half:
        return pack_half_array(floats, what)
    # pgvector's binary format: dimensions, unused, then big-endian float32s.
    return PackedVector(struct.pack(">HH", n, 0) + floats.astype(">f4").tobytes())


def pack_vectors(
    values: Any, dimensions: int, *, count: int, what: str = "embedder", half: bool = False
) -> list[Any]:
    """Validate the output of an embedder for ``count`` texts and pack every vector."""
    if type(values).__module__ == "numpy" and getattr(values, "ndim", None) == 2:
        values = list(values)  # a matrix from a local model: one row per text
    if not isinstance(values, Sequence) or isinstance(values, (str, bytes)):
        raise InvalidInputError(f"{what} returned {type(values).__name__}, not a list of vectors")
    if len(values) != count:
        raise InvalidInputError(f"{what} returned {len(values)} vectors for {count} texts")
    return [
        pack_vector(v, dimensions, what=f"{what} vector {i}", half=half)
        for i, v in enumerate(values)
    ]


def vector_hash(vector: Any) -> bytes:
    """sha256 of a vector's binary form: the access log's query hash for vector queries."""
    return hashlib.sha256(vector.to_binary()).digest()


# Texts handed to the embedder per call; their vectors are packed to float32 right after, so
# memory stays bounded for very large add_many calls.
_EMBED_CHUNK = 1024
_EMBED_PARALLEL = 2


async def embed_texts(
    embedder: Embedder, texts: list[str], dimensions: int, half: bool = False
) -> list[Any]:
    """Embed texts in bounded chunks and validate/pack each chunk's vectors at once.

    Whatever the embedder raises reaches the caller as EmbeddingError (or the
    MemoryStoreError it raised); bad vectors as InvalidInputError.
    """
    if not texts:
        return []
    chunks = [texts[i : i + _EMBED_CHUNK] for i in range(0, len(texts), _EMBED_CHUNK)]
    gate = asyncio.Semaphore(_EMBED_PARALLEL)

    async def one(chunk: list[str]) -> list[Any]:
        async with gate:
            try:
                vectors = await embedder.embed(chunk)
            except MemoryStoreError:
                raise
            except Exception as exc:  # the embedder's own failure, whatever it is
                raise EmbeddingError(
                    f"embedder {embedder!r} failed: {type(exc).__name__}: {exc}"
                ) from exc
            return pack_vectors(vectors, dimensions, count=len(chunk), half=half)

    packed = await gather_or_cancel(one(c) for c in chunks)
    return [v for chunk in packed for v in chunk]
