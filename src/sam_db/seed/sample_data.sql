-- Optional sample data (`sam-db seed`): a few workflows, sessions, events and metrics to explore a
-- fresh monitor with. Needs migrations 001-003 applied.
--
-- Idempotent: workflows and sessions have fixed ids and ON CONFLICT DO NOTHING. Events and metrics have
-- generated ids, so each seed session's rows are inserted only while that session has none; running
-- this file again inserts nothing. Names are unqualified (the target schema comes from search_path).
-- Timestamps are fixed, so the data is the same wherever it is loaded.

INSERT INTO workflows (id, name, description, config, metadata, status, created_at, updated_at)
VALUES
    ('wf-code-review', 'Code review',
     'Reviews a pull request and posts comments.',
     '{"model": "claude-sonnet-4", "max_turns": 30, "tools": ["Read", "Grep", "Bash"]}',
     '{"team": "platform", "sample": true}',
     'active', '2025-01-06 09:00:00+00', '2025-01-06 09:00:00+00'),
    ('wf-bug-triage', 'Bug triage',
     'Reproduces a reported bug and proposes a fix.',
     '{"model": "claude-opus-4", "max_turns": 60, "tools": ["Read", "Edit", "Bash"]}',
     '{"team": "support", "sample": true}',
     'active', '2025-01-06 09:30:00+00', '2025-01-06 09:30:00+00'),
    ('wf-release-notes', 'Release notes',
     'Drafts release notes from merged pull requests (not yet in use).',
     '{"model": "claude-haiku-4", "max_turns": 10, "tools": ["Read"]}',
     '{"team": "docs", "sample": true}',
     'draft', '2025-01-07 14:00:00+00', '2025-01-07 14:00:00+00')
ON CONFLICT (id) DO NOTHING;

-- Session ids look like the Claude Code session UUIDs agents report.
INSERT INTO sessions (id, workflow_id, parent_session_id, agent, agent_version, model, status,
                      error_message, metadata, started_at, ended_at, updated_at)
VALUES
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b01', 'wf-code-review', NULL, 'claude-code', '1.0.30',
     'claude-sonnet-4', 'completed', NULL, '{"cwd": "/repos/api", "pr": 1423, "sample": true}',
     '2025-01-08 10:00:00+00', '2025-01-08 10:06:40+00', '2025-01-08 10:06:40+00'),
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b02', 'wf-code-review', NULL, 'claude-code', '1.0.30',
     'claude-sonnet-4', 'running', NULL, '{"cwd": "/repos/web", "pr": 877, "sample": true}',
     '2025-01-08 11:00:00+00', NULL, '2025-01-08 11:02:00+00'),
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b03', 'wf-bug-triage', NULL, 'claude-code', '1.0.30',
     'claude-opus-4', 'failed', 'max_turns reached without a reproduction',
     '{"cwd": "/repos/api", "issue": 5120, "sample": true}',
     '2025-01-08 12:00:00+00', '2025-01-08 12:25:00+00', '2025-01-08 12:25:00+00'),
    -- A subagent spawned by the triage session.
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b04', 'wf-bug-triage', '5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b03',
     'claude-code', '1.0.30', 'claude-haiku-4', 'completed', NULL,
     '{"subagent": "log-searcher", "sample": true}',
     '2025-01-08 12:05:00+00', '2025-01-08 12:07:30+00', '2025-01-08 12:07:30+00'),
    -- An ad-hoc session that belongs to no workflow.
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b05', NULL, NULL, 'claude-code', '1.0.31',
     'claude-sonnet-4', 'idle', NULL, '{"cwd": "/home/dev/scratch", "sample": true}',
     '2025-01-08 13:00:00+00', NULL, '2025-01-08 13:01:10+00')
ON CONFLICT (id) DO NOTHING;

INSERT INTO session_events (session_id, event_type, payload, occurred_at, received_at)
SELECT v.session_id, v.event_type, v.payload::jsonb, v.occurred_at::timestamptz,
       v.occurred_at::timestamptz
FROM (VALUES
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b01', 'SessionStart', '{"source": "startup"}',
     '2025-01-08 10:00:00+00'),
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b01', 'UserPromptSubmit', '{"prompt": "Review PR #1423"}',
     '2025-01-08 10:00:05+00'),
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b01', 'PreToolUse',
     '{"tool_name": "Bash", "tool_input": {"command": "gh pr diff 1423"}}', '2025-01-08 10:00:20+00'),
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b01', 'PostToolUse',
     '{"tool_name": "Bash", "exit_code": 0, "duration_ms": 850}', '2025-01-08 10:00:21+00'),
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b01', 'Stop', '{"reason": "end_turn"}',
     '2025-01-08 10:06:40+00'),
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b02', 'SessionStart', '{"source": "startup"}',
     '2025-01-08 11:00:00+00'),
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b02', 'PreToolUse',
     '{"tool_name": "Read", "tool_input": {"file_path": "src/app.tsx"}}', '2025-01-08 11:02:00+00'),
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b03', 'SessionStart', '{"source": "startup"}',
     '2025-01-08 12:00:00+00'),
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b03', 'PreToolUse',
     '{"tool_name": "Task", "tool_input": {"description": "search the logs"}}',
     '2025-01-08 12:04:50+00'),
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b03', 'Stop', '{"reason": "max_turns"}',
     '2025-01-08 12:25:00+00'),
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b04', 'SubagentStop', '{"result": "3 matching stack traces"}',
     '2025-01-08 12:07:30+00'),
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b05', 'Notification',
     '{"message": "Claude is waiting for your input"}', '2025-01-08 13:01:10+00')
) AS v (session_id, event_type, payload, occurred_at)
WHERE NOT EXISTS (SELECT 1 FROM session_events AS e WHERE e.session_id = v.session_id);

INSERT INTO session_metrics (session_id, name, value, unit, labels, recorded_at)
SELECT v.session_id, v.name, v.value, v.unit, v.labels::jsonb, v.recorded_at::timestamptz
FROM (VALUES
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b01', 'input_tokens', 48200::float8, 'tokens',
     '{"model": "claude-sonnet-4"}', '2025-01-08 10:06:40+00'),
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b01', 'output_tokens', 3900, 'tokens',
     '{"model": "claude-sonnet-4"}', '2025-01-08 10:06:40+00'),
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b01', 'cost_usd', 0.2031, 'USD',
     '{"model": "claude-sonnet-4"}', '2025-01-08 10:06:40+00'),
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b01', 'tool_calls', 7, NULL,
     '{}', '2025-01-08 10:06:40+00'),
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b03', 'input_tokens', 312000, 'tokens',
     '{"model": "claude-opus-4"}', '2025-01-08 12:25:00+00'),
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b03', 'output_tokens', 15400, 'tokens',
     '{"model": "claude-opus-4"}', '2025-01-08 12:25:00+00'),
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b03', 'cost_usd', 5.835, 'USD',
     '{"model": "claude-opus-4"}', '2025-01-08 12:25:00+00'),
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b03', 'tool_calls', 41, NULL,
     '{}', '2025-01-08 12:25:00+00'),
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b04', 'input_tokens', 21000, 'tokens',
     '{"model": "claude-haiku-4"}', '2025-01-08 12:07:30+00'),
    ('5f0c6a52-8a0e-4c1b-9d43-0d6f3c2a7b04', 'cost_usd', 0.0231, 'USD',
     '{"model": "claude-haiku-4"}', '2025-01-08 12:07:30+00')
) AS v (session_id, name, value, unit, labels, recorded_at)
WHERE NOT EXISTS (SELECT 1 FROM session_metrics AS m WHERE m.session_id = v.session_id);
