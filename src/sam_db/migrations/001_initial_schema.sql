-- 001 initial schema: workflows, the sessions agents run (optionally under a workflow) and each
-- session's event log.
--
-- Names are unqualified: the engine sets search_path to the target schema, so every schema that is
-- migrated gets its own copy of these objects.
--
-- Ids of workflows and sessions are text, not uuid: agents supply their own (a Claude Code session
-- UUID string, "wf-code-review", ...). The default makes one up for writers that do not.

CREATE TABLE workflows (
    id          text        PRIMARY KEY DEFAULT gen_random_uuid()::text
                CONSTRAINT workflows_id_check CHECK (id <> '' AND length(id) <= 200),
    name        text        NOT NULL
                CONSTRAINT workflows_name_check CHECK (name <> '' AND length(name) <= 200),
    description text,
    -- The workflow's current configuration (prompts, tools, limits...). 003 snapshots each change.
    config      jsonb       NOT NULL DEFAULT '{}'::jsonb
                CONSTRAINT workflows_config_check CHECK (jsonb_typeof(config) = 'object'),
    metadata    jsonb       NOT NULL DEFAULT '{}'::jsonb
                CONSTRAINT workflows_metadata_check CHECK (jsonb_typeof(metadata) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Set by the writer on UPDATE (no trigger: most updates already know the time).
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    id                text        PRIMARY KEY DEFAULT gen_random_uuid()::text
                      CONSTRAINT sessions_id_check CHECK (id <> '' AND length(id) <= 200),
    -- ON DELETE SET NULL: a session is a record of what an agent did. Deleting (rather than archiving,
    -- see 003) a workflow definition must not erase that history, and sessions without a workflow are
    -- normal anyway (an ad-hoc Claude Code session).
    workflow_id       text        REFERENCES workflows (id) ON DELETE SET NULL,
    -- A subagent's session points at the session that spawned it. SET NULL for the same reason: a
    -- subagent's history outlives the parent row.
    parent_session_id text        REFERENCES sessions (id) ON DELETE SET NULL
                      CONSTRAINT sessions_parent_not_self_check CHECK (parent_session_id <> id),
    -- Which agent ran it ("claude-code", "codex", ...) and its version / model: free-form, as reported.
    agent             text,
    agent_version     text,
    model             text,
    -- running: working; idle: waiting for input; the other three are terminal.
    status            text        NOT NULL DEFAULT 'running'
                      CONSTRAINT sessions_status_check
                      CHECK (status IN ('running', 'idle', 'completed', 'failed', 'cancelled')),
    error_message     text,
    metadata          jsonb       NOT NULL DEFAULT '{}'::jsonb
                      CONSTRAINT sessions_metadata_check CHECK (jsonb_typeof(metadata) = 'object'),
    started_at        timestamptz NOT NULL DEFAULT now(),
    ended_at          timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    -- A session has ended exactly when it is in a terminal state, so durations (ended_at - started_at)
    -- exist for every finished session and never for a live one.
    CONSTRAINT sessions_ended_matches_status_check
        CHECK ((ended_at IS NULL) = (status IN ('running', 'idle'))),
    CONSTRAINT sessions_ended_after_started_check CHECK (ended_at >= started_at)
);

-- Sessions of a workflow, newest first (also serves the ON DELETE SET NULL lookup on workflows).
CREATE INDEX sessions_workflow_started_idx ON sessions (workflow_id, started_at DESC);
-- Recent sessions in a state ("running sessions", "failed today"), newest first.
CREATE INDEX sessions_status_started_idx ON sessions (status, started_at DESC);
-- Recent sessions, whatever their state (the dashboard's default list).
CREATE INDEX sessions_started_idx ON sessions (started_at DESC);
-- Subagent sessions of a session; partial because most sessions have no parent.
CREATE INDEX sessions_parent_idx ON sessions (parent_session_id) WHERE parent_session_id IS NOT NULL;

-- The append-only event log of a session: prompts, tool calls, results, notifications...
CREATE TABLE session_events (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- ON DELETE CASCADE: events have no meaning without their session; deleting a session (retention)
    -- deletes its log.
    session_id  text        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    -- Free-form, not a CHECK list: agents add event kinds (Claude Code hook names such as PreToolUse,
    -- PostToolUse, UserPromptSubmit, Stop) faster than a migration could follow.
    event_type  text        NOT NULL
                CONSTRAINT session_events_event_type_check
                CHECK (event_type <> '' AND length(event_type) <= 100),
    payload     jsonb       NOT NULL DEFAULT '{}'::jsonb
                CONSTRAINT session_events_payload_check CHECK (jsonb_typeof(payload) = 'object'),
    -- When it happened at the agent vs when the monitor stored it (they differ for buffered uploads).
    occurred_at timestamptz NOT NULL DEFAULT now(),
    received_at timestamptz NOT NULL DEFAULT now()
);

-- A session's events in time order; id breaks ties between events with the same timestamp, so paging
-- by (occurred_at, id) is stable. Also serves the ON DELETE CASCADE lookup from sessions.
CREATE INDEX session_events_session_occurred_idx ON session_events (session_id, occurred_at, id);
-- Recent events of one kind across sessions ("all Stop events in the last hour").
CREATE INDEX session_events_type_occurred_idx ON session_events (event_type, occurred_at DESC);
