-- Tracking plans: every change is a new version; nothing is edited in place.
CREATE TABLE tracking_plans (
    app_id text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    version integer NOT NULL CHECK (version > 0),
    -- json, not jsonb: a plan kept in git comes back with its keys in the order written.
    document json NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, version)
);

-- The version ingest judges against; NULL until the app's first plan is saved.
ALTER TABLE apps ADD COLUMN plan_version integer;
