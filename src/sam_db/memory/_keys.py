"""Keys: a caller's stable id for an entry, unique per collection (migration 005's ``key``).

``add(..., key=k)`` / ``add_many(..., keys=[...])`` are upserts: a key not stored yet gets a new
entry; a stored key gets this call's text, metadata, links and expiry, its vector re-embedded only
when the text changed. Identical content is still stored once per collection, so a keyed text
that the collection already holds
- under the same key: its vector is kept;
- as a live entry without a key (no entry has this key yet): that entry takes the key;
- under another live key, or as a keyless entry while the key names another one: InvalidInputError
  (as ``update`` refuses a text stored elsewhere); an expired holder is deleted instead.

Writes are one transaction per batch: expired holders deleted, keyless holders keyed, then one
``INSERT ... ON CONFLICT (collection_id, key) DO UPDATE``. The unique constraints decide every race
between writers of one key or one text; a write that lost one (a unique violation on the other
constraint, or the vector it meant to reuse gone) is planned again from a fresh read.
"""

# ruff: noqa: S608 -- SQL here is built from quote_ident()-quoted names and placeholders only
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from ..errors import BatchWriteError, ConfigurationError, InvalidInputError, MemoryStoreError
from . import _inputs as inp
from ._checked import CheckedConnection
from ._keyed_write import RETRIED, KeyedCall, KeyedRow, write_attempt
from ._models import MemoryEntry
from ._rows import entry_from_row
from ._sql import LIVE, Statements
from ._write import ContextOf

MAX_KEY_CHARS = 512  # the column's CHECK; a btree entry holds at most 2,704 bytes
# Plans of one call at most: each retry follows a write another writer of the same key or
# text won, so more than a few means the entries keep changing under the call.
_ATTEMPTS = 4


def check_key(key: object, what: str = "key") -> str:
    """A key as the column allows it: a str of 1-512 characters, no NUL, valid Unicode."""
    if isinstance(key, str) and len(key) > MAX_KEY_CHARS:
        raise InvalidInputError(
            f"{what} has {len(key):,} characters, more than the limit of {MAX_KEY_CHARS} "
            "(it is indexed): use a shorter id, e.g. a hash of this one"
        )
    return inp.check_text(key, what=what)


def check_keys(keys: object, count: int) -> list[str]:
    """``add_many``'s keys: one str per text, no key twice."""
    if isinstance(keys, (str, bytes)) or not isinstance(keys, Sequence):
        raise InvalidInputError("keys must be a list of str, one per text")
    if len(keys) != count:
        raise InvalidInputError(f"keys has {len(keys)} items for {count} texts: give one per text")
    seen: dict[str, int] = {}
    for i, k in enumerate(keys):
        check_key(k, f"keys[{i}]")
        if k in seen:
            raise InvalidInputError(
                f"keys[{i}] repeats keys[{seen[k]}] ({k!r}): a key names one entry; "
                "give each text its own key"
            )
        seen[k] = i
    return list(keys)


def _require_keys(sql: Statements) -> None:
    if not sql.keys:
        raise ConfigurationError(
            "keys need the key column of migration 005: run `sam-db migrate` on this database"
        )


def _get_by_key_sql(sql: Statements) -> str:
    return (
        f"SELECT {sql.entry_columns} FROM {sql.entries} e WHERE e.collection_id = "
        f"(SELECT c.id FROM {sql.collections} c WHERE c.name = $1) AND e.key = $2 AND {LIVE}"
    )


async def get_by_key(
    connect: Callable[..., CheckedConnection], sql: Statements, key: str, collection: str
) -> MemoryEntry | None:
    """The entry of ``collection`` with this key, or None (none, expired, no such collection)."""
    key = check_key(key)
    collection = inp.check_collection(collection)
    _require_keys(sql)
    async with connect(read_only=True) as conn:
        row = await conn.fetchrow(_get_by_key_sql(sql), collection, key)
    return None if row is None else entry_from_row(row, collection)


