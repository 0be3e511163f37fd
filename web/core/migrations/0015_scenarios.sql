-- Issue 17: scenarios, ordered lists of expected events (with assertions) a test session is
-- judged against. Updated in place, not versioned: a run is judged live against the current
-- definition, the file in git is the history (`lvd scenario push/pull`), and `revision`
-- counts the saves so a report says which definition judged it.
CREATE TABLE scenarios (
    app_id text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    -- json, not jsonb: a scenario kept in git comes back with its keys in the order written.
    document json NOT NULL,
    revision integer NOT NULL DEFAULT 1 CHECK (revision > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, name)
);
