"""SQL text of the MemoryStore, qualified with the schemas found when the store opens.

Tables are qualified with the schema that holds ``memory_entries``, the pgvector type and
operator with the schema the extension lives in, so statements never depend on a connection's
``search_path`` (borrowed pools, an ``extensions`` schema, several sam_db schemas in one database).
Only quoted identifiers and placeholders are formatted into the text.
"""

# ruff: noqa: S608 -- this module builds SQL from quote_ident()-quoted names and placeholders only
from __future__ import annotations

from dataclasses import dataclass, field

from .._ident import quote_ident
from .._pgvector import EXTENSION_SQL
from ._search import SearchSettings

# Columns of an entry as the store reads them; metadata as text (no jsonb codec needed).
ENTRY_COLUMNS = (
    "e.id, e.content, e.metadata::text AS metadata, e.session_id, e.workflow_id, "
    "e.embedding_model, e.created_at, e.updated_at, e.expires_at"
)
# Their names, in the same order: every statement selects ENTRY_COLUMNS first, so the store can
# zip a row's leading values with these names.
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
)
LIVE = "(e.expires_at IS NULL OR e.expires_at > now())"

DISCOVER_TABLE = """
SELECT n.nspname AS table_schema, format_type(a.atttypid, a.atttypmod) AS embedding_type,
       EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
               WHERE p.pronamespace = n.oid AND p.proname = 'memory_search_vector'
                 AND p.proargtypes = ARRAY[a.atttypid]::pg_catalog.oidvector) AS has_search_helper
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = 'embedding'
WHERE c.oid = pg_catalog.to_regclass($1)
"""

DISCOVER_EXTENSION = EXTENSION_SQL  # where pgvector lives: one look-up for the whole package


