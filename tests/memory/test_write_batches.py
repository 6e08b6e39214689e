"""add_many's batches are cut by rows and by size, so that no statement nears PostgreSQL's 1 GB
message limit; every batch is its own transaction."""

from __future__ import annotations

from typing import Any

import pytest

from sam_db.memory import MemoryStore, _inputs, _write_batches
from sam_db.memory._write_batches import batches


def test_batches_are_cut_at_the_row_count_and_at_the_size_budget() -> None:
    assert batches([1] * 5, 2, 100) == [[0, 1], [2, 3], [4]]
    assert batches([40, 40, 40, 10, 10], 10, 100) == [[0, 1], [2, 3, 4]]
    assert batches([500, 1, 1], 10, 100) == [[0], [1, 2]]  # too big alone: a batch of its own
    assert batches([], 10, 100) == []


async def test_add_many_writes_big_texts_in_size_bounded_batches(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_inputs, "MAX_BATCH_CHARS", 25_000)
    sizes: list[int] = []
    write_unit = _write_batches.write_batch

    async def counting(conn: Any, shared: Any, cid: Any, unit: Any) -> Any:
        sizes.append(len(unit.texts))
        return await write_unit(conn, shared, cid, unit)

    monkeypatch.setattr(_write_batches, "write_batch", counting)
    texts = [f"{i} " + "x" * 10_000 for i in range(7)]
    entries = await store.add_many(texts, metadata=[{"i": i} for i in range(7)])
    # About 10,010 characters each, 25,000 a batch; the first batch (it creates the collection)
    # runs alone, the others at once, starting in any order.
    assert sizes[0] == 2 and sorted(sizes[1:]) == [1, 2, 2]
    assert [e.content for e in entries] == texts
    assert [e.metadata for e in entries] == [{"i": i} for i in range(7)]
    assert await store.add_many(texts) == entries
