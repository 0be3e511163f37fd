-- Issue 17: pairing a device with a QA session. "Start a QA session" makes a session id and
-- a short code; a phone's browser opens /p/<code> to watch that session live, and the QR
-- code on the pairing page carries the session's ingest address. Kept here, not in memory,
-- so short URLs survive a restart; each one expires (expires_at, on the database's clock).
CREATE TABLE pairings (
    code text PRIMARY KEY CHECK (code ~ '^[a-z2-9]{10}$'),
    app_id text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    session text NOT NULL CHECK (length(session) BETWEEN 1 AND 100),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    CHECK (expires_at > created_at)
);
CREATE INDEX pairings_expires ON pairings (expires_at);
CREATE INDEX pairings_app_created ON pairings (app_id, created_at DESC);
