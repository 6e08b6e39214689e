"""SQL text of the MemoryStore, qualified with the schemas found when the store opens.

Tables are qualified with the schema that holds ``memory_entries``, the pgvector type and
operator with the schema the extension lives in, so statements never depend on a connection's
``search_path`` (borrowed pools, an ``extensions`` schema, several sam_db schemas in one database).
Only quoted identifiers and placeholders are formatted into the text.
"""

# ruff: noqa: S608 -- this module builds SQL from quote_ident()-quoted names and placeholders only
from __future__ import annotations

from dataclasses import dataclass

from .._ident import quote_ident
from .._pgvector import EXTENSION_SQL

# Columns of an entry as the store reads them; metadata as text (no jsonb codec needed).
ENTRY_COLUMNS = (
    "e.id, e.content, e.metadata::text AS metadata, e.session_id, e.workflow_id, "
    "e.embedding_model, e.created_at, e.updated_at, e.expires_at, e.key"
)
# A database at migration 004 has no `key` column: its statements read NULL in its place.
ENTRY_COLUMNS_WITHOUT_KEY = ENTRY_COLUMNS.removesuffix("e.key") + "NULL::text AS key"
# Their names, in the same order: statements that read entries select ENTRY_COLUMNS first, and
# _rows.entry_from_row unpacks a row's leading values in this order.
ENTRY_FIELDS = (
    "id",
    "content",
    "metadata",
    "session_id",
    "workflow_id",
    "embedding_model",
    "created_at",
    "updated_at",
    "expires_at",
    "key",
)
LIVE = "(e.expires_at IS NULL OR e.expires_at > now())"

DISCOVER_TABLE = """
SELECT n.nspname AS table_schema, format_type(a.atttypid, a.atttypmod) AS embedding_type,
       EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
               WHERE p.pronamespace = n.oid AND p.proname = 'memory_search_vector'
                 AND p.proargtypes = ARRAY[a.atttypid]::pg_catalog.oidvector) AS has_search_helper,
       EXISTS (SELECT 1 FROM pg_catalog.pg_attribute k
               WHERE k.attrelid = c.oid AND k.attname = 'key' AND NOT k.attisdropped) AS has_keys
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = 'embedding'
WHERE c.oid = pg_catalog.to_regclass($1)
"""

DISCOVER_EXTENSION = EXTENSION_SQL  # where pgvector lives: one look-up for the whole package
# Whether the server could create pgvector (asked only when the tables are missing).
VECTOR_AVAILABLE = (
    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'vector')"
)


