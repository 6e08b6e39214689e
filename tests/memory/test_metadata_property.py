"""Generated metadata: refused with InvalidInputError, or accepted and then stored by PostgreSQL.

Never a builtin error, never a server error after the check: what ``metadata_json`` lets through,
jsonb takes, and it comes back equal (numbers compared as numbers: jsonb prints ``1e20`` as an
integer).
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sam_db.errors import InvalidInputError
from sam_db.memory._inputs import metadata_json

# Mostly ordinary values; now and then one that jsonb (or a documented limit) refuses: any code
# point (surrogates and NUL included), non-finite floats, huge ints, types JSON has no form for,
# non-string keys.
_plain_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)
# One troublesome code point in otherwise plain text: a surrogate, NUL, or any code point.
_odd_text = st.tuples(
    _plain_text,
    st.one_of(
        st.sampled_from(["\x00", "\ud800", "\udfff", "\ud83d\ude00", "\ude00", "\u2028"]),
        st.characters(codec=None, categories=None),
    ),
).map("".join)
_odd = st.one_of(
    _odd_text,
    st.sampled_from([math.nan, math.inf, -math.inf, b"bytes", 1j, object()]),
    st.integers(4220, 4290).map(lambda digits: 10**digits),  # over the limit, still printable
)
_good = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(-(10**20), 10**20).map(lambda n: n * 10**4000),  # near the limit, under it
    st.floats(allow_nan=False, allow_infinity=False),
    _plain_text,
)


def _mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` nine times in ten (one_of would pick each branch equally often)."""
    return st.integers(0, 9).flatmap(lambda i: bad if i == 0 else good)


_scalars = _mostly(_good, _odd)
_keys = _mostly(_plain_text, st.one_of(_odd_text, st.sampled_from([1, None, 2.5])))
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(_keys, inner, max_size=3),
    ),
    max_leaves=6,
)
_metadata = st.dictionaries(_keys, _values, max_size=4)


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values, numbers compared by value (jsonb's numeric keeps them exactly)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if a == b:
            return True
        try:  # a float printed by jsonb in full, read back as an int: equal to 15 digits
            return math.isclose(float(a), float(b), rel_tol=1e-15, abs_tol=0.0)
        except OverflowError:
            return False
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.mark.slow
def test_generated_metadata_is_refused_up_front_or_stored_by_postgresql(db_dsn: str) -> None:
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(asyncpg.connect(db_dsn))
    seen = {"accepted": 0, "refused": 0}
    try:

        @settings(
            max_examples=300,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(_metadata)
        def check(meta: dict[Any, Any]) -> None:
            try:
                text = metadata_json(meta)
            except InvalidInputError:
                seen["refused"] += 1
                return
            seen["accepted"] += 1
            stored = loop.run_until_complete(conn.fetchval("SELECT $1::jsonb::text", text))
            assert _same(json.loads(stored), json.loads(text)), (meta, stored)

        check()
    finally:
        loop.run_until_complete(conn.close())
        loop.close()
    # Both outcomes were exercised, many times.
    assert seen["accepted"] > 50 and seen["refused"] > 50, seen
