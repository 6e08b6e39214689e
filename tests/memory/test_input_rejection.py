"""Bad input is refused with a typed error before any embedding call or statement: nothing written.

Each case is something Python accepts but PostgreSQL (or the store's documented limits) refuses:
lone surrogates, NUL bytes in text or jsonb, non-finite numbers, over-deep or over-large values,
out-of-range expiry, arguments of the wrong type.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

import asyncpg
import pytest

from sam_db.errors import ConfigurationError, EmbeddingError, FilterError, InvalidInputError
from sam_db.memory import MemoryStore, embedder_from_function
from sam_db.memory._inputs import MAX_LINK_CHARS, MAX_METADATA_DEPTH, MAX_TEXT_CHARS
from sam_db.testing import HashEmbedder

D = 1536


async def _rows(dsn: str) -> tuple[int, int, int]:
    """How many entries, collections and access-log rows the database holds."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM memory_entries), (SELECT count(*) FROM "
            "memory_collections), (SELECT count(*) FROM memory_access_log)"
        )
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2])
    finally:
        await conn.close()


async def _refused(
    case: str, aw: Awaitable[Any], match: str = "", error: type[Exception] = InvalidInputError
) -> None:
    """Await ``aw`` and check that it raised ``error`` (matching ``match``); failures name the
    case (one database serves every case of a behaviour, keeping the suite fast)."""
    try:
        await aw
    except error as exc:
        if not re.search(match, str(exc)):
            pytest.fail(f"{case}: {exc!r} does not match {match!r}")
        return
    except Exception as exc:
        pytest.fail(f"{case}: raised {exc!r}, not {error.__name__}")
    pytest.fail(f"{case}: nothing raised")


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


def _circular() -> dict[str, Any]:
    value: dict[str, Any] = {}
    value["self"] = value
    return value


class _NoOffset(tzinfo):
    def utcoffset(self, dt: datetime | None) -> None:
        return None

    def dst(self, dt: datetime | None) -> None:
        return None

    def tzname(self, dt: datetime | None) -> str:
        return "nowhere"


_EAST = timezone(timedelta(hours=1))
_WEST = timezone(timedelta(hours=-1))

BAD_METADATA: dict[str, Any] = {
    "lone surrogate in a value": {"a": "ok", "b": "x\ud800y"},
    "lone surrogate in a key": {"\udc80": 1},
    "surrogate pair as two code points": {"a": "\ud83d\ude00"},
    "NUL in a value": {"a": "x\x00"},
    "NUL in a key": {"a\x00": 1},
    "NaN": {"a": float("nan")},
    "infinity": {"a": [1, float("-inf")]},
    "surrogate deep inside": {"a": [1, {"b": ["\udfff"]}]},
    "nested 3000 deep": _nested(3000),
    "nested one level too deep": _nested(MAX_METADATA_DEPTH + 1),
    "circular": _circular(),
    "integer with 5000 digits": {"a": 10**4999},
    "non-string key": {1: "a"},
    "not JSON": {"a": object()},
    "bytes": {"a": b"raw"},
    "too large": {"a": "x" * (MAX_TEXT_CHARS + 1)},
}


async def test_bad_metadata_in_one_of_600_texts_writes_nothing_and_embeds_nothing(
    store: MemoryStore, embedder: HashEmbedder, migrated_dsn: str
) -> None:
    texts = [f"text {i}" for i in range(600)]
    for case, meta in BAD_METADATA.items():
        metas: list[dict[str, Any] | None] = [{"i": i} for i in range(600)]
        metas[550] = meta
        call = store.add_many(texts, metadata=metas, batch_size=100)
        await _refused(case, call, r"metadata\[550\]")
    assert embedder.calls == 0
    assert await _rows(migrated_dsn) == (0, 0, 0)


