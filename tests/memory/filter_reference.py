"""A pure-Python evaluator of the metadata filter language, as docs/memory.md defines it.

The reference the differential test compares the SQL compiler with. It follows the documented
rules literally and is written for clarity, not speed:

- a dotted key is split on ``.``; each segment is an object key (never an array position), and the
  value at a key exists when every segment names a key of an object;
- JSON equality: same JSON type; numbers equal by decimal value (``1 == 1.0``; a float is the
  decimal Python writes for it); ``true``/``false`` are not numbers; arrays in order; objects by
  keys and values;
- comparisons: a number operand matches numbers, a string (or datetime, as its ISO string)
  matches strings by code point; anything else does not match;
- ``$between [low, high]``: ``$gte low`` and ``$lte high``;
- ``$like`` / ``$ilike``: string values only; ``%`` any run of characters (newlines too), ``_``
  exactly one character, a backslash makes the next character literal; ``$ilike`` folds ASCII
  letters only (``É`` is not ``é``);
- a missing value never satisfies a field operator, so its negations (``$ne``, ``$nin``,
  ``$exists: false``, ``$not``) match it.

Field operators live in ``FIELD_OPERATORS``: one function ``(value, argument) -> bool`` per
operator, where ``value`` is ``MISSING`` for an absent key. A new operator is one entry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

MISSING: Any = object()


def lookup(doc: Mapping[str, Any], key: str) -> Any:
    """The value at dotted ``key`` in ``doc``, or MISSING."""
    current: Any = doc
    for segment in key.split("."):
        if not isinstance(current, dict) or segment not in current:
            return MISSING
        current = current[segment]
    return current


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _decimal(v: int | float) -> Decimal:
    # The decimal value of the number's JSON text, which is what PostgreSQL stores and compares.
    return Decimal(json.dumps(v))


def json_equal(a: Any, b: Any) -> bool:
    """Equality of two JSON values as jsonb defines it."""
    if _is_number(a) and _is_number(b):
        return _decimal(a) == _decimal(b)
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return type(a) is type(b) and a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return False


def _compare(test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def op(value: Any, arg: Any) -> bool:
        if isinstance(arg, (datetime, date)):
            arg = arg.isoformat()
        if _is_number(arg) and _is_number(value):
            return test(_decimal(value), _decimal(arg))
        if isinstance(arg, str) and isinstance(value, str):
            return test(value, arg)
        return False

    return op


def _eq(value: Any, arg: Any) -> bool:
    return value is not MISSING and json_equal(value, arg)


def _in(value: Any, arg: Any) -> bool:
    return any(_eq(value, a) for a in arg)


def _like_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            parts.append(re.escape(next(chars)))
        elif ch == "%":
            parts.append(".*")
        elif ch == "_":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.DOTALL)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _like(fold: bool) -> Callable[[Any, Any], bool]:
    def op(value: Any, pattern: str) -> bool:
        if not isinstance(value, str):
            return False
        if fold:
            value, pattern = value.translate(_ASCII_LOWER), pattern.translate(_ASCII_LOWER)
        return _like_regex(pattern).fullmatch(value) is not None

    return op


_gte = _compare(lambda x, y: x >= y)
_lte = _compare(lambda x, y: x <= y)

FIELD_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": _eq,
    "$ne": lambda v, a: not _eq(v, a),
    "$in": _in,
    "$nin": lambda v, a: not _in(v, a),
    "$gt": _compare(lambda x, y: x > y),
    "$gte": _gte,
    "$lt": _compare(lambda x, y: x < y),
    "$lte": _lte,
    "$between": lambda v, a: _gte(v, a[0]) and _lte(v, a[1]),
    "$like": _like(fold=False),
    "$ilike": _like(fold=True),
    "$exists": lambda v, a: (v is not MISSING) == a,
}


def _field(doc: Mapping[str, Any], key: str, condition: Any) -> bool:
    value = lookup(doc, key)
    if isinstance(condition, Mapping) and any(k.startswith("$") for k in condition):
        return all(FIELD_OPERATORS[op](value, arg) for op, arg in condition.items())
    return _eq(value, condition)


def matches(doc: Mapping[str, Any], flt: Mapping[str, Any]) -> bool:
    """Whether ``doc`` (a metadata dict) satisfies filter ``flt``."""
    for key, condition in flt.items():
        if key == "$and":
            ok = all(matches(doc, f) for f in condition)
        elif key == "$or":
            ok = any(matches(doc, f) for f in condition)
        elif key == "$not":
            ok = not matches(doc, condition)
        else:
            ok = _field(doc, key, condition)
        if not ok:
            return False
    return True
