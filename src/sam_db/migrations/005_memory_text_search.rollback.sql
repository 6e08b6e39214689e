-- Undo 005. Entries keep their text, metadata and embeddings; their keys are discarded.
ALTER TABLE memory_entries
    DROP CONSTRAINT memory_entries_collection_key_key,
    DROP COLUMN key,
    DROP COLUMN content_tsv;
DROP FUNCTION memory_text_query(text);
DROP FUNCTION memory_text_query(text, text[]);
DROP FUNCTION memory_text_pair_query(text[]);
DROP FUNCTION memory_text_lexeme_query(text[]);
DROP FUNCTION memory_text_query_lexemes(text, text[]);
DROP FUNCTION memory_text_document_lexemes(tsvector, text[]);
DROP FUNCTION memory_text_has_terms(text);
DROP FUNCTION memory_text_common_lexemes();
DROP FUNCTION memory_text_common_rows();
DROP FUNCTION memory_text_document(text);
DROP FUNCTION memory_text_terms(text);