async def test_bad_metadata_is_refused_by_add_update_and_create_collection(
    store: MemoryStore, embedder: HashEmbedder, migrated_dsn: str
) -> None:
    for case, meta in BAD_METADATA.items():
        await _refused(case, store.add("hello", collection="fresh", metadata=meta), "metadata")
        await _refused(case, store.create_collection("other", metadata=meta), "metadata")
    assert embedder.calls == 0
    assert await _rows(migrated_dsn) == (0, 0, 0)
    entry = await store.add("kept", metadata={"v": 1})
    for case, meta in BAD_METADATA.items():
        call = store.update(entry.id, text="changed", metadata=meta)
        await _refused(case, call, "metadata")
    assert embedder.calls == 1
    assert await store.get(entry.id) == entry


async def test_metadata_at_the_depth_limit_is_stored(store: MemoryStore) -> None:
    meta = _nested(MAX_METADATA_DEPTH)
    assert (await store.add("deep", metadata=meta)).metadata == meta


BAD_TEXT: dict[str, Any] = {
    "lone surrogate": "a\ud800b",
    "NUL": "a\x00b",
    "empty": "",
    "too long": "x" * (MAX_TEXT_CHARS + 1),
    "not a str": b"bytes",
}


async def test_bad_text_is_refused_everywhere_before_embedding(
    store: MemoryStore, embedder: HashEmbedder, migrated_dsn: str
) -> None:
    for case, text in BAD_TEXT.items():
        await _refused(case, store.add(text))
        await _refused(case, store.add_many(["fine", text]), r"texts\[1\]")
        await _refused(case, store.search(text))
        await _refused(case, store.create_collection("c", description=text))
    assert embedder.calls == 0
    assert await _rows(migrated_dsn) == (0, 0, 0)
    entry = await store.add("kept")
    for case, text in BAD_TEXT.items():
        await _refused(case, store.update(entry.id, text=text))
    assert await store.get(entry.id) == entry


BAD_LINKS: dict[str, Any] = {
    "NUL": "s\x00",
    "lone surrogate": "s\udc00",
    "too long for its index": secrets.token_hex(5000),
    "not a str": 42,
}


async def test_bad_session_and_workflow_ids_are_refused_before_embedding(
    store: MemoryStore, embedder: HashEmbedder, migrated_dsn: str
) -> None:
    for case, link in BAD_LINKS.items():
        await _refused(case, store.add("hello", session_id=link), "session_id")
        await _refused(case, store.add_many(["hello"], workflow_id=link), "workflow_id")
        await _refused(case, store.search("hello", session_id=link), "session_id")
        await _refused(case, store.access_records(session_id=link), "session_id")
    assert embedder.calls == 0
    assert await _rows(migrated_dsn) == (0, 0, 0)


async def test_a_link_at_the_length_limit_is_stored(store: MemoryStore) -> None:
    link = "é" * MAX_LINK_CHARS  # two UTF-8 bytes each
    entry = await store.add("linked", session_id=link, workflow_id=link)
    assert entry.session_id == entry.workflow_id == link


BAD_EXPIRY: dict[str, dict[str, Any]] = {
    "ttl beyond year 9999": {"ttl": timedelta(days=999_999_999)},
    "ttl not positive": {"ttl": timedelta(0)},
    "ttl not a timedelta": {"ttl": 60},
    "expires_at naive": {"expires_at": datetime(2030, 1, 1)},
    "expires_at without an offset": {"expires_at": datetime(2030, 1, 1, tzinfo=_NoOffset())},
    "expires_at a string": {"expires_at": "2030-01-01"},
    "expires_at before the year 1 in UTC": {"expires_at": datetime(1, 1, 1, tzinfo=_EAST)},
    "expires_at after the year 9999 in UTC": {"expires_at": datetime.max.replace(tzinfo=_WEST)},
}


async def test_bad_expiry_is_refused_before_embedding(
    store: MemoryStore, embedder: HashEmbedder, migrated_dsn: str
) -> None:
    for case, kwargs in BAD_EXPIRY.items():
        await _refused(case, store.add("hello", **kwargs), r"ttl|expires_at")
        await _refused(case, store.add_many(["hello"], **kwargs), r"ttl|expires_at")
    assert embedder.calls == 0
    assert await _rows(migrated_dsn) == (0, 0, 0)


