"""Vector checking and packing: the store's ``pack_vector`` beside pgvector's own packing.

    python bench/vector_pack_bench.py [--rounds 61] [--vectors 200]

The store checks every vector (length, real numbers only, finite and not zero in float32) and
packs it to pgvector's binary format; pgvector's ``Vector(value).to_binary()`` packs without
checking anything; the last two rows add what the codec sends (``to_binary()``): the store's
``PackedVector`` keeps its bytes, the public path (``Vector.from_binary`` of them) encodes them
again. All take turns per round (order alternating), on 1536-d unit vectors given
as numpy float32 arrays (what models return), as lists of Python floats from them (what the
OpenAI SDK and ``.tolist()`` give), and as lists of full float64 values. Prints medians per
vector and the ratio to pgvector's packing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

try:
    from pgvector import Vector
except ImportError:  # pgvector-python < 0.4
    from pgvector.utils import Vector  # type: ignore[no-redef, unused-ignore]

from sam_db.memory._vectors import pack_vector

D = 1536


def _per_vector_us(pack: Callable[[Any], Any], data: list[Any]) -> float:
    start = time.perf_counter_ns()
    for v in data:
        pack(v)
    return (time.perf_counter_ns() - start) / len(data) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=61)
    parser.add_argument("--vectors", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    wide = rng.standard_normal((args.vectors, D))
    wide /= np.linalg.norm(wide, axis=1, keepdims=True)
    arrays = list(wide.astype(np.float32))
    inputs = {
        "numpy float32 array": arrays,
        "list (from float32)": [a.tolist() for a in arrays],
        "list (float64 values)": [w.tolist() for w in wide],
    }
    methods: dict[str, Callable[[Any], Any]] = {
        "pgvector Vector(v).to_binary()": lambda v: Vector(v).to_binary(),
        "sam_db pack_vector (checked)": lambda v: pack_vector(v, D),
        # What the codec then sends: PackedVector hands over its bytes as they are ...
        "sam_db pack_vector + to_binary": lambda v: pack_vector(v, D).to_binary(),
        # ... where pgvector's public API would decode them and encode them again.
        "public: + from_binary + to_binary": lambda v: Vector.from_binary(
            pack_vector(v, D).to_binary()
        ).to_binary(),
    }
    print(f"{D}-d vectors, {args.vectors} per round, {args.rounds} rounds; median µs per vector")
    for kind, data in inputs.items():
        times: dict[str, list[float]] = {m: [] for m in methods}
        for r in range(args.rounds):
            order = list(methods) if r % 2 == 0 else list(reversed(methods))
            for name in order:
                times[name].append(_per_vector_us(methods[name], data))
        base = statistics.median(times["pgvector Vector(v).to_binary()"])
        for name in methods:
            med = statistics.median(times[name])
            print(f"  {kind:<22} {name:<32} {med:8.2f} µs  {med / base:5.2f}x")


if __name__ == "__main__":
    main()