@dataclass(frozen=True)
class Statements:
    """The store's qualified names and statements, for one table schema and one extension schema.

    The search statement is built from these names by ``_search``.
    """

    entries: str
    collections: str
    access_log: str
    vector: str
    distance: str
    exact_distance: str
    search_vector: str
    # Migration 005's functions for text and hybrid searches: a search text's lexemes, their
    # tsquery, and the list of common lexemes its lexemes leave out.
    text_query_lexemes: str
    text_lexeme_query: str
    text_pair_query: str
    text_common_lexemes: str
    keys: bool = True  # memory_entries has migration 005's `key` column
    table_schema: str = "public"  # unquoted, for the access log's COPY (asyncpg quotes it)

    @classmethod
    def build(
        cls, table_schema: str, ext_schema: str, *, keys: bool = True, vector_type: str = "vector"
    ) -> Statements:
        """``vector_type``: the embedding column's type, ``vector`` or ``halfvec`` (what
        parameters are cast to)."""
        if vector_type not in ("vector", "halfvec"):
            raise ValueError(f"vector_type must be 'vector' or 'halfvec', got {vector_type!r}")
        s, x = quote_ident(table_schema), quote_ident(ext_schema)
        return cls(
            entries=f"{s}.memory_entries",
            collections=f"{s}.memory_collections",
            access_log=f"{s}.memory_access_log",
            vector=f"{x}.{vector_type}",
            distance=f"OPERATOR({x}.<=>)",
            exact_distance=f"{x}.cosine_distance",
            search_vector=f"{s}.memory_search_vector",
            text_query_lexemes=f"{s}.memory_text_query_lexemes",
            text_lexeme_query=f"{s}.memory_text_lexeme_query",
            text_pair_query=f"{s}.memory_text_pair_query",
            text_common_lexemes=f"{s}.memory_text_common_lexemes",
            keys=keys,
            table_schema=table_schema,
        )

    @property
    def entry_columns(self) -> str:
        """ENTRY_COLUMNS, with NULL for ``key`` on a database without migration 005."""
        return ENTRY_COLUMNS if self.keys else ENTRY_COLUMNS_WITHOUT_KEY

    # -- collections ------------------------------------------------------------------------
    @property
    def collection_id(self) -> str:
        return f"SELECT id FROM {self.collections} WHERE name = $1"

    @property
    def collection_insert(self) -> str:
        return (
            f"INSERT INTO {self.collections} (name) VALUES ($1) "
            "ON CONFLICT (name) DO NOTHING RETURNING id"
        )

    @property
    def collection_upsert(self) -> str:
        c = self.collections
        return (
            f"INSERT INTO {c} AS c (name, description, metadata) "
            "VALUES ($1, $2::text, COALESCE($3::jsonb, '{}'::jsonb)) "
            "ON CONFLICT (name) DO UPDATE SET "
            "description = COALESCE($2::text, c.description), "
            "metadata = COALESCE($3::jsonb, c.metadata), "
            "updated_at = CASE WHEN $2::text IS NULL AND $3::jsonb IS NULL "
            "THEN c.updated_at ELSE now() END "
            "RETURNING c.id, c.name, c.description, c.metadata::text AS metadata, "
            f"c.created_at, c.updated_at, (SELECT count(*) FROM {self.entries} e "
            f"WHERE e.collection_id = c.id AND {LIVE}) AS entry_count"
        )

    @property
    def collection_list(self) -> str:
        return (
            "SELECT c.id, c.name, c.description, c.metadata::text AS metadata, c.created_at, "
            f"c.updated_at, (SELECT count(*) FROM {self.entries} e "
            f"WHERE e.collection_id = c.id AND {LIVE}) AS entry_count "
            f"FROM {self.collections} c ORDER BY c.name"
        )

    @property
    def collection_delete(self) -> str:
        return (
            f"WITH doomed AS (SELECT id FROM {self.collections} WHERE name = $1 FOR UPDATE), "
            f"n AS (SELECT count(*) AS entries FROM {self.entries} e, doomed "
            "WHERE e.collection_id = doomed.id), "
            f"d AS (DELETE FROM {self.collections} c USING doomed WHERE c.id = doomed.id "
            "RETURNING c.id) "
            "SELECT (SELECT count(*) FROM d) AS deleted, (SELECT entries FROM n) AS entries"
        )

    # -- entries ----------------------------------------------------------------------------
    @property
    def existing_by_hash(self) -> str:
        return (
            f"SELECT {self.entry_columns}, e.content_hash, NOT {LIVE} AS expired "
            f"FROM {self.entries} e "
            "WHERE e.collection_id = $1 AND e.content_hash = ANY($2::bytea[])"
        )

    @property
    def renew(self) -> str:
        return (
            f"UPDATE {self.entries} e SET metadata = u.metadata::jsonb, session_id = $3, "
            "workflow_id = $4, expires_at = $5, updated_at = now() "
            "FROM unnest($1::uuid[], $2::text[]) AS u(id, metadata) "
            "WHERE e.id = u.id AND e.expires_at <= now() "
            f"RETURNING {self.entry_columns}, e.content_hash"
        )

    @property
    def insert_batch(self) -> str:
        # One statement per batch: rows come from unnest() of arrays (no bind-parameter limit,
        # vectors in pgvector's binary format). ON CONFLICT makes a concurrent writer of the
        # same content harmless (the row is read back afterwards).
        return (
            f"INSERT INTO {self.entries} AS e (collection_id, content, content_hash, embedding, "
            "embedding_model, metadata, session_id, workflow_id, expires_at) "
            "SELECT $1, u.content, u.hash, u.embedding, $5, u.metadata::jsonb, $6, $7, $8 "
            f"FROM unnest($2::text[], $3::bytea[], $4::{self.vector}[], $9::text[]) "
            "AS u(content, hash, embedding, metadata) "
            "ON CONFLICT (collection_id, content_hash) DO NOTHING "
            f"RETURNING {self.entry_columns}, e.content_hash"
        )

    @property
    def get(self) -> str:
        return (
            f"SELECT {self.entry_columns}, c.name AS collection FROM {self.entries} e "
            f"JOIN {self.collections} c ON c.id = e.collection_id WHERE e.id = $1 AND {LIVE}"
        )

    @property
    def update(self) -> str:
        return (
            f"UPDATE {self.entries} e SET content = COALESCE($2, e.content), "
            "content_hash = COALESCE($3, e.content_hash), "
            f"embedding = COALESCE($4::{self.vector}, e.embedding), "
            f"embedding_model = CASE WHEN $4::{self.vector} IS NULL "
            "THEN e.embedding_model ELSE $5 END, "
            "metadata = COALESCE($6::jsonb, e.metadata), updated_at = now() "
            f"WHERE e.id = $1 AND {LIVE} RETURNING {self.entry_columns}"
        )

    @property
    def find_by_hash(self) -> str:
        return (
            f"SELECT e.id FROM {self.entries} e "
            "WHERE e.collection_id = (SELECT collection_id FROM "
            f"{self.entries} WHERE id = $1) AND e.content_hash = $2"
        )

    @property
    def delete(self) -> str:
        return (
            f"WITH d AS (DELETE FROM {self.entries} WHERE id = ANY($1::uuid[]) RETURNING 1) "
            "SELECT count(*) FROM d"
        )

    @property
    def purge_all(self) -> str:
        return (
            f"WITH d AS (DELETE FROM {self.entries} WHERE expires_at <= now() RETURNING 1) "
            "SELECT count(*) FROM d"
        )

    @property
    def purge_collection(self) -> str:
        return (
            f"WITH d AS (DELETE FROM {self.entries} WHERE expires_at <= now() AND collection_id = "
            f"(SELECT id FROM {self.collections} WHERE name = $1) RETURNING 1) "
            "SELECT count(*) FROM d"
        )

    # -- access log -------------------------------------------------------------------------
    @property
    def most_accessed(self) -> str:
        return (
            f"SELECT {self.entry_columns}, c.name AS collection, count(*) AS access_count, "
            "max(l.accessed_at) AS last_accessed_at, avg(l.similarity)::float8 AS mean_similarity "
            f"FROM {self.access_log} l JOIN {self.entries} e ON e.id = l.entry_id "
            f"JOIN {self.collections} c ON c.id = l.collection_id "
            f"WHERE c.name = $1 AND ($2::timestamptz IS NULL OR l.accessed_at >= $2) AND {LIVE} "
            "GROUP BY e.id, c.name ORDER BY access_count DESC, last_accessed_at DESC, e.id LIMIT $3"
        )

    @property
    def access_records(self) -> str:
        return (
            "SELECT l.id, l.entry_id, c.name AS collection, l.session_id, l.query, l.query_hash, "
            f"l.similarity, l.rank, l.accessed_at FROM {self.access_log} l "
            f"JOIN {self.collections} c ON c.id = l.collection_id "
            "WHERE ($1::uuid IS NULL OR l.entry_id = $1) AND ($2::text IS NULL OR c.name = $2) "
            "AND ($3::text IS NULL OR l.session_id = $3) "
            "AND ($4::timestamptz IS NULL OR l.accessed_at >= $4) "
            "ORDER BY l.accessed_at DESC, l.id DESC LIMIT $5"
        )
