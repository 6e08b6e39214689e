"""``PackedVector`` subclasses pgvector-python's ``Vector`` without its constructor: still sound?

It keeps its wire bytes and answers pgvector's private ``_value`` by decoding them, and it relies on
pgvector's asyncpg codec sending ``to_binary()`` as it is. pyproject.toml caps pgvector-python
below the next minor release (0.x: a minor may change anything); CI runs these on the lowest
(0.3.4) and the newest allowed, so a release that changes what the codec or the methods read fails
here by name.
"""

from __future__ import annotations

import asyncpg
from pgvector.asyncpg import register_vector

from sam_db.memory._vectors import PackedVector, Vector, pack_vector

VALUES = [0.5, -1.25, 3.0, 0.125]  # exact in float32


def test_vector_methods_work_on_a_packed_vector() -> None:
    packed = pack_vector(VALUES, len(VALUES))
    assert isinstance(packed, PackedVector) and isinstance(packed, Vector)
    assert packed.dimensions() == len(VALUES)
    assert packed.to_list() == VALUES
    assert [float(x) for x in packed.to_numpy()] == VALUES
    assert packed.to_binary() == Vector(VALUES).to_binary()
    assert Vector.from_binary(packed.to_binary()).to_list() == VALUES


async def test_pgvectors_codec_sends_a_packed_vector_unchanged(migrated_dsn: str) -> None:
    conn = await asyncpg.connect(migrated_dsn)
    try:
        schema = await conn.fetchval(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname = 'vector'"
        )
        await register_vector(conn, schema=schema)
        packed = pack_vector(VALUES, len(VALUES))
        text = await conn.fetchval("SELECT $1::vector::text", packed)
        assert [float(x) for x in text.strip("[]").split(",")] == VALUES
        back = await conn.fetchval("SELECT $1::vector", packed)
        as_list = back.to_list() if hasattr(back, "to_list") else back.tolist()
        assert as_list == VALUES
        arr = await conn.fetchval("SELECT array_length($1::vector[], 1)", [packed, packed])
        assert arr == 2
    finally:
        await conn.close()
