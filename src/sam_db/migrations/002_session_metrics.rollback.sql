-- Undo 002: the views first (they depend on the table), then the table.
DROP VIEW workflow_session_stats;
DROP VIEW workflow_metric_summary;
DROP VIEW session_metric_totals;
DROP TABLE session_metrics;
