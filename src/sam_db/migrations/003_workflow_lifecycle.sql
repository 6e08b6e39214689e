-- 003 workflow lifecycle: a status per workflow with enforced transitions, a log of every transition,
-- and a numbered snapshot of every configuration a workflow has had.
--
--   draft ──► active ◄──► paused
--     │         │            │
--     └─────────┴──► archived ◄┘      archived ──► active | draft  (restore)
--
-- Both the log and the snapshots are written by triggers, so no writer can forget them. Who made a
-- change and why can be passed per transaction (SET LOCAL sam_db.actor = '...'; SET LOCAL
-- sam_db.reason = '...'); both are optional.

-- Existing workflows, and workflows that writers unaware of the lifecycle create, are in use: the
-- default state is 'active', not 'draft'.
ALTER TABLE workflows
    ADD COLUMN status text NOT NULL DEFAULT 'active'
        CONSTRAINT workflows_status_check
        CHECK (status IN ('draft', 'active', 'paused', 'archived')),
    ADD COLUMN status_changed_at timestamptz NOT NULL DEFAULT now(),
    -- Number of the current config's snapshot in workflow_versions; maintained by the trigger.
    ADD COLUMN version integer NOT NULL DEFAULT 1
        CONSTRAINT workflows_version_check CHECK (version >= 1);

-- Workflows in a state ("active workflows"), most recently changed first.
CREATE INDEX workflows_status_changed_idx ON workflows (status, status_changed_at DESC);

-- Every configuration a workflow has had. Version 1 is its config at creation; each UPDATE that
-- changes workflows.config adds the next number.
CREATE TABLE workflow_versions (
    -- ON DELETE CASCADE: the history of a deleted workflow has nothing left to describe (archive a
    -- workflow to keep it).
    workflow_id text        NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version     integer     NOT NULL CONSTRAINT workflow_versions_version_check CHECK (version >= 1),
    config      jsonb       NOT NULL
                CONSTRAINT workflow_versions_config_check CHECK (jsonb_typeof(config) = 'object'),
    created_by  text,
    note        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Serves "versions of a workflow" and "version N of a workflow".
    PRIMARY KEY (workflow_id, version)
);

-- Every status change of a workflow, including its creation (from_status NULL).
CREATE TABLE workflow_state_transitions (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- ON DELETE CASCADE, as for workflow_versions.
    workflow_id text        NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    from_status text
                CONSTRAINT workflow_state_transitions_from_status_check
                CHECK (from_status IN ('draft', 'active', 'paused', 'archived')),
    to_status   text        NOT NULL
                CONSTRAINT workflow_state_transitions_to_status_check
                CHECK (to_status IN ('draft', 'active', 'paused', 'archived')),
    actor       text,
    reason      text,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workflow_state_transitions_change_check CHECK (from_status IS DISTINCT FROM to_status)
);

-- A workflow's transitions in time order (and the ON DELETE CASCADE lookup).
CREATE INDEX workflow_state_transitions_workflow_idx
    ON workflow_state_transitions (workflow_id, occurred_at, id);

-- Backfill: workflows that exist already get version 1 (their current config) and a creation entry.
UPDATE workflows SET status_changed_at = created_at;
INSERT INTO workflow_versions (workflow_id, version, config, note, created_at)
SELECT id, 1, config, 'existing config when migration 003 was applied', updated_at FROM workflows;
INSERT INTO workflow_state_transitions (workflow_id, from_status, to_status, reason, occurred_at)
SELECT id, NULL, status, 'existing workflow when migration 003 was applied', created_at FROM workflows;

-- BEFORE trigger: refuses a transition the lifecycle does not allow, stamps status_changed_at, and
-- numbers the config version (a new number exactly when the config changes; a writer cannot set it).
-- It touches no table, so it does not depend on search_path.
CREATE FUNCTION workflows_lifecycle_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.version := 1;
        RETURN NEW;
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        IF NOT (OLD.status, NEW.status) IN (
            ('draft', 'active'), ('draft', 'archived'),
            ('active', 'paused'), ('active', 'archived'),
            ('paused', 'active'), ('paused', 'archived'),
            ('archived', 'active'), ('archived', 'draft')
        ) THEN
            RAISE EXCEPTION 'workflow % cannot go from % to %', OLD.id, OLD.status, NEW.status
                USING ERRCODE = 'check_violation',
                      HINT = 'allowed: draft->active|archived, active->paused|archived, '
                             'paused->active|archived, archived->active|draft';
        END IF;
        NEW.status_changed_at := now();
    END IF;
    IF NEW.config IS DISTINCT FROM OLD.config THEN
        NEW.version := OLD.version + 1;
    ELSE
        NEW.version := OLD.version;
    END IF;
    RETURN NEW;
END
$$;

-- AFTER trigger: writes the transition log entry and the config snapshot. It inserts into tables by
-- unqualified name, so it pins search_path to the one this migration ran with (the target schema):
-- each schema's function writes to its own schema's tables whatever the caller's search_path is.
-- (AFTER, not BEFORE: both tables reference workflows, whose new row must exist first.)
CREATE FUNCTION workflows_lifecycle_record() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    -- missing_ok: NULL when never set; '' after a SET LOCAL has ended in this session.
    v_actor  text := nullif(current_setting('sam_db.actor', true), '');
    v_reason text := nullif(current_setting('sam_db.reason', true), '');
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO workflow_state_transitions (workflow_id, from_status, to_status, actor, reason)
        VALUES (NEW.id, NULL, NEW.status, v_actor, v_reason);
        INSERT INTO workflow_versions (workflow_id, version, config, created_by, note)
        VALUES (NEW.id, NEW.version, NEW.config, v_actor, v_reason);
        RETURN NULL;
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO workflow_state_transitions (workflow_id, from_status, to_status, actor, reason)
        VALUES (NEW.id, OLD.status, NEW.status, v_actor, v_reason);
    END IF;
    IF NEW.version <> OLD.version THEN
        INSERT INTO workflow_versions (workflow_id, version, config, created_by, note)
        VALUES (NEW.id, NEW.version, NEW.config, v_actor, v_reason);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER workflows_lifecycle_guard
    BEFORE INSERT OR UPDATE ON workflows
    FOR EACH ROW EXECUTE FUNCTION workflows_lifecycle_guard();
CREATE TRIGGER workflows_lifecycle_record_insert
    AFTER INSERT ON workflows
    FOR EACH ROW EXECUTE FUNCTION workflows_lifecycle_record();
-- The WHEN clause keeps ordinary updates (name, metadata, updated_at) from queuing an AFTER event.
CREATE TRIGGER workflows_lifecycle_record_update
    AFTER UPDATE ON workflows
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.version IS DISTINCT FROM NEW.version)
    EXECUTE FUNCTION workflows_lifecycle_record();
