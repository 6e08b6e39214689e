"""Vector checks and packing: lists and numpy arrays give the same bytes and the same errors."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from sam_db.errors import DimensionMismatchError, InvalidInputError
from sam_db.memory._vectors import pack_vector

D = 1536


def _with(value: Any, at: int = 7) -> list[Any]:
    v: list[Any] = [0.25] * D
    v[at] = value
    return v


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_a_numpy_array_packs_to_the_same_bytes_as_its_list(dtype: Any) -> None:
    a = (np.arange(D) % 7 - 3).astype(dtype)
    assert pack_vector(a, D).to_binary() == pack_vector(a.tolist(), D).to_binary()


@pytest.mark.parametrize(
    ("values", "error", "match"),
    [
        (_with(math.nan), InvalidInputError, "non-finite value \\(nan at index 7\\)"),
        (_with(math.inf), InvalidInputError, "non-finite value \\(inf at index 7\\)"),
        (_with(1e39), InvalidInputError, "non-finite value \\(1e\\+39 at index 7\\)"),
        ([0.0] * D, InvalidInputError, "all zeros"),
        ([0.5] * (D - 1), DimensionMismatchError, "1535 dimensions"),
    ],
)
@pytest.mark.parametrize("as_numpy", [False, True])
def test_bad_vectors_raise_the_same_error_as_list_or_array(
    values: list[Any], error: type[Exception], match: str, as_numpy: bool
) -> None:
    value: Any = np.array(values, dtype=np.float64) if as_numpy else values
    with pytest.raises(error, match=match):
        pack_vector(value, D)


@pytest.mark.parametrize(
    "value",
    [_with("x"), _with(None), np.array(_with("x")), np.array(_with(None), dtype=object)],
)
def test_values_that_are_not_numbers_are_refused(value: Any) -> None:
    with pytest.raises(InvalidInputError, match="not a number"):
        pack_vector(value, D)


@pytest.mark.parametrize("as_numpy", [False, True])
def test_extreme_finite_float32_values_are_accepted_without_warnings(
    as_numpy: bool, recwarn: pytest.WarningsRecorder
) -> None:
    # Squares of these overflow float32 and underflow to zero: neither may look like an error.
    for scale in (3e38, 1e-40):
        values = [scale] * D
        value: Any = np.array(values, dtype=np.float32) if as_numpy else values
        assert pack_vector(value, D).to_list()[0] == pytest.approx(scale, rel=1e-3)
    assert not recwarn.list


@pytest.mark.parametrize(
    "values",
    [_with(math.nan, at=D - 1), _with(-math.inf, at=0)],
)
def test_a_float32_array_with_a_non_finite_value_names_its_index(values: list[Any]) -> None:
    at = next(i for i, v in enumerate(values) if not math.isfinite(v))
    with pytest.raises(InvalidInputError, match=f"at index {at}\\)"):
        pack_vector(np.array(values, dtype=np.float32), D)
