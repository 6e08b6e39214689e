-- Undo 001: drop its tables, dependents first (indexes and constraints go with them).
DROP TABLE session_events;
DROP TABLE sessions;
DROP TABLE workflows;
