"""memory_text_pair_query (migration 005): what a hybrid search's text leg matches with, the
entries holding two of the query's lexemes when it has three or more."""

from __future__ import annotations

import asyncpg
import pytest

TEXTS = ["alpha beta", "alpha", "gamma delta", "beta gamma", "delta"]
MATCHES = (
    "SELECT array_agg(t ORDER BY t) FROM unnest($1::text[]) t "
    "WHERE to_tsvector('simple', t) @@ memory_text_pair_query($2::text[])"
)


@pytest.mark.parametrize(
    ("lexemes", "matched"),
    [
        (["alpha", "beta", "gamma"], ["alpha beta", "beta gamma"]),  # two of three
        (["alpha", "delta"], ["alpha", "alpha beta", "delta", "gamma delta"]),  # either of two
        (["delta"], ["delta", "gamma delta"]),
    ],
)
async def test_three_or_more_lexemes_match_entries_holding_two_of_them(
    migrated_dsn: str, lexemes: list[str], matched: list[str]
) -> None:
    conn = await asyncpg.connect(migrated_dsn)
    try:
        assert await conn.fetchval(MATCHES, TEXTS, lexemes) == matched
    finally:
        await conn.close()


async def test_more_than_24_lexemes_match_any_of_them(migrated_dsn: str) -> None:
    lexemes = [f"w{i}" for i in range(25)]
    conn = await asyncpg.connect(migrated_dsn)
    try:
        assert await conn.fetchval(MATCHES, ["w3", "w1 w2", "x"], lexemes) == ["w1 w2", "w3"]
    finally:
        await conn.close()


async def test_lexemes_with_quotes_and_backslashes_match_as_themselves(migrated_dsn: str) -> None:
    lexemes = ["it's", "a\\b", "c:d"]
    holds = "SELECT array_to_tsvector($1::text[]) @@ memory_text_pair_query($2::text[])"
    conn = await asyncpg.connect(migrated_dsn)
    try:
        assert await conn.fetchval(holds, ["it's", "a\\b"], lexemes) is True
        assert await conn.fetchval(holds, ["it's", "ab"], lexemes) is False
    finally:
        await conn.close()
