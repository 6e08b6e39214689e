"""Vectors that are not what they seem: float32 underflow, booleans, complex numbers, mappings.

And the values that look like those but are fine (exact 0.0 and 1.0, ints, numpy scalars).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# -- generated vectors ------------------------------------------------------------------------

_SMALL = 8
_elements = st.one_of(
    st.floats(),  # NaN, infinities, subnormals, beyond float32's range
    st.floats(min_value=-1e-44, max_value=1e-44),  # around float32's smallest values
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([0.0, -0.0, 1.0, 0, 1, True, False, np.True_, np.float32(0.5), np.int64(-3)]),
    st.sampled_from([None, "1", 1j, Decimal("0.5"), [1.0]]),
)


def _expected(values: list[Any]) -> bytes | None:
    """The packed floats of ``values``, or None when the store must refuse them."""
    if any(
        isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number))
        for v in values
    ):
        return None
    try:
        wide = [float(v) for v in values]
    except OverflowError:  # an int beyond float's range
        return None
    with np.errstate(over="ignore"):
        packed = np.array(wide, dtype=np.float64).astype(">f4")
    if not np.all(np.isfinite(packed)) or not np.any(packed):
        return None
    return packed.tobytes()


# A list that starts with Python floats and holds numpy float32 scalars further on is summed in
# float32 from there (NumPy 2's promotion), which warns near float32's limit; the store then sums
# it again as Python floats, so the outcome is right.
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@settings(max_examples=1500, deadline=None, derandomize=True, database=None)
@given(st.lists(_elements, min_size=_SMALL, max_size=_SMALL), st.booleans())
def test_generated_vectors_are_packed_exactly_or_refused(values: list[Any], as_tuple: bool) -> None:
    expected = _expected(values)
    try:
        packed = pack_vector(tuple(values) if as_tuple else values, _SMALL).to_binary()[4:]
    except InvalidInputError:
        assert expected is None, values
        return
    assert packed == expected, values
