-- Issue 4: "every stored event's app exists" checked once per statement, not once per row.
-- The foreign key looked up and locked the app for each inserted row: 16 % of PostgreSQL's
-- CPU when a worker stores 500 events in one statement. These triggers keep what it did:
-- an insert for a missing app fails with its SQLSTATE (foreign_key_violation, which the
-- worker parks as bad data); the apps of an insert stay locked until it commits; deleting
-- or truncating apps deletes their events; an app's id never changes (it is in the ingest
-- URL). One difference: apps are deleted in READ COMMITTED transactions only (below).
ALTER TABLE log_entries DROP CONSTRAINT log_entries_app_id_fkey;

CREATE FUNCTION log_entries_require_apps() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    locked text[];
    missing text;
BEGIN
    -- FOR KEY SHARE, as the foreign key's own check: a DELETE of one of these apps waits
    -- for this transaction, then deletes the rows it wrote. Existence is decided by the
    -- rows this one statement locked, never by a second look at apps.
    SELECT coalesce(array_agg(id), '{}') INTO locked FROM (
        SELECT id FROM apps WHERE id IN (SELECT DISTINCT app_id FROM new_rows) FOR KEY SHARE
    ) AS present;
    SELECT app_id INTO missing FROM new_rows WHERE app_id <> ALL (locked) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'no app with id %: its events cannot be stored', missing
            USING ERRCODE = 'foreign_key_violation', TABLE = 'log_entries';
    END IF;
    RETURN NULL;
END
$$;

-- Transition tables allow one event per trigger: one trigger for inserts, one for updates.
CREATE TRIGGER log_entries_require_apps_on_insert
    AFTER INSERT ON log_entries REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_entries_require_apps();
CREATE TRIGGER log_entries_require_apps_on_update
    AFTER UPDATE ON log_entries REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_entries_require_apps();

CREATE FUNCTION apps_delete_log_entries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A READ COMMITTED statement sees the rows of every insert whose lock it waited for. A
    -- REPEATABLE READ or SERIALIZABLE snapshot may not, and would leave their events behind.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'apps can be deleted only in a READ COMMITTED transaction'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'PostgreSQL''s default isolation level is READ COMMITTED';
    END IF;
    DELETE FROM log_entries WHERE app_id IN (SELECT id FROM gone_apps);
    RETURN NULL;
END
$$;

CREATE TRIGGER apps_delete_log_entries
    AFTER DELETE ON apps REFERENCING OLD TABLE AS gone_apps
    FOR EACH STATEMENT EXECUTE FUNCTION apps_delete_log_entries();

-- TRUNCATE fires no DELETE trigger: TRUNCATE apps empties log_entries this way. (A
-- TRUNCATE here would fail when the statement names log_entries too.)
CREATE FUNCTION apps_truncate_log_entries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM log_entries;
    RETURN NULL;
END
$$;

CREATE TRIGGER apps_truncate_log_entries
    AFTER TRUNCATE ON apps
    FOR EACH STATEMENT EXECUTE FUNCTION apps_truncate_log_entries();

CREATE FUNCTION apps_keep_their_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'an app''s id cannot change (% to %): it is in its ingest URL', OLD.id, NEW.id
        USING ERRCODE = 'foreign_key_violation', TABLE = 'apps';
END
$$;

CREATE TRIGGER apps_keep_their_id
    BEFORE UPDATE OF id ON apps
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION apps_keep_their_id();
