-- Undo 004. The vector extension stays installed: other schemas in this database may use it.
DROP FUNCTION memory_search_vector(vector);
DROP TABLE memory_access_log;
DROP TABLE memory_entries;
DROP FUNCTION memory_access_log_forget();
DROP TABLE memory_collections;
