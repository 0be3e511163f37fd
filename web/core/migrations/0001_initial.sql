-- Apps, and the events their SDKs send, each stored once per (app, event id).
CREATE TABLE apps (
    id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name text NOT NULL,
    write_key text NOT NULL UNIQUE,
    require_write_key boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE log_entries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    event_id text NOT NULL,
    event_name text,
    payload jsonb NOT NULL,
    validation_status text NOT NULL CHECK (validation_status IN ('valid', 'invalid')),
    errors jsonb NOT NULL DEFAULT '[]',
    plan_version integer,
    session text,
    received_at timestamptz NOT NULL,
    -- clock_timestamp, not now(): the time this row was written, for queue-latency figures.
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (app_id, event_id)
);

CREATE INDEX log_entries_app_recent ON log_entries (app_id, id DESC);
CREATE INDEX log_entries_app_status_recent ON log_entries (app_id, validation_status, id DESC);
