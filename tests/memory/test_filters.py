"""The metadata filter language: compilation, semantics on real jsonb, and hostile input."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any

import pytest

from sam_db.errors import FilterError
from sam_db.memory import MemoryStore
from sam_db.memory._filter_limits import (
    MAX_DEPTH,
    MAX_FILTER_CHARS,
    MAX_IN_VALUES,
    MAX_INT_DIGITS,
    MAX_VALUE_DEPTH,
)
from sam_db.memory._filters import Params, compile_filter

# -- compilation ---------------------------------------------------------------------------------


def _compile(f: Any) -> tuple[str, list[Any]]:
    params = Params(start=4)
    return compile_filter(f, params), params.values


def test_equality_compiles_to_containment_with_a_json_parameter() -> None:
    sql, values = _compile({"kind": "note"})
    assert sql == "e.metadata @> $4::jsonb"
    assert values == ['{"kind":"note"}']


def test_nested_keys_become_nested_containment_documents() -> None:
    sql, values = _compile({"a.b.c": 1})
    assert sql == "e.metadata @> $4::jsonb"
    assert values == ['{"a":{"b":{"c":1}}}']


def test_several_keys_and_several_operators_mean_and() -> None:
    sql, values = _compile({"x": 1, "n": {"$gte": 1, "$lt": 5}})
    assert sql.count(" AND ") >= 2
    assert [v for v in values if isinstance(v, str) and v in ("1", "5")] == ["1", "5"]


def test_keys_travel_as_text_parameters_one_per_segment() -> None:
    sql, values = _compile({"a.b": {"$gt": 2}})
    # ``-> text`` reads object keys only (a path given as text[] to #> would index arrays).
    assert "(e.metadata -> $4::text -> $5::text)" in sql
    assert values[:2] == ["a", "b"]


HOSTILE = [
    "'; DROP TABLE memory_entries; --",
    'quote"d',
    "a$1 $$ b",
    "back\\slash",
    "semi;colon",
    "ünï €",
    "x' OR '1'='1",
    "*/ SELECT 1 /*",
]


@pytest.mark.parametrize("key", HOSTILE)
def test_hostile_keys_and_values_never_reach_the_sql_text(key: str) -> None:
    filters = [
        {key: key},
        {key: {"$in": [key, 1]}},
        {key: {"$gt": key}},
        {key: {"$exists": True}},
        {"$or": [{key: {"$ne": key}}, {"$not": {key: [key]}}]},
    ]
    for f in filters:
        sql, _ = _compile(f)
        assert key not in sql
        # Only placeholders, fixed keywords and casts: no quotes other than fixed literals.
        assert re.sub(r"'(string|number)'|COLLATE \"C\"", "", sql).count("'") == 0


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"$where": "1"}, "unknown operator"),
        ({"k": {"$regex": "x"}}, "unknown operator"),
        ({"k": {"$gt": 1, "plain": 2}}, "mixes operators"),
        ({"k": {"$in": "notalist"}}, "take a list"),
        ({"k": {"$gt": [1]}}, "needs a number"),
        ({"k": {"$gt": True}}, "needs a number"),
        ({"k": {"$exists": "yes"}}, "true or false"),
        ({"$and": []}, "non-empty list"),
        ({"$or": {"a": 1}}, "non-empty list"),
        ({"$not": [1]}, "must be a dict"),
        ({"": 1}, "cannot be empty"),
        ({"a..b": 1}, "empty segment"),
        ({"k": math.nan}, "finite"),
        ({"k": "nul\x00"}, "NUL"),
        ({"k\x00": 1}, "NUL"),
        ({"k": object()}, "not a JSON value"),
        ({"k": MappingProxyType({"a": 1})}, "not a JSON value"),  # json cannot encode it
        ({1: 1}, "must be strings"),
        ("kind=note", "must be a dict"),
    ],
)
def test_malformed_filters_raise_filter_error(bad: Any, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        _compile(bad)


def test_deeply_nested_or_huge_filters_are_refused() -> None:
    deep: dict[str, Any] = {"a": 1}
    for _ in range(40):
        deep = {"$not": deep}
    with pytest.raises(FilterError, match="deeper"):
        _compile(deep)
    with pytest.raises(FilterError, match="more than"):
        _compile({"$or": [{"k": i} for i in range(1000)]})


# -- semantics on real jsonb ---------------------------------------------------------------------

DOCS: list[dict[str, Any]] = [
    {"kind": "note", "n": 1, "tags": ["a", "b"], "who": {"name": "ann"}, "at": "2024-01-02"},
    {"kind": "note", "n": 5, "tags": ["b"], "who": {"name": "bob"}, "at": "2024-01-10"},
    {"kind": "task", "n": 10, "tags": [], "who": {"name": "ann", "age": 3}, "done": False},
    {"kind": "task", "n": "7", "flag": None},
    {"kind": "fact", "n": 2.5, "tags": ["a"]},
    {"other": True, HOSTILE[0]: HOSTILE[6]},
]

CASES: list[tuple[dict[str, Any], set[int]]] = [
    ({"kind": "note"}, {0, 1}),
    ({"kind": {"$eq": "task"}}, {2, 3}),
    ({"kind": {"$ne": "note"}}, {2, 3, 4, 5}),  # a missing key is "not equal"
    ({"kind": {"$in": ["note", "fact"]}}, {0, 1, 4}),
    ({"kind": {"$nin": ["note", "fact"]}}, {2, 3, 5}),
    ({"n": {"$gt": 2}}, {1, 2, 4}),  # the string "7" is not a number
    ({"n": {"$gte": 1, "$lt": 5}}, {0, 4}),
    ({"n": {"$lte": 2.5}}, {0, 4}),
    ({"at": {"$gte": "2024-01-05"}}, {1}),
    ({"at": {"$lt": datetime(2024, 1, 5, tzinfo=timezone.utc)}}, {0}),
    ({"who.name": "ann"}, {0, 2}),
    ({"who": {"name": "ann"}}, {0}),  # an object value means equality, not "contains"
    ({"tags": ["b"]}, {1}),  # an array value means equality
    ({"tags": {"$in": [["a"], []]}}, {2, 4}),
    ({"flag": None}, {3}),  # JSON null, not a missing key
    ({"flag": {"$exists": True}}, {3}),
    ({"done": {"$exists": False}}, {0, 1, 3, 4, 5}),
    ({"done": False}, {2}),
    ({"n": 1}, {0}),
    ({"$or": [{"kind": "fact"}, {"who.age": {"$gte": 3}}]}, {2, 4}),
    ({"$and": [{"kind": "note"}, {"n": {"$gt": 1}}]}, {1}),
    ({"$not": {"kind": "note"}}, {2, 3, 4, 5}),
    ({"kind": "note", "$not": {"tags": ["b"]}}, {0}),
    ({HOSTILE[0]: HOSTILE[6]}, {5}),
    ({}, {0, 1, 2, 3, 4, 5}),
]


@pytest.mark.parametrize("case", range(len(CASES)))
async def test_filters_select_what_they_say_on_real_jsonb(store: MemoryStore, case: int) -> None:
    entries = await store.add_many([f"doc {i}" for i in range(len(DOCS))], metadata=DOCS)
    assert [e.metadata for e in entries] == DOCS  # metadata comes back as it went in
    f, expected = CASES[case]
    hits = await store.search("doc 0", k=100, filter=f)
    assert {int(h.entry.content.split()[1]) for h in hits} == expected
    exact = await store.search("doc 0", k=100, filter=f, exact=True)
    assert {h.entry.id for h in exact} == {h.entry.id for h in hits}


async def test_a_bad_filter_raises_before_embedding(store: MemoryStore) -> None:
    with pytest.raises(FilterError):
        await store.search("q", filter={"$bogus": 1})
    assert store.embedder.texts_embedded == 0  # type: ignore[attr-defined]


# -- limits: nesting and sizes are bounded, with a FilterError saying what to do ---------------


def _nested_list(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _nested_object(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "bad",
    [
        {"k": _nested_list(3000)},
        {"k": _nested_object(3000)},
        {"k": {"$in": [_nested_list(3000)]}},
        {"k": {"$ne": _nested_object(3000)}},
    ],
    ids=["list", "object", "in-list", "ne-object"],
)
def test_a_value_nested_thousands_deep_raises_filter_error(bad: Any) -> None:
    with pytest.raises(FilterError, match=f"nested deeper than {MAX_VALUE_DEPTH}"):
        _compile(bad)


def test_a_value_nested_to_the_limit_compiles() -> None:
    _compile({"k": _nested_list(MAX_VALUE_DEPTH)})
    _compile({"k": {"$in": [_nested_object(MAX_VALUE_DEPTH)]}})


@pytest.mark.parametrize(
    "bad",
    [
        {"k": 10**5000},
        {"k": {"$gt": -(10**5000)}},
        {"k": {"$in": [1, 10**5000]}},
        {"k": [10**5000]},
    ],
    ids=["eq", "gt", "in", "in-array"],
)
def test_an_integer_with_thousands_of_digits_raises_filter_error(bad: Any) -> None:
    with pytest.raises(FilterError, match=f"more than {MAX_INT_DIGITS} digits"):
        _compile(bad)


def test_an_integer_at_the_digit_limit_compiles() -> None:
    _compile({"k": {"$lt": 10**MAX_INT_DIGITS - 1}, "j": -(10**MAX_INT_DIGITS - 1)})


def test_an_in_list_longer_than_the_limit_raises_filter_error() -> None:
    _compile({"k": {"$in": list(range(MAX_IN_VALUES))}})
    with pytest.raises(FilterError, match=f"more than {MAX_IN_VALUES} values"):
        _compile({"k": {"$nin": list(range(MAX_IN_VALUES + 1))}})


def test_a_filter_larger_than_the_size_limit_raises_filter_error() -> None:
    with pytest.raises(FilterError, match="larger than"):
        _compile({"k": "x" * (MAX_FILTER_CHARS + 1)})
    with pytest.raises(FilterError, match="larger than"):
        _compile({"k": {"$in": ["y" * 1000] * (MAX_FILTER_CHARS // 1000 + 1)}})


@pytest.mark.parametrize(
    "bad", [{"k": "\ud800"}, {"\udfff": 1}, {"k": {"$gt": "a\ud800"}}, {"k": {"$in": ["\ud800"]}}]
)
def test_a_lone_surrogate_in_a_filter_raises_filter_error(bad: Any) -> None:
    with pytest.raises(FilterError, match="surrogate"):
        _compile(bad)


# -- long $in lists: one array parameter, looked up by hash ----------------------------------------


def test_in_lists_of_any_length_compile_to_one_statement_shape() -> None:
    long_a, values_a = _compile({"k": {"$in": list(range(500))}})
    long_b, values_b = _compile({"k": {"$in": [str(i) for i in range(5000)]}})
    assert long_a == long_b
    assert len(values_a) == len(values_b)
    assert [len(json.loads(v)) for v in values_b if v.startswith("[")] == [5000]


async def test_a_long_in_list_is_looked_up_by_hash_not_scanned(store: MemoryStore) -> None:
    await store.add_many([f"doc {i}" for i in range(20)], metadata=[{"n": i} for i in range(20)])
    wanted = [*range(1000, 1000 + MAX_IN_VALUES - 2), 3, 7]
    f = {"n": {"$in": wanted}}
    plan = await store.explain_search("doc 1", k=5, filter=f, exact=True)
    assert "hashed SubPlan" in plan
    hits = await store.search("doc 1", k=5, filter=f)
    assert sorted(h.entry.metadata["n"] for h in hits) == [3, 7]
    hits = await store.search("doc 1", k=20, filter={"n": {"$nin": wanted}})
    assert len(hits) == 18


# -- numeric-looking key segments are object keys, for every operator ------------------------------

ARRAY_DOCS: list[dict[str, Any]] = [
    {"a": [10, 20]},  # 0: an array: "a.0" does not reach into it
    {"a": {"0": 10, "-1": 20, "01": 30}},  # 1: an object with numeric-looking keys
    {"a": {"1": 10}},  # 2
    {},  # 3: no "a" at all
]
SEGMENT_CASES: list[tuple[dict[str, Any], set[int]]] = [
    ({"a.0": 10}, {1}),
    ({"a.0": {"$eq": 10}}, {1}),
    ({"a.0": {"$in": [10, 99]}}, {1}),
    ({"a.0": {"$in": [[10], 10]}}, {1}),
    ({"a.0": {"$gt": 5}}, {1}),
    ({"a.0": {"$lte": 10}}, {1}),
    ({"a.0": {"$exists": True}}, {1}),
    ({"a.0": {"$exists": False}}, {0, 2, 3}),
    ({"a.0": {"$ne": 10}}, {0, 2, 3}),
    ({"a.0": {"$nin": [10]}}, {0, 2, 3}),  # a missing value matches $nin
    ({"a.0": {"$nin": [[1], 10]}}, {0, 2, 3}),
    ({"a.-1": 20}, {1}),
    ({"a.-1": {"$gte": 20}}, {1}),
    ({"a.01": {"$exists": True}}, {1}),
    ({"a.01": {"$in": [30]}}, {1}),
    ({"a.1": {"$gt": 0}}, {2}),  # not doc 0's second element, not doc 1's "01"
    ({"a.1": {"$in": [10, 20]}}, {2}),
]


@pytest.mark.parametrize("case", range(len(SEGMENT_CASES)))
async def test_numeric_looking_key_segments_are_object_keys_for_every_operator(
    store: MemoryStore, case: int
) -> None:
    await store.add_many([f"doc {i}" for i in range(len(ARRAY_DOCS))], metadata=ARRAY_DOCS)
    f, expected = SEGMENT_CASES[case]
    for exact in (False, True):
        hits = await store.search("doc 0", k=10, filter=f, exact=exact)
        assert {int(h.entry.content.split()[1]) for h in hits} == expected


@pytest.mark.parametrize("op", ["$not", "$and", "$or"])
def test_logic_nested_thousands_deep_raises_filter_error(op: str) -> None:
    deep: Any = {"a": 1}
    for _ in range(3000):
        deep = {op: deep} if op == "$not" else {op: [deep]}
    with pytest.raises(FilterError, match=f"nested deeper than {MAX_DEPTH} levels"):
        _compile(deep)