BAD_ACCESS_ARGS: dict[str, dict[str, Any]] = {
    "collection with NUL": {"collection": "c\x00"},
    "collection with a lone surrogate": {"collection": "c\ud800"},
    "since a string": {"since": "yesterday"},
    "since naive": {"since": datetime(2020, 1, 1)},
    "since before the year 1 in UTC": {"since": datetime(1, 1, 1, tzinfo=_EAST)},
    "entry id not a uuid": {"entry_id": "nope"},
    "limit a bool": {"limit": True},
}


async def test_access_records_and_most_accessed_refuse_bad_arguments_with_a_typed_error(
    store: MemoryStore,
) -> None:
    for case, kwargs in BAD_ACCESS_ARGS.items():
        await _refused(case, store.access_records(**kwargs))
    bad_since: dict[str, Any] = {"str": "yesterday", "naive": datetime(2020, 1, 1)}
    for case, since in bad_since.items():
        await _refused(case, store.most_accessed(since=since), "since")


async def test_aware_since_is_accepted(store: MemoryStore) -> None:
    await store.add("seen")
    await store.search("seen", k=1)
    since = datetime.now(timezone.utc) - timedelta(minutes=5)
    assert len(await store.access_records(since=since)) == 1
    assert len(await store.most_accessed(since=since)) == 1


async def test_a_bad_filter_is_refused_before_the_embedding_call(
    store: MemoryStore, embedder: HashEmbedder
) -> None:
    bad: list[dict[str, Any]] = [{"a": "x\ud800"}, {"a\ud800": 1}, {"a": {"$in": ["\udc00"]}}]
    for case in bad:
        await _refused(repr(case), store.search("hello", filter=case), error=FilterError)
    assert embedder.calls == 0


# -- what an embedder returns ------------------------------------------------------------------


def _embedder(make: Any) -> Any:
    def embed(texts: Sequence[str]) -> Any:
        return [make(t) for t in texts]

    return embedder_from_function(embed, dimensions=D, model="odd")


BAD_EMBEDDER_VECTORS: dict[str, Any] = {
    "complex numbers": lambda t: [complex(1, 1)] * D,
    "booleans": lambda t: [True, False] * (D // 2),
    "one boolean": lambda t: [True] + [0.5] * (D - 1),
    "underflows to zero in float32": lambda t: [1e-50] + [0.0] * (D - 1),
    "a dict": lambda t: {float(i): 1.0 for i in range(D)},
    "strings": lambda t: ["0.5"] * D,
}


async def test_bad_vectors_from_an_embedder_raise_invalid_input_and_write_nothing(
    migrated_dsn: str,
) -> None:
    for case, make in BAD_EMBEDDER_VECTORS.items():
        async with MemoryStore(migrated_dsn, _embedder(make)) as store:
            await _refused(case, store.add("hello", collection="fresh"), "embedder")
            await _refused(case, store.add_many(["a", "b"], collection="fresh"), "embedder")
    assert await _rows(migrated_dsn) == (0, 0, 0)


class _Broken(Exception):
    pass


async def test_an_embedders_own_exception_is_wrapped_in_embedding_error(
    migrated_dsn: str,
) -> None:
    def fail(texts: Sequence[str]) -> Any:
        raise _Broken("model not loaded")

    emb = embedder_from_function(fail, dimensions=D, model="broken")
    async with MemoryStore(migrated_dsn, emb) as store:
        with pytest.raises(EmbeddingError, match="model not loaded") as info:
            await store.add("hello")
        assert isinstance(info.value.__cause__, _Broken)
        with pytest.raises(EmbeddingError):
            await store.search("hello")
    assert await _rows(migrated_dsn) == (0, 0, 0)


class _Named:
    """An embedder whose ``model`` is whatever the test says."""

    dimensions = D

    def __init__(self, model: Any) -> None:
        self.model = model

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [HashEmbedder().vector(t) for t in texts]


async def test_an_embedder_whose_model_cannot_be_stored_is_refused_at_open(
    migrated_dsn: str,
) -> None:
    for model in [None, 42, "", "m\x00", "m\ud800", "m" * 513]:
        store = MemoryStore(migrated_dsn, _Named(model))
        await _refused(repr(model), store.open(), r"embedder\.model", ConfigurationError)
    assert await _rows(migrated_dsn) == (0, 0, 0)
