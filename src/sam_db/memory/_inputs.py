"""Validation of what callers hand the store: texts, metadata, ids, names, expiry, limits.

Everything is checked before the first statement runs, so bad input never leaves a partial write.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from ..errors import InvalidInputError

# A text (and a metadata document as JSON) holds at most this many characters: far beyond what an
# embedding model takes, and small enough that a batch's statement stays far below PostgreSQL's
# 1 GB message limit (add_many also cuts batches by size, see MAX_BATCH_CHARS).
MAX_TEXT_CHARS = 10_000_000
MAX_BATCH_CHARS = 64_000_000
# session_id / workflow_id are btree-indexed, and a btree entry holds at most 2,704 bytes:
# 512 characters are at most 2,048 bytes of UTF-8.
MAX_LINK_CHARS = 512
# Nesting of metadata dicts and lists; deeper values are refused (not a RecursionError).
MAX_METADATA_DEPTH = 32


def check_text(text: object, *, what: str = "text") -> str:
    """Return ``text`` if it can be stored: a non-empty str without NUL bytes, valid as UTF-8,
    at most MAX_TEXT_CHARS characters."""
    if not isinstance(text, str):
        raise InvalidInputError(f"{what} must be a str, got {type(text).__name__}")
    if not text:
        raise InvalidInputError(f"{what} is empty: there is nothing to remember")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidInputError(
            f"{what} has {len(text):,} characters, more than the limit of {MAX_TEXT_CHARS:,}: "
            "split it (embedding models take far less)"
        )
    if "\x00" in text:
        raise InvalidInputError(f"{what} contains a NUL byte, which PostgreSQL text cannot store")
    _check_unicode(text, what)
    return text


def _check_unicode(text: str, what: str) -> None:
    # PostgreSQL stores UTF-8: a surrogate code point (lone, or a pair split in two code
    # points) has no UTF-8 form.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"{what} is not valid Unicode: surrogate code point at index {exc.start} "
            "(decode your bytes with errors='replace', or fix the source)"
        ) from None


def content_hash(text: str) -> bytes:
    """sha256 of the UTF-8 text: the per-collection deduplication key (``content_hash``)."""
    return hashlib.sha256(text.encode("utf-8")).digest()


# Integers beyond Python's default int-to-str limit (4,300 digits) cannot become JSON text.
_MAX_INT_BITS = 14_000


def _plain_json(value: object, path: str, depth: int) -> Any:
    """``value`` as plain JSON data (dicts, lists, str, int, float, bool, None), or
    InvalidInputError naming the first place PostgreSQL's jsonb (or a documented limit) refuses:
    NUL and surrogates in strings and keys, non-finite numbers, nesting beyond
    MAX_METADATA_DEPTH, non-string keys, types JSON has no form for."""
    if value is None or value is True or value is False:
        return value
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInputError(f"{path} contains a NUL byte, which jsonb cannot store")
        _check_unicode(value, path)
        return value
    if isinstance(value, int):
        if value.bit_length() > _MAX_INT_BITS:
            raise InvalidInputError(f"{path} is an integer too large for JSON (over 4,200 digits)")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(
                f"{path} is {value!r}: JSON and jsonb have no non-finite numbers"
            )
        return value
    if depth >= MAX_METADATA_DEPTH:
        raise InvalidInputError(
            f"{path} is nested more than {MAX_METADATA_DEPTH} levels deep (the metadata limit)"
        )
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidInputError(f"metadata keys must be strings, got {k!r} in {path}")
            if "\x00" in k:
                raise InvalidInputError(f"a key in {path} contains a NUL byte")
            _check_unicode(k, f"a key in {path}")
            out[k] = _plain_json(v, f"{path}.{k}", depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_plain_json(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    raise InvalidInputError(
        f"{path} is a {type(value).__name__}, which JSON has no form for "
        "(use str, int, float, bool, None, lists and dicts)"
    )


def metadata_json(metadata: object, *, what: str = "metadata") -> str:
    """Metadata as JSON text for a ``jsonb`` parameter, refusing what jsonb cannot hold.

    At most MAX_METADATA_DEPTH levels of nesting and MAX_TEXT_CHARS characters of JSON.
    """
    if metadata is None:
        return "{}"
    if not isinstance(metadata, Mapping):
        raise InvalidInputError(f"{what} must be a dict, got {type(metadata).__name__}")
    plain = _plain_json(metadata, what, 0)
    text = json.dumps(plain, allow_nan=False, separators=(",", ":"))
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidInputError(
            f"{what} is {len(text):,} characters of JSON, more than the limit of {MAX_TEXT_CHARS:,}"
        )
    return text


def check_texts(texts: object) -> list[str]:
    """Return add_many's texts as a list, each checked by :func:`check_text`."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise InvalidInputError("add_many takes a list of texts (use add() for one text)")
    return [check_text(t, what=f"texts[{i}]") for i, t in enumerate(texts)]


