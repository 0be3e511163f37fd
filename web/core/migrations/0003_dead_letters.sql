-- Events that can never be stored, parked with their reason so nothing accepted is lost
-- silently; the dashboard can send them through again.
CREATE TABLE dead_letters (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id text NOT NULL,
    app_id text,
    event_id text,
    event jsonb NOT NULL,
    reason text NOT NULL,
    attempts integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    retried_at timestamptz
);

CREATE INDEX dead_letters_pending ON dead_letters (created_at DESC) WHERE retried_at IS NULL;
