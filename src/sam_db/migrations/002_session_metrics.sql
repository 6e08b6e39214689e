-- 002 session metrics: numeric measurements reported for a session (tokens, cost, tool calls, latency)
-- and per-session / per-workflow aggregate views over them.
--
-- One row per observation (name, value), not one wide row per session: agents report different
-- metrics, and a new metric must not need a migration. Values are additive increments ("this turn used
-- 1200 input tokens"), so a session's figure for a metric is the SUM of its rows; a writer that only
-- knows a running total reports it once, at the end.

CREATE TABLE session_metrics (
    id          bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- ON DELETE CASCADE: like events, metrics belong to their session.
    session_id  text             NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    -- Lower-case dotted/underscored names: "input_tokens", "cost_usd", "tool.duration_ms".
    name        text             NOT NULL
                CONSTRAINT session_metrics_name_check
                CHECK (name ~ '^[a-z][a-z0-9_.]*$' AND length(name) <= 100),
    -- double precision: sums and averages are what analytics does with these. NaN and infinities would
    -- poison every aggregate, so they are refused.
    value       double precision NOT NULL
                CONSTRAINT session_metrics_value_check
                CHECK (value NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)),
    unit        text,
    -- Dimensions of the observation, e.g. {"model": "claude-sonnet-4", "tool": "Bash"}.
    labels      jsonb            NOT NULL DEFAULT '{}'::jsonb
                CONSTRAINT session_metrics_labels_check CHECK (jsonb_typeof(labels) = 'object'),
    recorded_at timestamptz      NOT NULL DEFAULT now()
);

-- A session's metrics (by name, in time order); serves the views' GROUP BY session, name and the
-- ON DELETE CASCADE lookup from sessions.
CREATE INDEX session_metrics_session_name_idx ON session_metrics (session_id, name, recorded_at);
-- One metric across sessions over time ("cost_usd in the last 24 hours").
CREATE INDEX session_metrics_name_recorded_idx ON session_metrics (name, recorded_at DESC);

-- A session's total per metric: the unit of every per-workflow figure below.
CREATE VIEW session_metric_totals AS
SELECT
    m.session_id,
    m.name,
    sum(m.value)         AS total,
    count(*)             AS samples,
    min(m.recorded_at)   AS first_recorded_at,
    max(m.recorded_at)   AS last_recorded_at
FROM session_metrics AS m
GROUP BY m.session_id, m.name;

-- Per workflow and metric: how many sessions reported it, the sum over them, and the distribution of
-- per-session totals. Sessions without a workflow form the workflow_id IS NULL row.
CREATE VIEW workflow_metric_summary AS
SELECT
    s.workflow_id,
    t.name,
    count(*)                                                   AS sessions,
    sum(t.total)                                               AS total,
    avg(t.total)                                               AS avg_per_session,
    min(t.total)                                               AS min_per_session,
    max(t.total)                                               AS max_per_session,
    percentile_cont(0.5)  WITHIN GROUP (ORDER BY t.total)      AS p50_per_session,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY t.total)      AS p95_per_session,
    max(t.last_recorded_at)                                    AS last_recorded_at
FROM session_metric_totals AS t
JOIN sessions AS s ON s.id = t.session_id
GROUP BY s.workflow_id, t.name;

-- Per workflow: session counts by outcome and durations of finished sessions (from sessions alone,
-- so it covers sessions that reported no metrics). success_rate is over finished sessions.
CREATE VIEW workflow_session_stats AS
SELECT
    s.workflow_id,
    count(*)                                                          AS sessions,
    count(*) FILTER (WHERE s.status IN ('running', 'idle'))           AS live,
    count(*) FILTER (WHERE s.status = 'completed')                    AS completed,
    count(*) FILTER (WHERE s.status = 'failed')                       AS failed,
    count(*) FILTER (WHERE s.status = 'cancelled')                    AS cancelled,
    count(*) FILTER (WHERE s.status = 'completed')::double precision
        / nullif(count(*) FILTER (WHERE s.ended_at IS NOT NULL), 0)   AS success_rate,
    avg(s.ended_at - s.started_at)                                    AS avg_duration,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY
        extract(epoch FROM s.ended_at - s.started_at))                AS p95_duration_seconds,
    min(s.started_at)                                                 AS first_started_at,
    max(s.started_at)                                                 AS last_started_at
FROM sessions AS s
GROUP BY s.workflow_id;
