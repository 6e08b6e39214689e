-- 004 memory system: RAG memory with pgvector (1536-d OpenAI text-embedding-3-small by default).
--
-- The vector extension is database-wide. IF NOT EXISTS keeps whatever schema it already lives in
-- (another sam_db schema, or an `extensions` schema a platform installed it into); a fresh install
-- goes to `public` so that several sam_db schemas in one database share it.
CREATE EXTENSION IF NOT EXISTS vector SCHEMA public;

-- A named group of memories ("default", "project-notes", ...). Created on first use by MemoryStore.
CREATE TABLE memory_collections (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text        NOT NULL UNIQUE
                CHECK (name <> '' AND length(name) <= 200),
    description text,
    metadata    jsonb       NOT NULL DEFAULT '{}'::jsonb
                CHECK (jsonb_typeof(metadata) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One remembered text and its embedding. Identical content in one collection is stored once
-- (content_hash = sha256 of the UTF-8 text). session_id / workflow_id are soft links: a memory may be
-- written before the monitor has seen its session and outlives it, so there is no foreign key.
CREATE TABLE memory_entries (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    collection_id   bigint      NOT NULL REFERENCES memory_collections (id) ON DELETE CASCADE,
    content         text        NOT NULL CHECK (content <> ''),
    content_hash    bytea       NOT NULL CHECK (octet_length(content_hash) = 32),
    embedding       vector(1536) NOT NULL,
    embedding_model text,
    metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb
                    CHECK (jsonb_typeof(metadata) = 'object'),
    session_id      text,
    workflow_id     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz,
    CONSTRAINT memory_entries_collection_content_key UNIQUE (collection_id, content_hash)
);

-- Cosine-distance HNSW index: serves ORDER BY embedding <=> $query LIMIT k.
CREATE INDEX memory_entries_embedding_hnsw_idx ON memory_entries
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
-- Metadata equality filters compile to @> containment, which jsonb_path_ops serves.
CREATE INDEX memory_entries_metadata_idx ON memory_entries USING gin (metadata jsonb_path_ops);
CREATE INDEX memory_entries_collection_created_idx ON memory_entries (collection_id, created_at DESC);
CREATE INDEX memory_entries_session_idx ON memory_entries (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX memory_entries_workflow_idx ON memory_entries (workflow_id) WHERE workflow_id IS NOT NULL;
CREATE INDEX memory_entries_expires_idx ON memory_entries (expires_at) WHERE expires_at IS NOT NULL;

-- What each search returned: one row per returned entry. Kept when the session goes away.
-- No foreign keys, on purpose: a key check locks the referenced row (FOR KEY SHARE), so every logged
-- search would write-lock its entries and its collection's row, and concurrent searches of one
-- collection would pile up on that row through MultiXacts. Deleting entries deletes their log rows
-- instead (trigger below; deleting a collection deletes its entries). A search that races a delete
-- can leave a row of the deleted entry; readers that join memory_entries do not see it.
CREATE TABLE memory_access_log (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_id      uuid        NOT NULL,
    collection_id bigint      NOT NULL,
    session_id    text,
    query_hash    bytea       NOT NULL CHECK (octet_length(query_hash) = 32),
    query         text,
    similarity    real        NOT NULL,
    rank          integer     NOT NULL CHECK (rank >= 1),
    accessed_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX memory_access_log_entry_idx ON memory_access_log (entry_id, accessed_at DESC);
CREATE INDEX memory_access_log_collection_idx ON memory_access_log (collection_id, accessed_at DESC);

-- One statement-level trigger per DELETE of entries (cascades from collections included). SET
-- search_path pins the schema this migration ran in: the deleting session's may differ.
CREATE FUNCTION memory_access_log_forget() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT
    AS $$
BEGIN
    DELETE FROM memory_access_log l USING forgotten f WHERE l.entry_id = f.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER memory_entries_forget_access AFTER DELETE ON memory_entries
    REFERENCING OLD TABLE AS forgotten
    FOR EACH STATEMENT EXECUTE FUNCTION memory_access_log_forget();

-- Planner hint for MemoryStore searches, which order by `embedding <=> memory_search_vector($1)`.
-- It returns the query vector unchanged. Left in the query (STABLE: never folded at plan time), its
-- COST makes every row a plan would sort cost roughly what reading its TOASTed vector really costs,
-- which PostgreSQL's cost model otherwise ignores (it then prefers a scan + sort to the HNSW index
-- at realistic sizes). An HNSW scan evaluates it for the few rows it returns.
CREATE FUNCTION memory_search_vector(query_vector vector) RETURNS vector
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE COST 1000
    AS $$ BEGIN RETURN query_vector; END $$;
