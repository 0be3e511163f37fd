-- Issue 17, hygiene checks: personal data, secrets and sizes near a destination's limit are
-- warnings in the verdict, on by default and switchable per app.
ALTER TABLE apps ADD COLUMN hygiene_checks boolean NOT NULL DEFAULT true;

-- Warnings are counted beside failures, so that the violations page groups them by
-- fingerprint as it groups failures; severity is part of the key ('error' or 'warning').
ALTER TABLE failure_counts_hourly ADD COLUMN severity text NOT NULL DEFAULT 'error';
ALTER TABLE failure_counts_hourly DROP CONSTRAINT failure_counts_hourly_key;
ALTER TABLE failure_counts_hourly ADD CONSTRAINT failure_counts_hourly_key
    UNIQUE NULLS NOT DISTINCT (app_id, hour, session, event_name, path, rule, severity);

-- The warnings stored so far (before this migration only unplanned_event could be one), from
-- each app's rollup horizon on, as migration 0010 counted the failures. (Stop old workers
-- before migrating: they would store warnings they do not count.)
INSERT INTO failure_counts_hourly
    (app_id, hour, session, event_name, path, rule, severity, n, first_seen, last_seen, message)
SELECT app_id, hour, session, event_name, path, rule, 'warning', count(*), min(received_at),
       max(received_at), (array_agg(message ORDER BY received_at DESC))[1]
FROM (
    SELECT e.app_id, date_bin('1 hour', e.received_at, 'epoch') AS hour, e.session,
           e.event_name, coalesce(f ->> 'path', '') AS path, coalesce(f ->> 'rule', '') AS rule,
           coalesce(f ->> 'message', '') AS message, e.received_at
    FROM log_entries e
    LEFT JOIN rollup_horizons h ON h.app_id = e.app_id
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(e.errors) = 'array' THEN e.errors ELSE '[]' END
    ) AS f
    WHERE e.errors <> '[]'::jsonb AND f ->> 'severity' = 'warning'
      AND e.received_at >= coalesce(h.counted_from, '-infinity')
) AS warnings
GROUP BY 1, 2, 3, 4, 5, 6;

-- The index of the rows with any issue (the violations page's window edges) is built by
-- 0016, concurrently: storage goes on while it builds.
