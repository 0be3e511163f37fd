-- lvd: no-transaction
-- Issue 18: pages that read history by name or by time, fast whatever its size. Built
-- CONCURRENTLY (this file runs outside a transaction, statement by statement): storage goes
-- on while they build. Each CREATE follows a DROP ... IF EXISTS, so a run interrupted
-- half-way (which leaves an invalid index behind) starts cleanly the next time.

-- A rare event name: its newest rows directly, not a walk back through every other event.
DROP INDEX CONCURRENTLY IF EXISTS log_entries_app_name_recent;
CREATE INDEX CONCURRENTLY log_entries_app_name_recent
    ON log_entries (app_id, event_name, id DESC);

-- A time window: the ids received in it, read from the index alone, then the newest of
-- them. It also covers the tiles' per-minute counts, so it replaces the index of 0005.
DROP INDEX CONCURRENTLY IF EXISTS log_entries_app_received_ids;
CREATE INDEX CONCURRENTLY log_entries_app_received_ids
    ON log_entries (app_id, received_at) INCLUDE (id, validation_status, event_name);
DROP INDEX CONCURRENTLY IF EXISTS log_entries_app_received;
