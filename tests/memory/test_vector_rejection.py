"""Vectors that are not what they seem: float32 underflow, booleans, complex numbers, mappings.

And the values that look like those but are fine (exact 0.0 and 1.0, ints, numpy scalars).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from sam_db.errors import InvalidInputError
from sam_db.memory import MemoryStore
from sam_db.memory._vectors import pack_vector, pack_vectors

D = 1536


def _with(value: Any, at: int = 7, fill: Any = 0.25) -> list[Any]:
    v: list[Any] = [fill] * D
    v[at] = value
    return v


@pytest.mark.parametrize(
    "vector",
    [
        [1e-50] + [0.0] * (D - 1),
        [1e-46, -1e-46] * (D // 2),
        _with(-7e-46, fill=0.0),
        _with(1e-300, fill=-0.0),
        np.array([1e-50] + [0.0] * (D - 1)),
    ],
    ids=["1e-50", "alternating 1e-46", "-7e-46", "1e-300 among -0.0", "numpy 1e-50"],
)
def test_a_vector_that_is_zero_in_float32_is_refused(vector: Any) -> None:
    with pytest.raises(InvalidInputError, match="all zeros"):
        pack_vector(vector, D)


@pytest.mark.parametrize(
    "vector",
    [
        [True, False] * (D // 2),
        _with(True),
        _with(False),
        _with(np.True_),
        np.array([True, False] * (D // 2)),
        [1.0, 0.5] * (D // 2 - 1) + [True, 0.5],
    ],
    ids=["all bools", "one True", "one False", "numpy bool scalar", "bool array", "last True"],
)
def test_booleans_are_not_numbers(vector: Any) -> None:
    with pytest.raises(InvalidInputError, match=r"not a real number|not a number"):
        pack_vector(vector, D)


@pytest.mark.parametrize("value", [complex(1, 0), 1j, Decimal("0.5"), "0.5", None, [0.5]], ids=repr)
def test_values_that_are_not_real_numbers_are_refused(value: Any) -> None:
    with pytest.raises(InvalidInputError, match=r"not a real number|not a number"):
        pack_vector(_with(value), D)
    with pytest.raises(InvalidInputError, match=r"not a real number|not a number"):
        pack_vector([value] * D, D)


@pytest.mark.parametrize(
    "vector",
    [{float(i): 1.0 for i in range(D)}, set(range(1, D + 1)), "x" * D, b"x" * D],
    ids=["dict", "set", "str", "bytes"],
)
def test_mappings_sets_and_strings_are_not_vectors(vector: Any) -> None:
    with pytest.raises(InvalidInputError, match="sequence of floats"):
        pack_vector(vector, D)


@pytest.mark.parametrize(
    "vector",
    [
        _with(1.0, fill=0.0),
        _with(0.0, fill=1.0),
        [1.0, 0.0] * (D // 2),
        list(range(1, D + 1)),
        _with(1),
        _with(Fraction(1, 3)),
        [np.float32(0.5)] * D,
        _with(np.float64(1.0), fill=0.0),
        _with(np.int64(3)),
        tuple(_with(1.0, fill=0.0)),
    ],
    ids=[
        "one-hot",
        "one zero",
        "ones and zeros",
        "ints",
        "one int",
        "a Fraction",
        "numpy float32 scalars",
        "numpy float64 one-hot",
        "numpy int scalar",
        "tuple",
    ],
)
def test_real_numbers_that_look_like_bools_are_accepted(vector: Any) -> None:
    expected = np.array([float(x) for x in vector], dtype=">f4").tobytes()
    assert pack_vector(vector, D).to_binary()[4:] == expected


def test_an_embedders_2d_numpy_array_is_a_list_of_vectors() -> None:
    rows = np.eye(3, D, dtype=np.float32)
    packed = pack_vectors(rows, D, count=3)
    assert [p.to_binary() for p in packed] == [pack_vector(r.tolist(), D).to_binary() for r in rows]


async def test_search_by_vector_refuses_an_underflowing_vector_and_a_dict(
    store: MemoryStore,
) -> None:
    await store.add("something")
    with pytest.raises(InvalidInputError, match="all zeros"):
        await store.search_by_vector([1e-50] + [0.0] * (D - 1))
    with pytest.raises(InvalidInputError, match="sequence of floats"):
        await store.search_by_vector({float(i): 1.0 for i in range(D)})  # type: ignore[arg-type]
    hits = await store.search_by_vector([1e-30] + [0.0] * (D - 1))  # tiny but not zero
    assert len(hits) == 1 and hits[0].similarity == hits[0].similarity  # not NaN