async def store_keyed(
    context: ContextOf,
    texts: list[str],
    keys: list[str],
    collection: str,
    metas: list[str],
    *,
    session_id: str | None,
    workflow_id: str | None,
    ttl: timedelta | None,
    expires_at: datetime | None,
    single: bool,
    batch_size: int | None = None,
) -> list[MemoryEntry]:
    """Upsert validated ``texts`` under ``keys``; one entry per text, in input order."""
    ctx = context()
    _require_keys(ctx.sql)
    call = KeyedCall(
        inp.check_collection(collection),
        inp.check_link(session_id, "session_id"),
        inp.check_link(workflow_id, "workflow_id"),
        inp.expiry(ttl, expires_at),
        single,
        batch_size or ctx.batch_size,
    )
    rows = [
        KeyedRow(i, k, t, inp.content_hash(t), m)
        for i, (k, t, m) in enumerate(zip(keys, texts, metas, strict=True))
    ]
    _refuse_repeated_texts(rows)
    done: dict[str, MemoryEntry] = {}
    for attempt in range(1, _ATTEMPTS + 1):
        todo = [r for r in rows if r.key not in done]
        try:
            await write_attempt(ctx, call, todo, done)
            return [done[k] for k in keys]
        except RETRIED as exc:
            if attempt == _ATTEMPTS:
                raise _failure(exc, call, rows, done) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _refuse_repeated_texts(rows: list[KeyedRow]) -> None:
    first: dict[bytes, int] = {}
    for r in rows:
        if r.content_hash in first:
            raise InvalidInputError(
                f"texts[{r.position}] repeats texts[{first[r.content_hash]}] under another key: "
                "a collection stores a text once, under one key"
            )
        first[r.content_hash] = r.position


def _failure(
    exc: BaseException, call: KeyedCall, rows: list[KeyedRow], done: dict[str, Any]
) -> Exception:
    if call.single:
        return MemoryStoreError(
            f"adding key {rows[0].key!r} kept losing races with other writers of this key or "
            f"text ({type(exc).__name__}: {exc}); try again"
        )
    committed = [done[r.key] for r in rows if r.key in done]
    return BatchWriteError(
        f"add_many with keys kept losing races with other writers ({type(exc).__name__}: {exc}); "
        f"{len(committed)} of {len(rows)} input texts are stored: call it again",
        batch=0,
        committed=len(committed),
        entries=committed,
    )


async def add(
    context: ContextOf,
    text: str,
    key: str,
    collection: str,
    metadata: Mapping[str, Any] | None,
    session_id: str | None,
    workflow_id: str | None,
    *,
    ttl: timedelta | None,
    expires_at: datetime | None,
) -> MemoryEntry:
    """MemoryStore.add with ``key``: one upsert; a failure raises as itself."""
    inp.check_text(text)
    key = check_key(key)
    entries = await store_keyed(
        context,
        [text],
        [key],
        collection,
        [inp.metadata_json(metadata)],
        session_id=session_id,
        workflow_id=workflow_id,
        ttl=ttl,
        expires_at=expires_at,
        single=True,
    )
    return entries[0]


async def add_many(
    context: ContextOf,
    texts: Sequence[str],
    keys: object,
    collection: str,
    metadata: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None,
    *,
    session_id: str | None,
    workflow_id: str | None,
    ttl: timedelta | None,
    expires_at: datetime | None,
    batch_size: int | None,
) -> list[MemoryEntry]:
    """MemoryStore.add_many with ``keys``: one entry per text, in input order."""
    items, metas = inp.check_batch(texts, metadata, batch_size)
    checked = check_keys(keys, len(items))
    if not items:
        return []
    return await store_keyed(
        context,
        items,
        checked,
        collection,
        metas,
        session_id=session_id,
        workflow_id=workflow_id,
        ttl=ttl,
        expires_at=expires_at,
        single=False,
        batch_size=batch_size,
    )
