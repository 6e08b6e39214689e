"""The metadata filter language, compiled to parameterised SQL over a ``jsonb`` column.

A filter is a dict. ``{"key": value}`` is equality; dotted keys (``"a.b"``) reach into nested
objects; ``{"key": {"$op": value, ...}}`` applies operators (several operators, or several keys,
mean AND); ``$and`` / ``$or`` take lists of filters and ``$not`` one filter. Field operators:
``$eq $ne $in $nin $gt $gte $lt $lte $exists``.

Equality compiles to ``metadata @> $n::jsonb`` containment so a GIN ``jsonb_path_ops`` index can
serve it. Keys and values only ever travel as bind parameters (paths as ``text[]``): nothing from a
filter is spliced into the SQL text, whose only variable parts are placeholders this module numbers.
Every fragment is a non-NULL boolean, so ``$not`` and ``$ne`` behave (a missing key is "not equal").
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from ..errors import FilterError

MAX_DEPTH = 16
MAX_CONDITIONS = 500
MAX_KEY_SEGMENTS = 16
MAX_SEGMENT_LENGTH = 255

_COMPARISONS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_FIELD_OPERATORS = frozenset({"$eq", "$ne", "$in", "$nin", "$exists", *_COMPARISONS})
_LOGICAL = frozenset({"$and", "$or", "$not"})


class Params:
    """Collects bind parameters and hands out their placeholders (``$n``), starting at ``start``."""

    def __init__(self, start: int = 1) -> None:
        self.start = start
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${self.start + len(self.values) - 1}"


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _check_value(value: object, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise FilterError(f"{where}: {value!r} has no JSON form; use a finite number")
    if isinstance(value, str):
        if "\x00" in value:
            raise FilterError(f"{where}: strings cannot contain NUL bytes")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str) or "\x00" in k:
                raise FilterError(f"{where}: object keys must be strings without NUL bytes")
            _check_value(v, where)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _check_value(v, where)
    elif not _is_scalar(value):
        raise FilterError(f"{where}: {type(value).__name__} is not a JSON value")


def _path(key: object) -> list[str]:
    if not isinstance(key, str):
        raise FilterError(f"filter keys must be strings, got {key!r}")
    if not key:
        raise FilterError("filter keys cannot be empty")
    if key.startswith("$"):
        raise FilterError(
            f"unknown operator {key!r} (logical operators: $and, $or, $not; "
            "field operators go inside a key: {'key': {'$gt': 1}})"
        )
    if "\x00" in key:
        raise FilterError("filter keys cannot contain NUL bytes")
    segments = key.split(".")
    if len(segments) > MAX_KEY_SEGMENTS:
        raise FilterError(f"filter key {key!r} is nested deeper than {MAX_KEY_SEGMENTS} levels")
    for s in segments:
        if not s:
            raise FilterError(f"filter key {key!r} has an empty segment")
        if len(s) > MAX_SEGMENT_LENGTH:
            raise FilterError(f"a segment of filter key is longer than {MAX_SEGMENT_LENGTH}")
    return segments


# Compact JSON; one encoder for all (json.dumps with separators builds a new one per call).
_to_json = json.JSONEncoder(separators=(",", ":")).encode


def _nest(path: list[str], value: object) -> str:
    doc: object = value
    for segment in reversed(path):
        doc = {segment: doc}
    return _to_json(doc)


class _Compiler:
    def __init__(self, column: str, params: Params) -> None:
        self.column = column
        self.params = params
        self.conditions = 0

    def _count(self) -> None:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise FilterError(f"filter has more than {MAX_CONDITIONS} conditions")

    def filter(self, node: object, depth: int) -> str:
        if depth > MAX_DEPTH:
            raise FilterError(f"filter is nested deeper than {MAX_DEPTH} levels")
        if not isinstance(node, Mapping):
            raise FilterError(f"a filter must be a dict, got {type(node).__name__}")
        parts: list[str] = []
        for key, value in node.items():
            if isinstance(key, str) and key in _LOGICAL:
                parts.append(self.logical(key, value, depth))
            else:
                parts.append(self.field(_path(key), key, value))
        if not parts:
            return "TRUE"
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def logical(self, op: str, value: object, depth: int) -> str:
        if op == "$not":
            return f"(NOT {self.filter(value, depth + 1)})"
        if not isinstance(value, (list, tuple)) or not value:
            raise FilterError(f"{op} takes a non-empty list of filters")
        joiner = " AND " if op == "$and" else " OR "
        return "(" + joiner.join(self.filter(v, depth + 1) for v in value) + ")"

    def field(self, path: list[str], key: str, value: object) -> str:
        if isinstance(value, Mapping) and any(
            isinstance(k, str) and k.startswith("$") for k in value
        ):
            if not all(isinstance(k, str) and k.startswith("$") for k in value):
                raise FilterError(
                    f"filter for {key!r} mixes operators and plain keys; "
                    "use 'a.b' for nested keys or only $-operators"
                )
            parts = [self.operator(path, key, op, arg) for op, arg in value.items()]
            return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"
        return self.equal(path, key, value)

    def path_param(self, path: list[str]) -> str:
        return self.params.add(path) + "::text[]"

    def equal(self, path: list[str], key: str, value: object) -> str:
        self._count()
        _check_value(value, f"filter {key!r}")
        contains = f"{self.column} @> {self.params.add(_nest(path, value))}::jsonb"
        if _is_scalar(value):
            return contains
        # Containment of an object or array is "includes", not "equals": keep @> for the index and
        # add the exact comparison.
        exact = (
            f"{self.column} #> {self.path_param(path)} = {self.params.add(_to_json(value))}::jsonb"
        )
        return f"({contains} AND {exact})"

    def member(self, path: list[str], key: str, values: object) -> str:
        if not isinstance(values, (list, tuple)):
            raise FilterError(f"$in / $nin for {key!r} take a list of values")
        self._count()
        _check_value(list(values), f"filter {key!r}")
        if not values:
            return "FALSE"
        if all(_is_scalar(v) for v in values):
            docs = [_nest(path, v) for v in values]
            return f"{self.column} @> ANY({self.params.add(docs)}::jsonb[])"
        encoded = [_to_json(v) for v in values]
        return (
            f"COALESCE({self.column} #> {self.path_param(path)} = "
            f"ANY({self.params.add(encoded)}::jsonb[]), FALSE)"
        )

    def compare(self, path: list[str], key: str, op: str, value: object) -> str:
        self._count()
        sql_op = _COMPARISONS[op]
        if isinstance(value, (datetime, date)):
            value = value.isoformat()
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise FilterError(
                f"{op} for {key!r} needs a number, a string or a datetime, got {value!r}"
            )
        _check_value(value, f"filter {key!r}")
        p = self.path_param(path)
        # CASE (not AND) guarantees the type test runs before the cast: numbers compare as
        # numbers, strings byte-wise (COLLATE "C", so ISO dates order correctly); other JSON
        # types never match.
        if isinstance(value, str):
            v = self.params.add(value)
            return (
                f"(CASE WHEN jsonb_typeof({self.column} #> {p}) = 'string' THEN "
                f'({self.column} #>> {p}) COLLATE "C" {sql_op} {v}::text COLLATE "C" '
                "ELSE FALSE END)"
            )
        v = self.params.add(str(value))
        return (
            f"(CASE WHEN jsonb_typeof({self.column} #> {p}) = 'number' THEN "
            f"({self.column} #>> {p})::numeric {sql_op} {v}::numeric ELSE FALSE END)"
        )

    def operator(self, path: list[str], key: str, op: str, arg: object) -> str:
        if op not in _FIELD_OPERATORS:
            raise FilterError(
                f"unknown operator {op!r} for {key!r}; known: {', '.join(sorted(_FIELD_OPERATORS))}"
            )
        if op == "$eq":
            return self.equal(path, key, arg)
        if op == "$ne":
            return f"(NOT {self.equal(path, key, arg)})"
        if op == "$in":
            return self.member(path, key, arg)
        if op == "$nin":
            return f"(NOT {self.member(path, key, arg)})"
        if op == "$exists":
            if not isinstance(arg, bool):
                raise FilterError(f"$exists for {key!r} takes true or false, got {arg!r}")
            self._count()
            test = "IS NOT NULL" if arg else "IS NULL"
            return f"({self.column} #> {self.path_param(path)} {test})"
        return self.compare(path, key, op, arg)


def compile_filter(
    filter: Mapping[str, Any] | None, params: Params, *, column: str = "e.metadata"
) -> str:
    """Compile ``filter`` to a boolean SQL fragment over ``column``; bind values go to ``params``.

    ``column`` is SQL text chosen by the caller (never user input). Raises FilterError, naming
    the key or operator, for anything malformed.
    """
    if filter is None:
        return "TRUE"
    return _Compiler(column, params).filter(filter, 0)
