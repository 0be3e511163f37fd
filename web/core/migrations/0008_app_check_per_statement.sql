-- Issue 4: "every stored event's app exists" checked once per statement, not once per row.
-- The foreign key looked up and locked the app for each inserted row: 16 % of PostgreSQL's
-- CPU when a worker stores 500 events in one statement. These triggers keep what it did:
-- an insert for a missing app fails with the same error (foreign_key_violation, which the
-- worker parks as bad data), the app cannot be deleted under an insert that has not yet
-- committed, deleting an app deletes its events (as a READ COMMITTED statement, the
-- default: it then sees the rows of inserts it waited for), and an app's id cannot change.
ALTER TABLE log_entries DROP CONSTRAINT log_entries_app_id_fkey;

CREATE FUNCTION log_entries_require_apps() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing text;
BEGIN
    -- FOR KEY SHARE, as the foreign key's own check: a concurrent DELETE of one of these
    -- apps waits for this transaction, then deletes the rows it wrote.
    PERFORM FROM apps WHERE id IN (SELECT DISTINCT app_id FROM new_rows) FOR KEY SHARE;
    SELECT app_id INTO missing FROM new_rows
    WHERE NOT EXISTS (SELECT FROM apps WHERE apps.id = new_rows.app_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'no app with id %: its events cannot be stored', missing
            USING ERRCODE = 'foreign_key_violation', TABLE = 'log_entries';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER log_entries_require_apps_on_insert
    AFTER INSERT ON log_entries REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_entries_require_apps();
CREATE TRIGGER log_entries_require_apps_on_update
    AFTER UPDATE ON log_entries REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_entries_require_apps();

CREATE FUNCTION apps_delete_log_entries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM log_entries WHERE app_id IN (SELECT id FROM gone_apps);
    RETURN NULL;
END
$$;

CREATE TRIGGER apps_delete_log_entries
    AFTER DELETE ON apps REFERENCING OLD TABLE AS gone_apps
    FOR EACH STATEMENT EXECUTE FUNCTION apps_delete_log_entries();

CREATE FUNCTION apps_keep_their_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'an app''s id cannot change (% to %): it is in its ingest URL', OLD.id, NEW.id
        USING ERRCODE = 'foreign_key_violation', TABLE = 'apps';
END
$$;

CREATE TRIGGER apps_keep_their_id
    BEFORE UPDATE OF id ON apps
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION apps_keep_their_id();
