"""Models built from rows (writing pydantic's own attributes) behave like validated ones.

``sam_db.memory._rows`` skips ``model_construct`` for speed (bench/rows_bench.py) by setting the
attributes pydantic itself sets. Should a pydantic release add or rename one, these fail: CI runs
them on the lowest and the newest pydantic that pyproject.toml allows.
"""

from __future__ import annotations

import copy
import pickle

import pytest
from pydantic import ValidationError

from sam_db.memory import MemoryEntry, SearchHit
from sam_db.memory._rows import entry_from_row, hits_from_rows

from .test_models import _row, _values


def _pair() -> tuple[SearchHit, SearchHit]:
    values = _values()
    (built,) = hits_from_rows([_row(values, distance=0.5)], "default", None)
    checked = SearchHit(
        entry=MemoryEntry.model_validate(values),
        similarity=0.5,
        rank=1,
        vector_rank=1,  # a vector search ranks by its own leg only
        text_rank=None,
    )
    return built, checked


def test_built_models_have_every_attribute_a_validated_one_has() -> None:
    built, checked = _pair()
    for obj, ref in ((built, checked), (built.entry, checked.entry)):
        assert set(vars(obj)) == set(vars(ref))
        for name in ("__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"):
            assert getattr(obj, name) == getattr(ref, name), name
        # Any slot pydantic keeps on an instance, built the same way.
        for name in getattr(type(ref), "__slots__", ()):
            assert getattr(obj, name, None) == getattr(ref, name, None), name


def test_built_models_copy_pickle_and_print_like_validated_ones() -> None:
    built, checked = _pair()
    assert repr(built) == repr(checked)
    assert pickle.loads(pickle.dumps(built)) == checked
    assert copy.deepcopy(built) == checked
    assert built.model_copy(update={"rank": 2}) == checked.model_copy(update={"rank": 2})
    assert built.model_dump(mode="json") == checked.model_dump(mode="json")
    assert SearchHit.model_validate(built.model_dump()) == checked


def test_built_models_are_frozen_like_validated_ones() -> None:
    built, _ = _pair()
    with pytest.raises(ValidationError):
        built.rank = 3  # type: ignore[misc]
    entry = entry_from_row(_row(_values()), "default")
    with pytest.raises(ValidationError):
        entry.content = "changed"  # type: ignore[misc]
    assert hash(entry.id)
