-- Issue 8: alerts, retention, delivery counting without Redis, and periodic jobs.

-- Days an app's events are kept; NULL means the server's default (LVD_RETENTION_DAYS).
ALTER TABLE apps ADD COLUMN retention_days integer
    CHECK (retention_days BETWEEN 1 AND 3650);

-- An app's alert settings. scanned_id is the scan's cursor: invalid events up to this row
-- id have been looked at; it starts at the app's newest row when alerts are first set, so
-- switching alerts on never mails the whole history.
CREATE TABLE app_alerts (
    app_id text PRIMARY KEY REFERENCES apps (id) ON DELETE CASCADE,
    email_enabled boolean NOT NULL DEFAULT true,
    email_recipients text[] NOT NULL DEFAULT '{}',
    webhook_enabled boolean NOT NULL DEFAULT true,
    webhook_url text,
    new_failures_enabled boolean NOT NULL DEFAULT true,
    invalid_share_enabled boolean NOT NULL DEFAULT false,
    invalid_share double precision NOT NULL DEFAULT 0.2
        CHECK (invalid_share > 0 AND invalid_share <= 1),
    window_seconds integer NOT NULL DEFAULT 300 CHECK (window_seconds BETWEEN 10 AND 86400),
    min_events integer NOT NULL DEFAULT 20 CHECK (min_events > 0),
    scanned_id bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every alert raised, once: the unique dedupe key is the fingerprint (event name, error
-- path, rule) for a new failure, and the window for an invalid share, so a scan that runs
-- twice (a redelivered message, two workers) records it once.
CREATE TABLE alerts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('new_failure', 'invalid_share')),
    dedupe_key text NOT NULL,
    event_name text,
    path text,
    rule text,
    message text,
    first_entry_id bigint,
    invalid_count integer,
    total_count integer,
    window_start timestamptz,
    created_at timestamptz NOT NULL,
    UNIQUE (app_id, dedupe_key)
);
CREATE INDEX alerts_app_kind_recent ON alerts (app_id, kind, created_at DESC);

-- One row per alert and channel. A sender claims a row by moving next_attempt_at past the
-- send's timeout (a lease), sends, then sets sent_at: a crash between the two sends again
-- after the lease (at least once); a second message for the same row finds it claimed or
-- sent and does nothing.
CREATE TABLE alert_deliveries (
    alert_id bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    channel text NOT NULL CHECK (channel IN ('email', 'webhook')),
    target text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    sent_at timestamptz,
    failed_at timestamptz,
    last_error text,
    PRIMARY KEY (alert_id, channel)
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;

-- With RabbitMQ as the broker, how often a redelivered message reached a worker without
-- finishing (with Redis, a Redis key counts this). Rows live only while a message crashes.
CREATE TABLE message_deliveries (
    message_id text PRIMARY KEY,
    deliveries integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Periodic jobs: a worker enqueues a job only when it moves due_at forward itself, so
-- any number of worker processes enqueue each job once per interval.
CREATE TABLE scheduled_jobs (
    name text PRIMARY KEY,
    due_at timestamptz NOT NULL
);
