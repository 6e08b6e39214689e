"""Vectors for a ``halfvec`` column: packed as pgvector's halfvec binary format (float16).

A store whose ``memory_entries.embedding`` is ``halfvec(n)`` (``sam-db new --memory-dimensions N
--half``) sends its vectors in this form, half the bytes of a ``vector``'s; pgvector's codec
(registered for both types by ``_connections``) passes a ``HalfVector`` through as it is. The
values were checked as float32 by ``_vectors`` first; float16 adds two ways to fail: values
beyond its range and vectors that round to zero in it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

try:
    from pgvector import HalfVector
except ImportError:  # pgvector-python 0.3 (langchain-postgres pins it) has the class only here
    from pgvector.utils import HalfVector  # type: ignore[no-redef, unused-ignore]

from ..errors import InvalidInputError

#: The largest finite float16; values that round beyond it overflow.
HALF_MAX = 65504.0
_ROUNDS_BEYOND = 65520.0  # the first value that rounds to float16 infinity
_FORMATS: dict[int, struct.Struct] = {}


class PackedHalfVector(HalfVector):
    """A ``pgvector.HalfVector`` that keeps its wire form, sent by the codec as it is."""

    def __init__(self, binary: bytes) -> None:
        # Not pgvector's constructor on purpose: the wire form is all this class needs.
        self._binary = binary

    def to_binary(self) -> bytes:
        return self._binary

    @property
    def _value(self) -> Any:  # type: ignore[override]  # pgvector's methods read values here
        return HalfVector.from_binary(self._binary)._value


def _beyond(values: Sequence[float], what: str) -> InvalidInputError:
    i = next(i for i, x in enumerate(values) if abs(x) >= _ROUNDS_BEYOND)
    return InvalidInputError(
        f"{what} contains {values[i]!r} at index {i}, beyond halfvec's range "
        f"(±{HALF_MAX:g}): normalise the vector, or use a vector column"
    )


def _zero(what: str) -> InvalidInputError:
    return InvalidInputError(
        f"{what} is all zeros (in float16, halfvec's precision): cosine similarity is "
        "undefined for it"
    )


def pack_half(values: Sequence[float], total: float, what: str) -> Any:
    """Python floats (already checked finite and real) as a PackedHalfVector; ``total`` is
    their sum, which tells most vectors from one that rounds to zero without a look."""
    n = len(values)
    fmt = _FORMATS.get(n)
    if fmt is None:
        fmt = _FORMATS.setdefault(n, struct.Struct(f">HH{n}e"))
    try:
        binary = fmt.pack(n, 0, *values)
    except OverflowError:
        raise _beyond(values, what) from None
    # Every value rounds to zero in float16 only if |value| <= 2**-25, so |sum| <= n * 2**-25.
    if abs(total) <= n * 2**-25 and not any(fmt.unpack(binary)[2:]):
        raise _zero(what)
    return PackedHalfVector(binary)


def pack_half_array(floats: Any, what: str) -> Any:
    """A checked 1-d float32 numpy array as a PackedHalfVector."""
    import numpy as np  # only reached with a numpy array in hand

    if float(np.max(np.abs(floats))) >= _ROUNDS_BEYOND:
        raise _beyond(floats.tolist(), what)
    half = floats.astype(">f2")
    if not half.any():
        raise _zero(what)
    return PackedHalfVector(struct.pack(">HH", len(floats), 0) + half.tobytes())
