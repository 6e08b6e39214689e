"""A filter's limits, and the checks that keep its values within them and within what jsonb holds.

``_filters``' compiler is a ``FilterBudget``: it counts a filter's conditions and the characters
of its keys and values against these limits as it compiles them.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import FilterError

# Limits (docs/memory.md lists them): a filter is a query, so generous bounds that no real one
# reaches keep hostile or runaway input from costing more than a clear error.
MAX_DEPTH = 16  # $and / $or / $not inside each other
MAX_CONDITIONS = 500  # field conditions in one filter (an $in list is one)
MAX_KEY_SEGMENTS = 16
MAX_SEGMENT_LENGTH = 255
MAX_VALUE_DEPTH = 32  # arrays / objects inside each other within one value
MAX_INT_DIGITS = 4300  # Python's default limit for int -> str (json needs the text)
MAX_IN_VALUES = 10_000  # values in one $in / $nin list
MAX_FILTER_CHARS = 4_000_000  # keys, strings and digits of the whole filter
# $in lists up to this long also get a containment test that the GIN index can serve; longer
# ones are looked up by hash only (an index scan per value would cost more than it saves).
MAX_INDEXED_IN = 100

_INT_BOUND = 10**MAX_INT_DIGITS


class FilterBudget:
    """What one filter has used of its limits so far, and the checks of its keys and values."""

    def __init__(self) -> None:
        self.conditions = 0
        self.chars = 0

    def _count(self) -> None:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise FilterError(
                f"filter has more than {MAX_CONDITIONS} conditions; "
                "use $in for many values of one key"
            )

    def _grow(self, chars: int) -> None:
        self.chars += chars
        if self.chars > MAX_FILTER_CHARS:
            raise FilterError(
                f"filter is larger than {MAX_FILTER_CHARS:,} characters of keys and values; "
                "narrow it, or store what it selects on as a metadata key and filter on that"
            )

    def _string(self, text: str, what: str) -> None:
        self._grow(len(text))
        if "\x00" in text:
            raise FilterError(f"{what}: strings and keys cannot contain NUL bytes")
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise FilterError(
                    f"{what}: a string is not valid Unicode (lone surrogate)"
                ) from None

    def _number(self, value: int | float, what: str) -> None:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise FilterError(f"{what}: {value!r} has no JSON form; use a finite number")
        elif isinstance(value, int) and not isinstance(value, bool):
            if not -_INT_BOUND < value < _INT_BOUND:
                raise FilterError(
                    f"{what}: an integer has more than {MAX_INT_DIGITS} digits; "
                    "compare with a shorter number"
                )
            self._grow(value.bit_length() // 3)  # about its decimal digits, without str()

    def check_value(self, value: object, where: str, depth: int = 0) -> None:
        """Refuse what jsonb cannot hold and what exceeds the limits (iteratively: no recursion).

        ``depth`` is the nesting level ``value`` starts at (-1 for a list of values).
        """
        stack: list[tuple[object, int]] = [(value, depth)]
        while stack:
            item, depth = stack.pop()
            if isinstance(item, str):
                self._string(item, where)
            elif isinstance(item, (int, float)):
                self._number(item, where)
            elif item is None:
                continue
            elif isinstance(item, (dict, list, tuple)):  # what json encodes as objects, arrays
                if depth >= MAX_VALUE_DEPTH:
                    raise FilterError(
                        f"{where}: a value is nested deeper than {MAX_VALUE_DEPTH} levels "
                        "of arrays and objects; compare with a shallower value or a dotted key"
                    )
                self._grow(len(item))  # a character or more per element: bounds the walk
                if isinstance(item, dict):
                    for k, v in item.items():
                        if not isinstance(k, str):
                            raise FilterError(f"{where}: object keys must be strings, got {k!r}")
                        self._string(k, where)
                        stack.append((v, depth + 1))
                else:
                    self._elements(item, depth + 1, stack)
            else:
                raise FilterError(f"{where}: {type(item).__name__} is not a JSON value")

    def _elements(self, items: list[Any] | tuple[Any, ...], depth: int, stack: list[Any]) -> None:
        """Account for plain ints and ASCII strings inline (most of a long ``$in`` list); queue
        everything else for ``check_value``'s full checks."""
        chars = 0
        for item in items:
            kind = type(item)
            if kind is int and -_INT_BOUND < item < _INT_BOUND:
                chars += item.bit_length() // 3
            elif kind is str and item.isascii() and "\x00" not in item:
                chars += len(item)
            else:
                stack.append((item, depth))
        self._grow(chars)
