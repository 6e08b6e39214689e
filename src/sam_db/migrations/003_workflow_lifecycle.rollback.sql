-- Undo 003: triggers, their functions, the two tables, then the columns added to workflows (their
-- CHECK constraints and the status index go with them). Workflow rows themselves are kept.
DROP TRIGGER workflows_lifecycle_record_update ON workflows;
DROP TRIGGER workflows_lifecycle_record_insert ON workflows;
DROP TRIGGER workflows_lifecycle_guard ON workflows;
DROP FUNCTION workflows_lifecycle_record();
DROP FUNCTION workflows_lifecycle_guard();
DROP TABLE workflow_state_transitions;
DROP TABLE workflow_versions;
DROP INDEX workflows_status_changed_idx;
ALTER TABLE workflows
    DROP COLUMN version,
    DROP COLUMN status_changed_at,
    DROP COLUMN status;
