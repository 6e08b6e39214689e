"""Differential test: generated filters select on real jsonb exactly what the reference selects.

A few hundred generated metadata documents go into a table once; each generated filter is compiled
and run as one SELECT of the matching ids (the GIN index used where the planner can), and the ids
are compared with ``filter_reference.matches``, the documented language in plain Python. The same
filter under ``NOT`` must select exactly the other rows (every compiled fragment is a non-NULL
boolean, which ``$not``, ``$ne`` and ``$nin`` rely on). Derandomized, so CI runs the same filters.
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import date, datetime
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sam_db.memory._filters import Params, compile_filter

from .filter_reference import matches

# Object keys, chosen so dotted keys meet arrays, numeric-looking keys and nesting.
SEGMENTS = ["a", "b", "0", "1", "-1", "01", "é"]
SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2,
    1.0,
    2.5,
    -0.0,
    0.1,
    10**20,
    2**53 + 1,
    float(2**53),
    2**60,
    float(2**60),  # not equal to 2**60: floats compare as the decimal Python writes for them
    "",
    "a",
    "b",
    "A",
    "ab",
    "1",
    "é",
    "2024-01-02",
    "2024-01-10",
    # for $like / $ilike: case, wildcard and escape characters inside stored strings
    "É",
    "a_b",
    "5%",
    "a\\b",
    "A\nb",
]
DOC_COUNT = 300


def _value(rng: random.Random, depth: int) -> Any:
    r = rng.random()
    if depth < 3 and r < 0.2:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if depth < 3 and r < 0.45:
        return {rng.choice(SEGMENTS): _value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    if r < 0.55:
        return rng.randint(-300, 300)
    return rng.choice(SCALARS)


def _documents() -> list[dict[str, Any]]:
    rng = random.Random(20261130)
    keys = [*SEGMENTS, "a.b"]  # "a.b" as one key: a dotted filter key never names it
    return [
        {rng.choice(keys): _value(rng, 1) for _ in range(rng.randint(0, 4))}
        for _ in range(DOC_COUNT)
    ]


DOCS = _documents()

# -- filters -------------------------------------------------------------------------------------

segments = st.sampled_from(SEGMENTS)
keys = st.lists(segments, min_size=1, max_size=3).map(".".join)
scalars = st.sampled_from(SCALARS) | st.integers(-300, 300)
# Up to two levels of arrays and objects (non-recursive strategies draw much faster).
shallow = scalars | st.lists(scalars, max_size=3)
values = shallow | st.dictionaries(segments, shallow, max_size=2) | st.lists(shallow, max_size=2)
comparables = (
    st.sampled_from([v for v in SCALARS if v is not None and not isinstance(v, bool)])
    | st.integers(-300, 300)
    | st.dates(date(2023, 12, 25), date(2024, 1, 15))
    | st.datetimes(datetime(2024, 1, 1), datetime(2024, 1, 12))
)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


numbers = st.sampled_from([v for v in SCALARS if _is_number(v)]) | st.integers(-300, 300)
texts = (
    st.sampled_from([v for v in SCALARS if isinstance(v, str)])
    | st.dates(date(2023, 12, 25), date(2024, 1, 15))
    | st.datetimes(datetime(2024, 1, 1), datetime(2024, 1, 12))
)
ranges = st.tuples(numbers, numbers) | st.tuples(texts, texts)
# Patterns from wildcards, escapes (of wildcards, of a backslash, of a letter) and characters
# that differ by case (ASCII and not).
like_pieces = ["a", "A", "b", "é", "É", "1", "-", "\n", "%", "_", "\\%", "\\_", "\\\\", "\\a"]
patterns = st.lists(st.sampled_from(like_pieces), max_size=4).map("".join)


def _long_list(seed: int) -> list[Any]:
    # Built from one drawn seed: drawing 100+ elements one by one would dominate the run time.
    rng = random.Random(seed)
    return [
        rng.choice(SCALARS) if rng.random() < 0.3 else rng.randint(-300, 300)
        for _ in range(rng.randint(95, 140))
    ]


# Short lists, and lists long enough for the compiler's form for long lists.
member_lists = st.lists(values, max_size=4) | st.integers(0, 2**32).map(_long_list)
operators = st.one_of(
    st.tuples(st.sampled_from(["$eq", "$ne"]), values),
    st.tuples(st.sampled_from(["$in", "$nin"]), member_lists),
    st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), comparables),
    st.tuples(st.just("$exists"), st.booleans()),
    st.tuples(st.just("$between"), ranges.map(list)),
    st.tuples(st.sampled_from(["$like", "$ilike"]), patterns),
)
conditions = values | st.lists(operators, min_size=1, max_size=3).map(dict)
field_filters = st.dictionaries(keys, conditions, min_size=1, max_size=2)
filters = st.recursive(
    field_filters | st.just({}),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda fs: {"$and": fs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda fs: {"$or": fs}),
        inner.map(lambda f: {"$not": f}),
        st.tuples(field_filters, inner).map(lambda t: {**t[0], "$not": t[1]}),
    ),
    max_leaves=6,
)


async def _load(conn: asyncpg.Connection[Any]) -> None:
    await conn.execute(
        "CREATE TABLE docs (id int PRIMARY KEY, metadata jsonb NOT NULL);"
        "CREATE INDEX ON docs USING gin (metadata jsonb_path_ops)"
    )
    await conn.execute(
        "INSERT INTO docs SELECT * FROM unnest($1::int[], $2::jsonb[])",
        list(range(len(DOCS))),
        [json.dumps(d, separators=(",", ":")) for d in DOCS],
    )
    # Let the planner pick the GIN index wherever it can serve a condition.
    await conn.execute("ANALYZE docs; SET enable_seqscan = off")


@pytest.mark.slow
def test_generated_filters_select_what_the_reference_evaluator_selects(db_dsn: str) -> None:
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(asyncpg.connect(db_dsn))
    try:
        loop.run_until_complete(_load(conn))

        @settings(
            max_examples=2000,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(filters)
        def check(flt: dict[str, Any]) -> None:
            params = Params()
            where = compile_filter(flt, params, column="t.metadata")
            row = loop.run_until_complete(
                conn.fetchrow(
                    "SELECT (SELECT coalesce(array_agg(id ORDER BY id), '{}') "  # noqa: S608
                    f"FROM docs t WHERE {where}), "
                    f"(SELECT count(*) FROM docs t WHERE NOT ({where}))",
                    *params.values,
                )
            )
            assert row is not None
            selected, negated = row
            expected = [i for i, doc in enumerate(DOCS) if matches(doc, flt)]
            assert selected == expected, [DOCS[i] for i in set(selected) ^ set(expected)][:3]
            assert negated == len(DOCS) - len(expected)

        check()
    finally:
        loop.run_until_complete(conn.close())
        loop.close()


# Every stored string the patterns are tried on, one document each (the documents above hold few
# strings at any one key, so this test compares the pattern semantics themselves densely).
PATTERN_SUBJECTS = sorted(
    {v for v in SCALARS if isinstance(v, str)} | {"", "aé", "Aé", "AÉ", "a-1", "é\n", "%", "_"}
)


def test_generated_patterns_match_what_the_reference_evaluator_matches(db_dsn: str) -> None:
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(asyncpg.connect(db_dsn))
    docs = [{"s": v} for v in PATTERN_SUBJECTS]
    try:

        @settings(max_examples=300, deadline=None, derandomize=True, database=None)
        @given(st.sampled_from(["$like", "$ilike"]), patterns)
        def check(op: str, pattern: str) -> None:
            flt = {"s": {op: pattern}}
            params = Params(start=2)
            where = compile_filter(flt, params, column="t.metadata")
            selected = loop.run_until_complete(
                conn.fetchval(
                    "SELECT coalesce(array_agg(i::int - 1 ORDER BY i), '{}') "  # noqa: S608
                    f"FROM unnest($1::jsonb[]) WITH ORDINALITY AS t(metadata, i) WHERE {where}",
                    [json.dumps(d) for d in docs],
                    *params.values,
                )
            )
            expected = [i for i, doc in enumerate(docs) if matches(doc, flt)]
            assert selected == expected, (pattern, [docs[i] for i in set(selected) ^ set(expected)])

        check()
    finally:
        loop.run_until_complete(conn.close())
        loop.close()


def test_the_generated_documents_cover_the_tricky_shapes() -> None:
    """The documents hold arrays under keys, numeric-looking keys and dotted keys."""
    flat = json.dumps(DOCS)
    assert any(isinstance(d.get("a"), list) and d["a"] for d in DOCS)
    assert any(isinstance(d.get("a"), dict) and "0" in d["a"] for d in DOCS)
    assert any("a.b" in d for d in DOCS)
    assert '"01"' in flat and '"-1"' in flat
    assert sum(1 for d in DOCS if not d) < DOC_COUNT // 4