@dataclass(frozen=True)
class Statements:
    """Every statement the store runs, for one table schema and one extension schema."""

    entries: str
    collections: str
    access_log: str
    vector: str
    distance: str
    exact_distance: str
    search_vector: str
    _searches: dict[tuple[str, SearchSettings, int], str] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def build(cls, table_schema: str, ext_schema: str) -> Statements:
        s, x = quote_ident(table_schema), quote_ident(ext_schema)
        return cls(
            entries=f"{s}.memory_entries",
            collections=f"{s}.memory_collections",
            access_log=f"{s}.memory_access_log",
            vector=f"{x}.vector",
            distance=f"OPERATOR({x}.<=>)",
            exact_distance=f"{x}.cosine_distance",
            search_vector=f"{s}.memory_search_vector",
        )

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
            f"SELECT {ENTRY_COLUMNS}, e.content_hash, NOT {LIVE} AS expired "
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
            f"RETURNING {ENTRY_COLUMNS}, e.content_hash"
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
            f"RETURNING {ENTRY_COLUMNS}, e.content_hash"
        )

    @property
    def get(self) -> str:
        return (
            f"SELECT {ENTRY_COLUMNS}, c.name AS collection FROM {self.entries} e "
            f"JOIN {self.collections} c ON c.id = e.collection_id WHERE e.id = $1 AND {LIVE}"
        )

    @property
    def get_for_update(self) -> str:
        return (
            f"SELECT {ENTRY_COLUMNS}, e.content_hash, c.name AS collection FROM {self.entries} e "
            f"JOIN {self.collections} c ON c.id = e.collection_id "
            f"WHERE e.id = $1 AND {LIVE} FOR UPDATE OF e"
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
            f"WHERE e.id = $1 AND {LIVE} RETURNING {ENTRY_COLUMNS}"
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

    # -- search -----------------------------------------------------------------------------
    def search(self, where: str, settings: SearchSettings, k: int) -> str:
        """The search statement for this filter shape, settings and ``k`` (built once, cached).

        The same ``str`` object each time also keeps asyncpg's statement-cache lookup cheap.
        """
        key = (where, settings, k)
        text = self._searches.get(key)
        if text is None:
            if len(self._searches) >= 1024:  # filter shapes x settings x k: keep it bounded
                self._searches.clear()
            text = self._searches[key] = self._search_text(where, settings, k)
        return text

    def _search_text(self, where: str, settings: SearchSettings, k: int) -> str:
        """The search statement, with its access-log write when ``settings.log``.

        Parameters: $1 query vector, $2 collection, $3 ef_search (text); with the log also $4
        min similarity (or NULL), $5 session, $6 query hash, $7 query text, $8 "final even if
        short"; the filter in ``where`` numbers its own after those (see
        ``search_param_start``). Why the statement looks the way it does: see ``_search``.

        ``k`` is written into the text as ``LIMIT k`` (an int the store validated to 1..1000):
        with ``LIMIT $3`` PostgreSQL prices a generic plan as if 10 % of the rows came back,
        finds it dearer than the custom plans, and so re-plans every search (~0.3 ms each).
        It is a validated int, formatted by ``int.__format__``.

        Rows come back in no guaranteed order: the caller sorts them by (distance, id), as
        relaxed-order iterative scans need.
        """
        q = f"$1::{self.vector}"
        limit = _limit(k)
        match = (
            f"e.collection_id = (SELECT c.id FROM {self.collections} c WHERE c.name = $2) "
            f"AND {LIVE} AND {where}"
        )
        if settings.exact:
            mode = "/* sam_db exact search */"
            order = f"{self.exact_distance}(e.embedding, {q})"
        else:
            mode = "/* sam_db hnsw search */"
            order = f"e.embedding {self.distance} {self.search_vector}({q})"
            match = f"CASE WHEN {match} THEN true END"
        # ORDER BY the output column: each row's vector is read (detoasted) and compared once.
        # Only the log's INSERT needs the collection id of each row.
        log_columns = "e.collection_id, " if settings.log else ""
        found = (
            f"SELECT {ENTRY_COLUMNS}, {log_columns}{order} AS distance "
            f"FROM {self.entries} e "
            f"WHERE {match} AND (SELECT {settings.config_sql('$3')}) IS NOT NULL "
            f"ORDER BY distance LIMIT {limit}"
        )
        if not settings.log:
            # Relaxed-order iterative scans may return rows slightly out of order: the caller
            # sorts them (by distance, then id), which is cheaper than a CTE and a sort here.
            return f"{mode} {found}"
        # The log needs every row's final rank: the found rows are MATERIALIZED and ranked.
        # They are written by the same statement, and only when the result is final: an index
        # search that found fewer than k rows is re-run exactly.
        return (
            f"{mode} WITH found AS MATERIALIZED ({found}), "
            "ranked AS (SELECT found.*, row_number() OVER (ORDER BY distance, id) AS rank "
            "FROM found WHERE $4::float8 IS NULL OR 1 - distance >= $4::float8), "
            f"logged AS (INSERT INTO {self.access_log} "
            "(entry_id, collection_id, session_id, query_hash, query, similarity, rank) "
            "SELECT r.id, r.collection_id, $5::text, $6::bytea, $7::text, 1 - r.distance, "
            f"r.rank FROM ranked r WHERE $8::boolean OR (SELECT count(*) FROM found) >= {limit}) "
            # Every found row comes back (the caller needs their number); the client applies
            # the same min-similarity test, in the same float8 arithmetic, and ranks what it keeps.
            "SELECT * FROM found"
        )

    # -- access log -------------------------------------------------------------------------
    @property
    def most_accessed(self) -> str:
        return (
            f"SELECT {ENTRY_COLUMNS}, c.name AS collection, count(*) AS access_count, "
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


def _limit(k: int) -> str:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1000:
        raise ValueError(f"k out of range: {k!r}")
    return f"{k:d}"


def search_param_start(log: bool) -> int:
    """The first placeholder number a search's filter may use (after the fixed ones)."""
    return 9 if log else 4