def metadata_list(metadata: object, count: int) -> list[str]:
    """Per-text metadata JSON for ``add_many``: None, one dict for all, or one dict per text."""
    if metadata is None or isinstance(metadata, Mapping):
        one = metadata_json(metadata)
        return [one] * count
    if isinstance(metadata, Sequence) and not isinstance(metadata, (str, bytes)):
        if len(metadata) != count:
            raise InvalidInputError(
                f"metadata has {len(metadata)} items for {count} texts: "
                "pass None, one dict for all, or one dict per text"
            )
        return [metadata_json(m, what=f"metadata[{i}]") for i, m in enumerate(metadata)]
    raise InvalidInputError("metadata must be None, a dict, or a list of dicts (one per text)")


def check_batch(texts: object, metadata: object, batch_size: object) -> tuple[list[str], list[str]]:
    """add_many's texts and their metadata JSON (see :func:`check_texts`,
    :func:`metadata_list`), with ``batch_size`` (None: the store's) checked too."""
    items = check_texts(texts)
    metas = metadata_list(metadata, len(items))
    if batch_size is not None:
        check_int(batch_size, "batch_size", 1, 100_000)
    return items, metas


def check_link(value: object, what: str) -> str | None:
    """A session or workflow id: None or a storable str of at most MAX_LINK_CHARS characters."""
    if value is None:
        return None
    if isinstance(value, str) and len(value) > MAX_LINK_CHARS:
        raise InvalidInputError(
            f"{what} has {len(value):,} characters, more than the limit of {MAX_LINK_CHARS} "
            "(it is indexed): use a shorter id, e.g. a hash of this one"
        )
    return check_text(value, what=what)


def check_collection(name: object) -> str:
    """A collection name as the schema allows it: 1-200 characters, no NUL."""
    name = check_text(name, what="collection name")
    if len(name) > 200:
        raise InvalidInputError("collection name is longer than 200 characters")
    return name


def to_uuid(value: object) -> uuid.UUID:
    """An entry id given as UUID or str."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise InvalidInputError(f"{value!r} is not an entry id (a UUID)")


def to_uuids(value: object) -> list[uuid.UUID]:
    """One id or an iterable of ids, as a list of UUIDs."""
    if isinstance(value, (uuid.UUID, str)):
        return [to_uuid(value)]
    if isinstance(value, Iterable):
        return [to_uuid(v) for v in value]
    raise InvalidInputError(f"expected an entry id or a list of ids, got {type(value).__name__}")


def expiry(ttl: object, expires_at: object) -> datetime | None:
    """The absolute expiry from ``ttl`` (positive timedelta) or ``expires_at`` (aware datetime)."""
    if ttl is not None and expires_at is not None:
        raise InvalidInputError("pass ttl or expires_at, not both")
    if ttl is not None:
        if not isinstance(ttl, timedelta) or ttl <= timedelta(0):
            raise InvalidInputError(f"ttl must be a positive timedelta, got {ttl!r}")
        try:
            return datetime.now(timezone.utc) + ttl
        except OverflowError:
            raise InvalidInputError(
                f"ttl={ttl!r} ends after the year 9999: pass a shorter ttl, or none"
            ) from None
    if expires_at is not None:
        return check_aware(expires_at, "expires_at")
    return None


def check_aware(value: object, what: str) -> datetime:
    """A timezone-aware datetime (a naive one is ambiguous: which zone?)."""
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{what} must be a datetime, got {value!r}")
    if value.utcoffset() is None:
        raise InvalidInputError(f"{what} must be timezone-aware (e.g. datetime.now(UTC))")
    try:
        value.astimezone(timezone.utc)  # what the driver sends: it must exist in UTC
    except OverflowError:
        raise InvalidInputError(
            f"{what}={value!r} is outside the years 1-9999 once in UTC"
        ) from None
    return value


def check_int(value: object, what: str, low: int, high: int) -> int:
    """An int in ``[low, high]`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInputError(f"{what} must be an int from {low} to {high}, got {value!r}")
    return value


def check_similarity(value: object) -> float | None:
    """``min_similarity``: None or a number in [-1, 1]."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not -1 <= value <= 1:
        raise InvalidInputError(f"min_similarity must be a number in [-1, 1], got {value!r}")
    return float(value)
