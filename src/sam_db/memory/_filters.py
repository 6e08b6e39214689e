"""The metadata filter language, compiled to parameterised SQL over a ``jsonb`` column.

A filter is a dict. ``{"key": value}`` is equality; dotted keys (``"a.b"``) reach into nested
objects; ``{"key": {"$op": value, ...}}`` applies operators (several operators, or several keys,
mean AND); ``$and`` / ``$or`` take lists of filters and ``$not`` one filter. Field operators:
``$eq $ne $in $nin $gt $gte $lt $lte $between $like $ilike $exists``. docs/memory.md defines the
semantics; every
operator reads a key the same way: each segment of a dotted key is an object key, never an array
position, so ``"a.0"`` names key ``"0"`` of object ``a`` and does not exist when ``a`` is an array.

Equality compiles to ``metadata @> $n::jsonb`` containment so a GIN ``jsonb_path_ops`` index can
serve it (containment only descends through object keys, which is the path rule above). Other
operators read the value with ``->`` and a ``text`` parameter per segment, which also only follows
object keys. Keys and values only ever travel as bind parameters: nothing from a filter is spliced
into the SQL text, whose only variable parts are placeholders this module numbers. Every fragment
is a non-NULL boolean, so ``$not``, ``$ne`` and ``$nin`` behave (a missing key is "not equal").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from ..errors import FilterError
from ._filter_limits import (
    MAX_DEPTH,
    MAX_IN_VALUES,
    MAX_INDEXED_IN,
    MAX_KEY_SEGMENTS,
    MAX_SEGMENT_LENGTH,
    FilterBudget,
)

_COMPARISONS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
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


# Compact JSON; one encoder for all (json.dumps with separators builds a new one per call).
_to_json = json.JSONEncoder(separators=(",", ":")).encode


def _nest(path: list[str], value: object) -> str:
    doc: object = value
    for segment in reversed(path):
        doc = {segment: doc}
    return _to_json(doc)


class _Path:
    """SQL expressions for the value at a key: as ``jsonb`` (NULL when missing) and as text.

    The segments become ``text`` parameters the first time an expression is asked for (equality
    needs none: its containment document carries the key).
    """

    def __init__(self, segments: list[str], column: str, params: Params) -> None:
        self.segments = segments
        self._column = column
        self._params = params
        self._exprs: tuple[str, str] | None = None

    def _build(self) -> tuple[str, str]:
        if self._exprs is None:
            steps = [self._params.add(s) + "::text" for s in self.segments]
            parent = self._column + "".join(f" -> {p}" for p in steps[:-1])
            # ``jsonb -> text`` reads an object's key and is NULL on anything else (arrays too).
            self._exprs = (f"({parent} -> {steps[-1]})", f"({parent} ->> {steps[-1]})")
        return self._exprs

    @property
    def value(self) -> str:
        return self._build()[0]

    @property
    def text(self) -> str:
        return self._build()[1]


class _Compiler(FilterBudget):
    def __init__(self, column: str, params: Params) -> None:
        super().__init__()
        self.column = column
        self.params = params

    def path(self, key: str) -> _Path:
        if not key:
            raise FilterError("filter keys cannot be empty")
        if key.startswith("$"):
            raise FilterError(
                f"unknown operator {key!r} (logical operators: $and, $or, $not; "
                "field operators go inside a key: {'key': {'$gt': 1}})"
            )
        self._string(key, "filter key")
        segments = key.split(".")
        if len(segments) > MAX_KEY_SEGMENTS:
            raise FilterError(f"filter key {key!r} is nested deeper than {MAX_KEY_SEGMENTS} levels")
        for s in segments:
            if not s:
                raise FilterError(f"filter key {key!r} has an empty segment")
            if len(s) > MAX_SEGMENT_LENGTH:
                raise FilterError(f"a segment of filter key is longer than {MAX_SEGMENT_LENGTH}")
        return _Path(segments, self.column, self.params)

    # -- filters ---------------------------------------------------------------------------------
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
                parts.append(self.field(key, value))
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

    def field(self, key: object, value: object) -> str:
        if not isinstance(key, str):
            raise FilterError(f"filter keys must be strings, got {key!r}")
        path = self.path(key)
        if not (
            isinstance(value, Mapping)
            and any(isinstance(k, str) and k.startswith("$") for k in value)
        ):
            return self.equal(path, key, value)
        if not all(isinstance(k, str) and k.startswith("$") for k in value):
            raise FilterError(
                f"filter for {key!r} mixes operators and plain keys; "
                "use 'a.b' for nested keys or only $-operators"
            )
        parts = []
        for op, arg in value.items():
            compile_op = _FIELD_OPERATORS.get(op)
            if compile_op is None:
                known = ", ".join(sorted(_FIELD_OPERATORS))
                raise FilterError(f"unknown operator {op!r} for {key!r}; known: {known}")
            parts.append(compile_op(self, path, key, arg))
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    # -- field operators -------------------------------------------------------------------------
    def contains(self, path: _Path, value: object) -> str:
        """``metadata @> {"a": {"b": value}}``: true when the key holds ``value`` (the index's form)."""
        return f"{self.column} @> {self.params.add(_nest(path.segments, value))}::jsonb"

    def equal(self, path: _Path, key: str, value: object) -> str:
        self._count()
        self.check_value(value, f"filter {key!r}")
        if _is_scalar(value):
            return self.contains(path, value)
        # Containment of an object or array is "includes", not "equals": keep @> for the index and
        # add the exact comparison (never NULL here: containment found the key).
        contains, found = self.contains(path, value), path.value
        return f"({contains} AND {found} = {self.params.add(_to_json(value))}::jsonb)"

    def member(self, path: _Path, key: str, values: object) -> str:
        if not isinstance(values, (list, tuple)):
            raise FilterError(f"$in / $nin for {key!r} take a list of values")
        if len(values) > MAX_IN_VALUES:
            raise FilterError(
                f"$in / $nin for {key!r} has more than {MAX_IN_VALUES} values; "
                "split the search, or tag the entries with a metadata key and filter on that"
            )
        self._count()
        self.check_value(values, f"filter {key!r}", -1)
        if not values:
            return "FALSE"
        # The values travel as one jsonb array and become a hashed sub-plan: one lookup per row,
        # however long the list (``= ANY(array)`` compares each value in turn under a generic
        # plan). Equal values always match by hash: jsonb hashes numbers by value (1 and 1.0).
        found = path.value
        listed = self.params.add(_to_json(values))
        test = f"COALESCE({found} IN (SELECT jsonb_array_elements({listed}::jsonb)), FALSE)"
        if len(values) > MAX_INDEXED_IN:
            return test
        # Equality implies containment: this redundant test lets the GIN index find candidates
        # where the conditions are not CASE-wrapped (exact searches). It comes second: in an HNSW
        # search most rows fail the hash test and AND stops there.
        docs = self.params.add([_nest(path.segments, v) for v in values])
        return f"({test} AND {self.column} @> ANY({docs}::jsonb[]))"

    def exists(self, path: _Path, key: str, arg: object) -> str:
        if not isinstance(arg, bool):
            raise FilterError(f"$exists for {key!r} takes true or false, got {arg!r}")
        self._count()
        return f"({path.value} {'IS NOT NULL' if arg else 'IS NULL'})"

    def compare(self, op: str, path: _Path, key: str, value: object) -> str:
        self._count()
        sql_op = _COMPARISONS[op]
        if isinstance(value, (datetime, date)):
            value = value.isoformat()
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise FilterError(
                f"{op} for {key!r} needs a number, a string or a datetime, got {value!r}"
            )
        self.check_value(value, f"filter {key!r}")
        # CASE (not AND) guarantees the type test runs before the cast: numbers compare as
        # numbers, strings byte-wise (COLLATE "C", so ISO dates order correctly); other JSON
        # types, and a missing key, never match.
        found, text = path.value, path.text
        if isinstance(value, str):
            v = self.params.add(value)
            return (
                f"(CASE WHEN jsonb_typeof({found}) = 'string' THEN "
                f'{text} COLLATE "C" {sql_op} {v}::text COLLATE "C" ELSE FALSE END)'
            )
        v = self.params.add(str(value))
        return (
            f"(CASE WHEN jsonb_typeof({found}) = 'number' THEN "
            f"{found}::numeric {sql_op} {v}::numeric ELSE FALSE END)"
        )

    def between(self, path: _Path, key: str, bounds: object) -> str:
        """``[low, high]``, both ends included: ``$gte low`` and ``$lte high`` in one condition."""
        if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
            raise FilterError(
                f"$between for {key!r} takes a list of two bounds [low, high], got {bounds!r}"
            )
        kinds = {_comparable_kind(b) for b in bounds}
        if None in kinds or len(kinds) != 1:
            raise FilterError(
                f"$between for {key!r} needs two numbers, or two strings / datetimes, "
                f"got {bounds!r}"
            )
        low, high = bounds
        return (
            f"({self.compare('$gte', path, key, low)} AND {self.compare('$lte', path, key, high)})"
        )

    def like(self, op: str, path: _Path, key: str, pattern: object) -> str:
        """SQL ``LIKE`` on string values: ``%`` any run, ``_`` one character, ``\\`` escapes.

        Under ``COLLATE "C"``, so ``$ilike`` folds ASCII letters only, the same on every server.
        """
        if not isinstance(pattern, str):
            raise FilterError(f"{op} for {key!r} takes a pattern string, got {pattern!r}")
        if _ends_in_escape(pattern):
            raise FilterError(
                f"{op} pattern for {key!r} ends with a lone escape character '\\'; "
                "write '\\\\' for a literal backslash"
            )
        self._count()
        self.check_value(pattern, f"filter {key!r}")
        found, text = path.value, path.text
        v = self.params.add(pattern)
        sql_op = "LIKE" if op == "$like" else "ILIKE"
        return (
            f"(CASE WHEN jsonb_typeof({found}) = 'string' THEN "
            f'{text} COLLATE "C" {sql_op} {v}::text ELSE FALSE END)'
        )


def _comparable_kind(value: object) -> str | None:
    """``"number"`` or ``"string"`` (dates and datetimes compare as strings), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, (str, datetime, date)):
        return "string"
    return None


def _ends_in_escape(pattern: str) -> bool:
    """Whether the pattern ends in an odd run of backslashes (an escape with nothing to escape)."""
    return (len(pattern) - len(pattern.rstrip("\\"))) % 2 == 1


def _negated(
    compile_op: Callable[[_Compiler, _Path, str, Any], str],
) -> Callable[[_Compiler, _Path, str, Any], str]:
    return lambda c, path, key, arg: f"(NOT {compile_op(c, path, key, arg)})"


def _comparison(op: str) -> Callable[[_Compiler, _Path, str, Any], str]:
    return lambda c, path, key, arg: c.compare(op, path, key, arg)


def _pattern(op: str) -> Callable[[_Compiler, _Path, str, Any], str]:
    return lambda c, path, key, arg: c.like(op, path, key, arg)


# Field operators: each compiles ``(compiler, path, key, argument)`` to a non-NULL boolean.
# Docs, this table and tests/memory/filter_reference.py's table change together.
_FIELD_OPERATORS: dict[str, Callable[[_Compiler, _Path, str, Any], str]] = {
    "$eq": _Compiler.equal,
    "$ne": _negated(_Compiler.equal),
    "$in": _Compiler.member,
    "$nin": _negated(_Compiler.member),
    "$exists": _Compiler.exists,
    **{op: _comparison(op) for op in _COMPARISONS},
    "$between": _Compiler.between,
    "$like": _pattern("$like"),
    "$ilike": _pattern("$ilike"),
}


def compile_filter(
    filter: Mapping[str, Any] | None, params: Params, *, column: str = "e.metadata"
) -> str:
    """Compile ``filter`` to a boolean SQL fragment over ``column``; bind values go to ``params``.

    ``column`` is SQL text chosen by the caller (never user input). Raises FilterError, naming
    the key or operator, for anything malformed or over a limit, before anything is sent.
    """
    if filter is None:
        return "TRUE"
    return _Compiler(column, params).filter(filter, 0)
