"""Building search hits from rows: sam_db's direct construction vs pydantic's ``model_construct``.

    python bench/rows_bench.py [--hits 10] [--rounds 2000]

``sam_db.memory._rows`` builds ``MemoryEntry`` and ``SearchHit`` without validation by setting
the four attributes pydantic's ``model_construct`` sets, skipping its per-field alias and
default handling. This prints, for one search's worth of hits, the median time of each way
(taking turns, ``rounds`` times each) and the difference per hit, with the pydantic version:
the figure behind keeping the direct way (tested on the lowest and newest pydantic in CI).
It also prints what decoding one hit's metadata (jsonb text) costs with ``decode_metadata``'s
``raw_decode`` and with ``json.loads``. No database: the rows are tuples shaped like the store's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pydantic

from sam_db.memory import MemoryEntry, SearchHit
from sam_db.memory._rows import decode_metadata, hits_from_rows
from sam_db.memory._sql import ENTRY_FIELDS


class Row(tuple):  # type: ignore[type-arg]
    """An asyncpg Record stand-in: values by position, ``distance`` by name."""

    def __getitem__(self, key: Any) -> Any:
        return tuple.__getitem__(self, -1 if key == "distance" else key)


def rows(n: int) -> list[Row]:
    now = datetime.now(timezone.utc)
    out = []
    for i in range(n):
        values = {
            "id": uuid.uuid4(),
            "content": f"memory {i}",
            "metadata": json.dumps({"bucket": i % 20}),
            "session_id": "s",
            "workflow_id": "w",
            "embedding_model": "m",
            "created_at": now,
            "updated_at": now,
            "expires_at": now + timedelta(hours=1),
            "key": None,
        }
        out.append(Row([*(values[f] for f in ENTRY_FIELDS), i / n]))
    return out


def with_model_construct(rows: list[Row], collection: str) -> list[SearchHit]:
    """The same hits through pydantic's public ``model_construct``."""
    hits = []
    for row in rows:
        entry = MemoryEntry.model_construct(
            id=row[0],
            collection=collection,
            content=row[1],
            metadata=decode_metadata(row[2]),
            session_id=row[3],
            workflow_id=row[4],
            embedding_model=row[5],
            created_at=row[6],
            updated_at=row[7],
            expires_at=row[8],
            key=row[9],
        )
        hits.append(
            SearchHit.model_construct(
                entry=entry,
                similarity=1.0 - row["distance"],
                rank=len(hits) + 1,
                vector_rank=len(hits) + 1,
            )
        )
    return hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    data = rows(args.hits)
    direct = hits_from_rows(data, "default", None)
    public = with_model_construct(data, "default")
    assert [h.model_dump() for h in direct] == [h.model_dump() for h in public]
    times: dict[str, list[float]] = {"direct": [], "model_construct": []}
    for _ in range(args.rounds):
        for name, build in (
            ("direct", lambda: hits_from_rows(data, "default", None)),
            ("model_construct", lambda: with_model_construct(data, "default")),
        ):
            t = time.perf_counter()
            build()
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) * 1e6 for k, v in times.items()}
    print(f"pydantic {pydantic.VERSION}, {args.hits} hits, median of {args.rounds} rounds each")
    for name, us in med.items():
        print(f"  {name:<16} {us:8.1f} µs per search  {us / args.hits:6.2f} µs per hit")
    extra = med["model_construct"] - med["direct"]
    print(
        f"  model_construct costs {extra:.1f} µs more per search ({extra / args.hits:.2f} µs per hit)"
    )
    decode_times(data, args.rounds)


def decode_times(data: list[Row], rounds: int) -> None:
    """Median cost of decoding the hits' metadata: ``decode_metadata`` vs ``json.loads``."""
    docs = [row[2] for row in data]
    assert [decode_metadata(d) for d in docs] == [json.loads(d) for d in docs]
    times: dict[str, list[float]] = {"decode_metadata": [], "json.loads": []}
    for _ in range(rounds):
        for name, decode in (("decode_metadata", decode_metadata), ("json.loads", json.loads)):
            t = time.perf_counter()
            for d in docs:
                decode(d)
            times[name].append(time.perf_counter() - t)
    for name, values in times.items():
        us = statistics.median(values) * 1e6 / len(docs)
        print(f"  metadata {name:<16} {us:6.2f} µs per hit")


if __name__ == "__main__":
    main()
