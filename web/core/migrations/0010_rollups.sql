-- Issue 18: counts kept as events are stored, so the apps list, the summary API, coverage
-- and violations read small tables instead of counting log_entries. The worker's insert
-- statement adds the rows it inserted (never a redelivered one: it counts its own RETURNING);
-- a reset subtracts the rows it deleted; retention moves the app's horizon (below).
-- Hours are UTC hours (date_bin from the epoch, whatever the session's time zone). The test
-- session is part of every key, so a session's counts are its own rows.

-- Events per app, hour, test session, name and status.
CREATE TABLE event_counts_hourly (
    app_id text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    hour timestamptz NOT NULL,
    session text,
    event_name text,
    status text NOT NULL,
    n bigint NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    CONSTRAINT event_counts_hourly_key
        UNIQUE NULLS NOT DISTINCT (app_id, hour, session, event_name, status)
);
CREATE INDEX event_counts_hourly_session
    ON event_counts_hourly (app_id, session, hour) WHERE session IS NOT NULL;

-- Failures (errors of severity error) per app, hour, test session and fingerprint (event
-- name, path, rule), with the message of the latest.
CREATE TABLE failure_counts_hourly (
    app_id text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    hour timestamptz NOT NULL,
    session text,
    event_name text,
    path text NOT NULL,
    rule text NOT NULL,
    n bigint NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    message text NOT NULL,
    CONSTRAINT failure_counts_hourly_key
        UNIQUE NULLS NOT DISTINCT (app_id, hour, session, event_name, path, rule)
);

-- Retention deletes an app's oldest events chunk by chunk; first it moves the app's horizon
-- to the hour after its cutoff and drops the counts of the hours before. Readers take the
-- counts of hours from the horizon on and count the (at most an hour of) events before it
-- themselves, so no count ever includes a purged event. No row: every hour is counted.
CREATE TABLE rollup_horizons (
    app_id text PRIMARY KEY REFERENCES apps (id) ON DELETE CASCADE,
    counted_from timestamptz NOT NULL
);

-- TRUNCATE fires no DELETE: TRUNCATE log_entries empties the counts too.
CREATE FUNCTION log_entries_truncate_rollups() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM event_counts_hourly;
    DELETE FROM failure_counts_hourly;
    DELETE FROM rollup_horizons;
    RETURN NULL;
END
$$;

CREATE TRIGGER log_entries_truncate_rollups
    AFTER TRUNCATE ON log_entries
    FOR EACH STATEMENT EXECUTE FUNCTION log_entries_truncate_rollups();

-- The events stored so far. (A worker still running the previous version's insert after this
-- migration stores events it does not count: stop old workers before migrating.)
INSERT INTO event_counts_hourly
    (app_id, hour, session, event_name, status, n, first_seen, last_seen)
SELECT app_id, date_bin('1 hour', received_at, 'epoch'), session, event_name,
       validation_status, count(*), min(received_at), max(received_at)
FROM log_entries
GROUP BY 1, 2, 3, 4, 5;

INSERT INTO failure_counts_hourly
    (app_id, hour, session, event_name, path, rule, n, first_seen, last_seen, message)
SELECT app_id, hour, session, event_name, path, rule, count(*), min(received_at),
       max(received_at), (array_agg(message ORDER BY received_at DESC))[1]
FROM (
    SELECT e.app_id, date_bin('1 hour', e.received_at, 'epoch') AS hour, e.session,
           e.event_name, coalesce(f ->> 'path', '') AS path, coalesce(f ->> 'rule', '') AS rule,
           coalesce(f ->> 'message', '') AS message, e.received_at
    FROM log_entries e
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(e.errors) = 'array' THEN e.errors ELSE '[]' END
    ) AS f
    WHERE e.validation_status = 'invalid' AND coalesce(f ->> 'severity', 'error') = 'error'
) AS failures
GROUP BY 1, 2, 3, 4, 5, 6;
