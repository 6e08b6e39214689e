-- 005 memory text search and keys.
--
-- Full-text search over `content` for MemoryStore's text and hybrid search modes, built to find
-- what embeddings miss: identifiers (raw_decode, os.SEEK_SET, IPv4Interface), error codes, file
-- names and version strings, in queries that also carry ordinary words. docs/memory.md explains
-- the design; in short, each entry's `content_tsv` holds
--   * the `english` configuration's lexemes of the text (stemmed, stop words dropped), weight D,
--     which match ordinary words ("decoding" finds "decode");
--   * its identifier-like tokens kept whole, lower-cased, weight A (see memory_text_terms): the
--     default parser splits raw_decode into raw + decode and os.SEEK_SET into os.seek + set, so
--     neither alone can match the identifier exactly.
-- memory_text_query builds the matching tsquery from a search text: its words OR-ed (an AND of
-- every word of "how do I use raw_decode?" matches next to nothing) and its identifier terms.
-- Functions use SQL-standard bodies, so the names they call are bound when they are created and
-- they work under any search_path (pg_dump restores run with an empty one).

-- The identifier-like tokens of a text, lower-cased, separated by spaces: runs of letters, digits
-- and _ . : / - (trimmed of leading and trailing . : / -), each also split at / and : and at
-- . : / -, keeping only the pieces that are not a plain word (lower case, upper case,
-- Capitalized, or letters without case), nor only digits, nor longer than 200 characters: what
-- is left is what the english lexemes cannot match (raw_decode, ipv4interface, e0401, utf-8,
-- json/decoder.py, decoder.py, v3.12.1, camelcase). Reads the first 30,000 characters, which
-- bounds the tsvector's size whatever the text.
CREATE FUNCTION memory_text_terms(content text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN lower(regexp_replace(regexp_replace(regexp_replace(
        left(content, 30000) || ' ' || translate(left(content, 30000), '/:', '  ') || ' '
            || translate(left(content, 30000), '.:/-', '    '),
        '[^[:alnum:]_.:/-]+', ' ', 'g'),
        '(?<![^ ])[.:/-]+|[.:/-]+(?![^ ])', ' ', 'g'),
        '(?<![^ ])([[:upper:]]?[[:lower:]]+|[[:upper:]]+|[[:digit:]]+|[^[:upper:][:lower:][:digit:]_.:/ -]+|[^ ]{201,})(?![^ ])',
        '', 'g'));

-- What the index stores for a text: its english lexemes (weight D) and its identifier terms
-- (weight A). The terms hold no quote, backslash or space, so they are written as tsvector input
-- directly ('term':1A ...). The english part reads the first 100,000 characters.
CREATE FUNCTION memory_text_document(content text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN to_tsvector('english'::regconfig, left(content, 100000))
        || regexp_replace(btrim(regexp_replace(memory_text_terms(content), ' +', ' ', 'g')),
                          '[^ ]+', '''\&'':1A', 'g')::tsvector;

-- The tsquery of a search text: its identifier terms OR-ed when it has any (the weight A
-- lexemes of its own memory_text_document); otherwise its lexemes OR-ed, leaving out those the
-- planner's statistics (ANALYZE's most common lexemes of content_tsv) count in more than
-- memory_text_common_rows() entries, unless that leaves none. An identifier names what the text
-- is about, and the rarer words carry the rest of its meaning; the ordinary and very common
-- words ("how do I use ...") would make the query match, and a search rank, a large share of
-- all entries for little gain. A table never analyzed, or a small one, keeps every lexeme.
-- Built through tsvector's text form, which quotes every lexeme (no lexeme holds a space), so
-- dropping the positions and joining with ' | ' gives tsquery input; no dictionary runs twice.
-- NULL (matches nothing, and no NOTICE) for a text without lexemes, e.g. only stop words.
CREATE FUNCTION memory_text_common_rows() RETURNS real
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 500;

-- The lexemes of content_tsv that ANALYZE found in more than memory_text_common_rows() entries.
-- The table is named through a row of it (tableoid), which binds it at creation: no lookup by
-- name through search_path. NULL when the table is empty or never analyzed.
CREATE FUNCTION memory_text_common_lexemes() RETURNS text[]
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (SELECT array_agg(u.lexeme)
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
                           AND s.attname = 'content_tsv',
                 unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs)
                     AS u(lexeme, freq)
            WHERE c.oid = (SELECT e.tableoid FROM memory_entries e LIMIT 1)
              AND u.freq * c.reltuples > memory_text_common_rows());

CREATE FUNCTION memory_text_query(query text) RETURNS tsquery
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    RETURN regexp_replace(
        regexp_replace(COALESCE(NULLIF(ts_filter(memory_text_document(query), '{a}')::text, ''),
                                NULLIF(ts_delete(memory_text_document(query),
                                                 memory_text_common_lexemes())::text, ''),
                                NULLIF(memory_text_document(query)::text, '')),
                       ''':[0-9A-D,]+(?= |$)', '''', 'g'),
        ' ', ' | ', 'g')::tsquery;

-- Applied to existing rows: adding a stored generated column rewrites the table (and rebuilds its
-- indexes, the HNSW index included) under an ACCESS EXCLUSIVE lock; docs/schema.md gives the cost.
-- `key` is a caller's stable id for an entry, unique per collection (NULLs do not collide); adding
-- it needs no rewrite. Identical content stays stored once per collection, as in 004.
-- The rewrite is the point (every row gets its content_tsv) and holds ACCESS EXCLUSIVE until the
-- transaction ends, so a NOT VALID constraint or a separate concurrent unique index would block
-- nothing less.
ALTER TABLE memory_entries
    -- squawk-ignore adding-field-with-default
    ADD COLUMN content_tsv tsvector GENERATED ALWAYS AS (memory_text_document(content)) STORED,
    ADD COLUMN key text CHECK (key <> '' AND length(key) <= 512),
    -- squawk-ignore constraint-missing-not-valid,disallowed-unique-constraint
    ADD CONSTRAINT memory_entries_collection_key_key UNIQUE (collection_id, key),
    -- Kept in the row, uncompressed while it fits: a text search reads the tsvector of every
    -- matching row to rank it, and fetching it from the TOAST table (where rows holding a
    -- 1536-d vector otherwise push it) costs several times the ranking itself.
    ALTER COLUMN content_tsv SET STORAGE MAIN;

-- Serves `content_tsv @@ memory_text_query($1)` (text and hybrid searches). The ALTER TABLE above
-- already holds ACCESS EXCLUSIVE on the table in this transaction: CONCURRENTLY would gain nothing.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX memory_entries_content_tsv_idx ON memory_entries USING gin (content_tsv);
