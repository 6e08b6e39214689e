"""Bench-only changes to MemoryStore's hybrid fusion, for bench/retrieval_eval.py's experiments.

They patch the library in this process only (its module constants, and the statement text that
``sam_db.memory._text_search.hybrid_search`` returns), to measure what a change would do before
making it in the library. ``rrf_k``, ``min_fusion_depth`` and ``coverage_power`` replace
``RRF_K``, ``MIN_FUSION_DEPTH`` and ``COVERAGE_POWER`` (0: the text leg's RRF term unweighted,
as before the library weighted it by the entry's coverage, its share of the query's lexemes; on
such an older library ``coverage_power`` rewrites the statement to weight it). ``text_weight``
multiplies the text leg's RRF term, ``word_text_weight`` does so for queries without identifier
terms only. ``common_rows`` is applied by the caller, which replaces
``memory_text_common_rows()`` in its scratch database. The asserts fail loudly when the
library's statement no longer has the shape these patches rewrite.
"""

# ruff: noqa: S608 -- SQL text here is the library's own statement text and constants, no input
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Options:
    """What bench/retrieval_eval.py runs: the query counts, the losses to show, and the
    experiments (None: the library as it is)."""

    n_ident: int = 300
    n_ordinary: int = 300
    show_losses: int = 0
    rrf_k: int | None = None
    min_fusion_depth: int | None = None
    text_weight: float | None = None
    word_text_weight: float | None = None
    coverage_power: float | None = None
    common_rows: float | None = None
    analyze: bool = True
    experiments: list[str] = field(default_factory=list)


def apply_experiments(options: Options) -> None:
    """Changes the hybrid fusion in this process (bench only; see the module docstring)."""
    from sam_db.memory import _text_search

    if options.rrf_k is not None:
        _text_search.RRF_K = options.rrf_k
        options.experiments.append(f"RRF_K={options.rrf_k}")
    if options.min_fusion_depth is not None:
        _text_search.MIN_FUSION_DEPTH = options.min_fusion_depth
        options.experiments.append(f"MIN_FUSION_DEPTH={options.min_fusion_depth}")
    if options.coverage_power is not None:
        options.experiments.append(f"text term x coverage^{options.coverage_power:g}")
        if hasattr(_text_search, "COVERAGE_POWER"):  # the library weights by coverage itself
            _text_search.COVERAGE_POWER = options.coverage_power  # type: ignore[assignment]
            options.coverage_power = None
    weights = (options.text_weight, options.word_text_weight, options.coverage_power)
    if any(w is not None for w in weights):
        _weight_text_leg(options)
    if options.common_rows is not None:
        options.experiments.append(f"memory_text_common_rows()={options.common_rows:g}")


_TEXT_SCORE = re.compile(r"ts_rank\(e\.content_tsv, (.+?), \d+\) AS score FROM")


def coverage_sql(tsquery: str, tsvector: str = "e.content_tsv") -> str:
    """The share of the lexemes of ``tsquery`` (an OR of lexemes) that ``tsvector`` holds."""
    lexemes = f"regexp_split_to_table(({tsquery})::text, ' [|] ')"
    lexeme = "replace(btrim(x, ''''), '''''', '''')"
    return (
        f"((SELECT count(*) FROM {lexemes} x "
        f"WHERE {lexeme} = ANY(tsvector_to_array({tsvector})))::float8 "
        f"/ greatest((SELECT count(*) FROM {lexemes} x), 1))"
    )


def _text_term(sql: str) -> str:
    """The fusion's text term in the statement ``sql``: weighted by coverage (the library's since
    COVERAGE_POWER) or not."""
    from sam_db.memory import _text_search

    rrf = f"({_text_search.RRF_K} + t.text_rank)"
    power = getattr(_text_search, "COVERAGE_POWER", None)
    terms = [f"COALESCE(power(t.text_coverage, {power}) / {rrf}, 0)", f"COALESCE(1.0 / {rrf}, 0)"]
    found = [term for term in terms if term in sql]
    assert found, "the fusion's text term changed: update bench/retrieval_fusion.py"
    return found[0]


def _weight_text_leg(options: Options) -> None:
    """Multiplies the hybrid fusion's text term: by ``text_weight`` for every query, by
    ``word_text_weight`` for queries without identifier terms (whose tsquery holds words only),
    and, on a library that does not weight by coverage, by the entry's coverage of the query's
    lexemes to the power ``coverage_power``."""
    from sam_db.memory import _search_statement, _text_search

    original = _text_search.hybrid_search
    if options.text_weight is not None:
        options.experiments.append(f"text weight={options.text_weight}")
    if options.word_text_weight is not None:
        options.experiments.append(f"text weight without identifiers={options.word_text_weight}")

    def weighted(
        entries: str, found: str, distance: str, query: Any, match: str, depth: str, limit: str
    ) -> str:
        sql = original(entries, found, distance, query, match, depth, limit)
        term = _text_term(sql)
        weight = str(options.text_weight or 1.0)
        if options.word_text_weight is not None:
            # The query text's parameter, in a memory_text_query(...) call (a TextQuery's
            # lexemes expression since the library weights by coverage).
            text = query if isinstance(query, str) else query.lexemes
            call = re.search(r"(\S*?)memory_text_query(?:_lexemes)?\((\$\d+)", text)
            assert call, "memory_text_query's call changed: update bench/retrieval_fusion.py"
            document = f"{call.group(1)}memory_text_document({call.group(2)}::text)"
            weight = (
                f"(CASE WHEN ts_filter({document}, '{{a}}') = ''::tsvector "
                f"THEN {options.word_text_weight} ELSE {weight} END)"
            )
        if options.coverage_power is not None:
            # The text leg's best `depth` matches carry their tsvector out of its LIMIT, and
            # their coverage is computed for those rows only.
            score = _TEXT_SCORE.search(sql)
            ranked = "SELECT id, row_number() OVER (ORDER BY score DESC, id) AS text_rank FROM ("
            assert score and ranked in sql, "the text leg changed: update the bench's coverage"
            coverage = f"SELECT id, {coverage_sql(score.group(1), 'tsv')} AS coverage, "
            sql = sql.replace(ranked, ranked.replace("SELECT id, ", coverage))
            with_tsv = "AS score, e.content_tsv AS tsv FROM"
            sql = sql.replace(score.group(0), score.group(0).replace("AS score FROM", with_tsv))
            weight = f"{weight} * COALESCE(power(t.coverage, {options.coverage_power}), 0)"
        return sql.replace(term, f"{weight} * {term}")

    _search_statement.hybrid_search = weighted  # type: ignore[attr-defined]
