"""memory_text_query (migration 005) builds the query of a text of plain words from its english
lexemes alone, skipping memory_text_terms; memory_text_has_terms says when it may. The query is
the one memory_text_document would give, whatever the text."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Letters of each case, uncased letters, digits, the identifier punctuation, and other characters.
ALPHABET = "abzABZéÉ中ǅ019_.:/- ?,'\"()"
WORDS = [
    "decode",
    "Return",
    "the",
    "JSON",
    "value.",
    "raw_decode",
    "e.g.",
    "v3.12",
    "a-b",
    "iPhone",
]
# For each text: whether it may hold terms, its terms, its query and the query built from its whole
# memory_text_document (the path every text took before the shortcut).
COMPARE = (
    "SELECT t, memory_text_has_terms(t) AS may, memory_text_terms(t) AS terms, "
    "memory_text_query(t, $2::text[])::text AS query, "
    "memory_text_lexeme_query(memory_text_document_lexemes(memory_text_document(t), $2::text[]))"
    "::text AS reference "
    "FROM unnest($1::text[]) t"
)
COMMON = ["return", "valu"]
# Words of a few letters of each kind, where the case patterns of a token are found quickly.
TOKENS = st.lists(st.text(alphabet="aAB中", min_size=1, max_size=3), max_size=4).map(" ".join)
texts = st.lists(
    st.one_of(
        st.text(alphabet=ALPHABET, max_size=24),
        st.lists(st.sampled_from(WORDS), max_size=6).map(" ".join),
        TOKENS,
    ),
    min_size=1,
    max_size=40,
)


def test_a_text_without_terms_by_the_shortcut_has_none_and_the_same_query(
    migrated_dsn: str,
) -> None:
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(asyncpg.connect(migrated_dsn))
    try:

        @settings(
            max_examples=150,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(texts)
        def check(batch: list[str]) -> None:
            for row in loop.run_until_complete(conn.fetch(COMPARE, batch, COMMON)):
                assert row["may"] or row["terms"].strip() == "", row["t"]
                assert row["query"] == row["reference"], row["t"]

        check()
    finally:
        loop.run_until_complete(conn.close())
        loop.close()


@pytest.mark.parametrize(
    ("text", "may"),
    [
        ("Return the decoded value.", False),
        ("how do I use raw_decode?", True),
        ("read json/decoder.py", True),
        ("upgrade to v3.12", True),
        ("the XMLParser class", True),
        ("call getValue first", True),
        ("a中 mixed token", True),
        ("PLAIN WORDS, 2024", False),
    ],
)
async def test_memory_text_has_terms_tells_texts_that_may_hold_identifiers(
    migrated_dsn: str, text: str, may: bool
) -> None:
    conn = await asyncpg.connect(migrated_dsn)
    try:
        assert await conn.fetchval("SELECT memory_text_has_terms($1)", text) is may
    finally:
        await conn.close()
