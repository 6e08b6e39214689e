"""The filter operators ``$like``, ``$ilike`` and ``$between``: semantics on real jsonb, bad operands.

The differential test (test_filter_semantics_fuzz.py) compares them with the reference evaluator on
generated filters; these tests pin the documented cases one by one.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from sam_db.errors import FilterError
from sam_db.memory import MemoryStore
from sam_db.memory._filters import Params, compile_filter

DOCS: list[dict[str, Any]] = [
    {"file": "json/decoder.py", "n": 1, "at": "2024-01-02"},
    {"file": "JSON/Encoder.PY", "n": 5, "at": "2024-01-10"},
    {"file": "50%_done", "n": 10, "at": "2024-02-01"},
    {"file": "Été.txt", "n": 2.5},
    {"file": 7, "n": "7"},
    {"other": True},
]


async def _selected(store: MemoryStore, flt: dict[str, Any]) -> set[int]:
    await store.add_many([f"doc {i}" for i in range(len(DOCS))], metadata=DOCS)
    hits = await store.search("doc 0", k=100, filter=flt)
    exact = await store.search("doc 0", k=100, filter=flt, exact=True)
    assert {h.entry.id for h in hits} == {h.entry.id for h in exact}
    return {int(h.entry.content.split()[1]) for h in hits}


def _compile(flt: Any) -> str:
    return compile_filter(flt, Params())


async def test_like_matches_string_values_by_pattern_case_sensitively(store: MemoryStore) -> None:
    assert await _selected(store, {"file": {"$like": "%.py"}}) == {0}


async def test_ilike_folds_ascii_case(store: MemoryStore) -> None:
    assert await _selected(store, {"file": {"$ilike": "json/%.py"}}) == {0, 1}


async def test_ilike_does_not_fold_non_ascii_letters(store: MemoryStore) -> None:
    # The same on every server whatever its locale: only A-Z fold.
    assert await _selected(store, {"file": {"$ilike": "été%"}}) == set()
    assert await _selected(store, {"file": {"$ilike": "ÉT%"}}) == {3}


async def test_like_underscore_is_one_character(store: MemoryStore) -> None:
    assert await _selected(store, {"file": {"$like": "json_decoder.py"}}) == {0}


async def test_a_backslash_makes_a_wildcard_literal(store: MemoryStore) -> None:
    assert await _selected(store, {"file": {"$like": "50\\%\\_%"}}) == {2}
    assert await _selected(store, {"file": {"$like": "5\\_%"}}) == set()


async def test_like_never_matches_numbers_or_missing_keys(store: MemoryStore) -> None:
    assert await _selected(store, {"file": {"$like": "%"}}) == {0, 1, 2, 3}
    assert await _selected(store, {"$not": {"file": {"$like": "%"}}}) == {4, 5}


async def test_between_includes_both_number_bounds(store: MemoryStore) -> None:
    assert await _selected(store, {"n": {"$between": [1, 5]}}) == {0, 1, 3}


async def test_between_compares_strings_and_dates(store: MemoryStore) -> None:
    assert await _selected(store, {"at": {"$between": ["2024-01-02", "2024-01-10"]}}) == {0, 1}
    assert await _selected(
        store, {"at": {"$between": [date(2024, 1, 3), datetime(2024, 2, 1)]}}
    ) == {1, 2}


async def test_between_with_low_above_high_matches_nothing(store: MemoryStore) -> None:
    assert await _selected(store, {"n": {"$between": [5, 1]}}) == set()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"f": {"$like": 1}}, "pattern string"),
        ({"f": {"$ilike": None}}, "pattern string"),
        ({"f": {"$like": "abc\\"}}, "lone escape"),
        ({"f": {"$like": "a\\\\\\"}}, "lone escape"),
        ({"f": {"$like": "nul\x00"}}, "NUL"),
        ({"f": {"$between": 1}}, "two bounds"),
        ({"f": {"$between": [1]}}, "two bounds"),
        ({"f": {"$between": [1, 2, 3]}}, "two bounds"),
        ({"f": {"$between": [1, "2"]}}, "two numbers, or two strings"),
        ({"f": {"$between": [True, 2]}}, "two numbers, or two strings"),
        ({"f": {"$between": [None, 2]}}, "two numbers, or two strings"),
        ({"f": {"$between": [float("inf"), 2]}}, "finite"),
    ],
)
def test_bad_operands_of_like_and_between_raise_filter_error(bad: Any, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        _compile(bad)


def test_an_escaped_backslash_at_the_end_of_a_pattern_compiles() -> None:
    params = Params()
    sql = compile_filter({"f": {"$like": "a\\\\"}}, params)
    assert "LIKE" in sql and params.values[-1] == "a\\\\"


def test_patterns_travel_as_bind_parameters() -> None:
    params = Params()
    sql = compile_filter({"f": {"$ilike": "'; DROP TABLE x; --%"}}, params)
    assert "DROP" not in sql and "'; DROP TABLE x; --%" in params.values
