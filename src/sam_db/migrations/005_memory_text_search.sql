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

-- Whether a text may hold identifier terms: false guarantees that memory_text_terms(content) is
-- empty (a text of plain words only), at the cost of one regular-expression match instead of
-- memory_text_terms' replacements, which dominate the cost of building a query. Each branch is a
-- way for a token to be no plain word: an underscore; . : / - between two token characters; a
-- letter beside a digit; a lower-case letter before an upper-case one, or two upper-case letters
-- before a lower-case one (camelCase, XMLParser); a cased letter beside an uncased one. A text
-- true here may still have no terms ("e.g."): memory_text_terms then decides.
CREATE FUNCTION memory_text_has_terms(content text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN content ~ ('_|[[:alnum:]][.:/-]+[[:alnum:]]|[[:alpha:]][[:digit:]]|[[:digit:]][[:alpha:]]'
                      '|[[:lower:]][[:upper:]]|[[:upper:]]{2}[[:lower:]]'
                      '|[[:upper:][:lower:]](?![[:upper:][:lower:]])[[:alpha:]]'
                      '|(?![[:upper:][:lower:]])[[:alpha:]][[:upper:][:lower:]]');

-- How many entries make a lexeme common: see memory_text_query.
CREATE FUNCTION memory_text_common_rows() RETURNS real
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 500;

-- The lexemes of content_tsv that ANALYZE found in more than memory_text_common_rows() entries,
-- the most common first. The table is named through a row of it (tableoid), which binds it at
-- creation: no lookup by name through search_path. NULL when the table is empty or never analyzed.
CREATE FUNCTION memory_text_common_lexemes() RETURNS text[]
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (SELECT array_agg(u.lexeme ORDER BY u.freq DESC, u.lexeme)
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
                           AND s.attname = 'content_tsv',
                 unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs)
                     AS u(lexeme, freq)
            WHERE c.oid = (SELECT e.tableoid FROM memory_entries e LIMIT 1)
              AND u.freq * c.reltuples > memory_text_common_rows());

-- The lexemes that the query of a document `doc` ORs (see memory_text_query_lexemes). `doc` is
-- used three times: PostgreSQL does not inline a function whose costly argument would then be
-- computed three times, so the document is built once.
CREATE FUNCTION memory_text_document_lexemes(doc tsvector, common_lexemes text[]) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN tsvector_to_array(COALESCE(
        NULLIF(ts_filter(doc, '{a}'), ''::tsvector),
        NULLIF(ts_delete(doc, common_lexemes), ''::tsvector),
        array_to_tsvector(ARRAY(SELECT u.lexeme FROM unnest(doc) u
                                ORDER BY array_position(common_lexemes, u.lexeme) DESC, u.lexeme
                                LIMIT 1))));

-- The lexemes of a search text that its query ORs: its identifier terms when it has any (the
-- weight A lexemes of its own memory_text_document); otherwise its lexemes but those in
-- `common_lexemes` (the store passes memory_text_common_lexemes(), which it reads at most once a
-- minute); when all of them are common, the least common one (the latest in that list). An
-- identifier names what the text is about, and the rarer words carry the rest of its meaning;
-- the ordinary and very common words ("how do I use ...") would make the query match, and a
-- search rank, a large share of all entries for little gain. A text without identifier terms
-- skips memory_text_terms (memory_text_has_terms): its document is its english lexemes alone.
-- Empty for a text without lexemes, e.g. only stop words.
CREATE FUNCTION memory_text_query_lexemes(query text, common_lexemes text[]) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN memory_text_document_lexemes(
        CASE WHEN memory_text_has_terms(query) THEN memory_text_document(query)
             ELSE to_tsvector('english'::regconfig, left(query, 100000)) END,
        common_lexemes);

-- The OR of `lexemes` as a tsquery; NULL (matches nothing, and no NOTICE) when there is none.
-- Built through tsvector's text form, which quotes every lexeme (no lexeme holds a space), so
-- joining with ' | ' gives tsquery input.
CREATE FUNCTION memory_text_lexeme_query(lexemes text[]) RETURNS tsquery
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN NULLIF(replace(array_to_tsvector(lexemes)::text, ' ', ' | '), '')::tsquery;

-- The tsquery matching entries that hold two or more of `lexemes`: the OR of every pair's AND,
-- for 3 to 24 lexemes (at most 276 pairs); for fewer or more, their OR (memory_text_lexeme_query).
-- A hybrid search's text leg matches with it (see the store's _text_search): an entry holding one
-- of three or more lexemes counts too little there to matter, and such entries are most of what a
-- sentence of ordinary words matches.
CREATE FUNCTION memory_text_pair_query(lexemes text[]) RETURNS tsquery
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE WHEN cardinality(lexemes) BETWEEN 3 AND 24 THEN
        (SELECT string_agg('(' || replace(array_to_tsvector(ARRAY[a.lexeme, b.lexeme])::text,
                                          ' ', ' & ') || ')', ' | ')::tsquery
         FROM unnest(lexemes) WITH ORDINALITY a(lexeme, i)
         JOIN unnest(lexemes) WITH ORDINALITY b(lexeme, j) ON a.i < b.j)
    ELSE memory_text_lexeme_query(lexemes) END;

-- The tsquery of a search text: the OR of memory_text_query_lexemes.
CREATE FUNCTION memory_text_query(query text, common_lexemes text[]) RETURNS tsquery
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN memory_text_lexeme_query(memory_text_query_lexemes(query, common_lexemes));

-- The same, leaving out the lexemes that the table's statistics count as common now: for
-- queries written by hand.
CREATE FUNCTION memory_text_query(query text) RETURNS tsquery
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    RETURN memory_text_query(query, COALESCE(memory_text_common_lexemes(), '{}'));

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
