-- Dashboard (issue 6): time windows (tiles, violations, coverage) and test sessions.
-- Covering, so per-minute counts and top failing events read the index alone.
CREATE INDEX log_entries_app_received
    ON log_entries (app_id, received_at) INCLUDE (validation_status, event_name);
-- A QA engineer's test session: coverage and the session filter find its rows directly.
CREATE INDEX log_entries_app_session
    ON log_entries (app_id, session, id DESC) WHERE session IS NOT NULL;
