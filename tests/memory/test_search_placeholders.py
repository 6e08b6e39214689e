"""The search statement's placeholders and its argument list come from one place: every ``$n``
in the text has an argument, every argument a ``$n``, in every shape a search can take."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from sam_db.memory._schema import StoreSchema
from sam_db.memory._search import prepare
from sam_db.memory._search_statement import LogFields, statement
from sam_db.memory._sql import Statements

SCHEMA = StoreSchema(
    statements=Statements.build("public", "public"),
    dimensions=3,
    iterative_scans=True,
    extension_schema="public",
)
FILTERS: list[dict[str, Any] | None] = [
    None,
    {"topic": "a"},
    {"n": {"$gt": 1}, "$or": [{"a.b": {"$in": [1, 2]}}, {"c": {"$exists": False}}]},
]


class Defaults:
    ef_search = 40
    access_log = True
    access_log_mode = "sync"
    log_query_text = True


def _numbers(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"\$(\d+)", text)}


@pytest.mark.parametrize(
    ("log", "exact", "session_id", "filter"),
    list(itertools.product([False, True], [False, True], [None, "s1"], FILTERS)),
)
def test_every_placeholder_has_its_argument_and_every_argument_its_placeholder(
    log: bool, exact: bool, session_id: str | None, filter: dict[str, Any] | None
) -> None:
    request = prepare(SCHEMA, Defaults(), "c", 10, filter, 0.5, session_id, None, exact, log)
    fields = LogFields(session_id, "query", b"hash") if log else None
    text, args = statement(request, [1.0, 0.0, 0.0], exact, fields)
    assert _numbers(text) == set(range(1, len(args) + 1))
    assert args[:3] == [[1.0, 0.0, 0.0], "c", "40"]
    assert args[len(args) - len(request.filter_args) :] == request.filter_args


@pytest.mark.parametrize(
    ("mode", "exact", "session_id", "filter"),
    list(itertools.product(["text", "hybrid"], [False, True], [None, "s1"], FILTERS)),
)
def test_text_and_hybrid_searches_number_their_query_and_its_common_lexemes_too(
    mode: str, exact: bool, session_id: str | None, filter: dict[str, Any] | None
) -> None:
    request = prepare(
        SCHEMA, Defaults(), "c", 10, filter, None, session_id, None, exact, None, mode
    )
    text, args = statement(request, [1.0, 0.0, 0.0], exact, None, "a query", ["common"])
    assert _numbers(text) == set(range(1, len(args) + 1))
    assert "a query" in args and ["common"] in args
    assert args[len(args) - len(request.filter_args) :] == request.filter_args
