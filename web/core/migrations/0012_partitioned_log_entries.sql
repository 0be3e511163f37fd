-- Issue 18: the events table partitioned by ranges of id, one partition a day, so that
-- retention drops whole partitions (the table shrinks; no mass DELETE, no VACUUM debt) and a
-- page that reads the newest events touches the newest partition only.
--
-- Why ranges of id, not of received_at: the live view, its cursors, the hub and the detail
-- page all find rows by id; with id as the partition key they read one partition (ORDER BY
-- id DESC LIMIT n scans partitions newest first and stops). A day's partition is a range of
-- 2^36 ids: each day workers/partitions.py opens the next range and moves the id sequence to
-- its start, so ids keep rising, stay below 2^53 (exact in JavaScript) for 350 years, and
-- the rows of one partition were stored within one day.
--
-- Exactly-once storage: a partitioned table's unique index must contain the partition key,
-- so UNIQUE (app_id, event_id) cannot hold across partitions. Instead every stored event has
-- a receipt, (app_id, event_id) -> entry id, in the unpartitioned event_receipts, inserted
-- by the same statement as the event (web/core/queries/events.py): a redelivered message or
-- a client retry conflicts on the receipt and stores nothing. A receipt goes when its event
-- goes (reset, retention, app deleted); event_receipts_entry finds a dropped partition's.
CREATE SEQUENCE log_entry_ids AS bigint;

CREATE TABLE event_receipts (
    app_id text NOT NULL,
    event_id text NOT NULL,
    entry_id bigint NOT NULL
);
INSERT INTO event_receipts (app_id, event_id, entry_id)
SELECT app_id, event_id, id FROM log_entries;
ALTER TABLE event_receipts ADD PRIMARY KEY (app_id, event_id);
CREATE INDEX event_receipts_entry ON event_receipts (entry_id);

-- The table as it was becomes the first partition, ids below the next one's; its rows are
-- neither copied nor rewritten. Its triggers move to the parent.
ALTER TABLE log_entries RENAME TO log_entries_before_partitions;
DROP TRIGGER log_entries_require_apps_on_insert ON log_entries_before_partitions;
DROP TRIGGER log_entries_require_apps_on_update ON log_entries_before_partitions;
DROP TRIGGER log_entries_truncate_rollups ON log_entries_before_partitions;
ALTER TABLE log_entries_before_partitions ALTER COLUMN id DROP IDENTITY;
ALTER TABLE log_entries_before_partitions
    RENAME CONSTRAINT log_entries_pkey TO log_entries_pkey_before_partitions;
ALTER TABLE log_entries_before_partitions
    RENAME CONSTRAINT log_entries_app_id_event_id_key TO log_entries_event_before_partitions;
ALTER INDEX log_entries_app_recent RENAME TO log_entries_app_recent_before_partitions;
ALTER INDEX log_entries_app_status_recent RENAME TO log_entries_app_status_recent_before_partitions;
ALTER INDEX log_entries_app_session RENAME TO log_entries_app_session_before_partitions;
ALTER INDEX log_entries_app_name_recent RENAME TO log_entries_app_name_recent_before_partitions;
ALTER INDEX log_entries_app_received_ids RENAME TO log_entries_app_received_ids_before_partitions;

CREATE TABLE log_entries (
    id bigint NOT NULL DEFAULT nextval('log_entry_ids'),
    app_id text NOT NULL,
    event_id text NOT NULL,
    event_name text,
    payload jsonb NOT NULL,
    validation_status text NOT NULL
        CONSTRAINT log_entries_validation_status_check
        CHECK (validation_status IN ('valid', 'invalid')),
    errors jsonb NOT NULL DEFAULT '[]',
    plan_version integer,
    session text,
    received_at timestamptz NOT NULL,
    -- clock_timestamp, not now(): the time this row was written, for queue-latency figures.
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT log_entries_pkey PRIMARY KEY (id)
) PARTITION BY RANGE (id);
ALTER SEQUENCE log_entry_ids OWNED BY log_entries.id;

CREATE TABLE log_entry_partitions (
    name text PRIMARY KEY,
    first_id bigint NOT NULL UNIQUE,
    end_id bigint NOT NULL,
    opened_at timestamptz NOT NULL,
    -- Set when retention drops the table; the row goes once its receipts have gone too.
    dropped_at timestamptz
);

-- Opens the partition of the next range of ids, from where the newest one ends, and moves
-- the sequence there; the newest partition stops receiving new ids. ATTACH takes only a
-- SHARE UPDATE EXCLUSIVE lock: storage and pages go on meanwhile.
CREATE FUNCTION open_log_entries_partition(opened timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    span constant bigint := 68719476736;  -- 2^36 ids
    first bigint;
    partition text;
    index_name text;
    definition text;
BEGIN
    SELECT coalesce(max(end_id), 1) INTO first FROM log_entry_partitions;
    partition := format('log_entries_from_%s', first);
    EXECUTE format(
        'CREATE TABLE %I (LIKE log_entries INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', partition
    );
    -- The primary key and each of the parent's indexes, named after it (log_entries_app_recent_<first id>), so
    -- that a plan says which one it reads; ATTACH then adopts them instead of building its own.
    EXECUTE format(
        'ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (id)', partition, 'log_entries_pkey_' || first
    );
    FOR index_name, definition IN
        SELECT c.relname, pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = 'log_entries'::regclass
          AND NOT EXISTS (SELECT FROM pg_constraint con WHERE con.conindid = i.indexrelid)
    LOOP
        EXECUTE regexp_replace(
            definition,
            '^(CREATE (UNIQUE )?INDEX )\S+ ON ONLY \S+',
            '\1' || quote_ident(index_name || '_' || first) || ' ON ' || quote_ident(partition)
        );
    END LOOP;
    EXECUTE format(
        'ALTER TABLE log_entries ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
        partition, first, first + span
    );
    INSERT INTO log_entry_partitions (name, first_id, end_id, opened_at)
    VALUES (partition, first, first + span, opened);
    PERFORM setval('log_entry_ids', first, false);
    RETURN partition;
END
$$;

DO $$
DECLARE
    stored_until bigint;
BEGIN
    SELECT max(id) + 1 INTO stored_until FROM log_entries_before_partitions;
    IF stored_until IS NULL THEN
        DROP TABLE log_entries_before_partitions;
    ELSE
        EXECUTE format(
            'ALTER TABLE log_entries ATTACH PARTITION log_entries_before_partitions'
            ' FOR VALUES FROM (MINVALUE) TO (%s)',
            stored_until
        );
        INSERT INTO log_entry_partitions (name, first_id, end_id, opened_at)
        SELECT 'log_entries_before_partitions', min(id), max(id) + 1, min(created_at)
        FROM log_entries_before_partitions;
    END IF;
END
$$;

-- Built on the parent; an attached partition's equal index is attached, not built again.
CREATE INDEX log_entries_app_recent ON log_entries (app_id, id DESC);
CREATE INDEX log_entries_app_status_recent ON log_entries (app_id, validation_status, id DESC);
CREATE INDEX log_entries_app_session
    ON log_entries (app_id, session, id DESC) WHERE session IS NOT NULL;
CREATE INDEX log_entries_app_name_recent ON log_entries (app_id, event_name, id DESC);
CREATE INDEX log_entries_app_received_ids
    ON log_entries (app_id, received_at) INCLUDE (id, validation_status, event_name);

SELECT open_log_entries_partition(now());

CREATE TRIGGER log_entries_require_apps_on_insert
    AFTER INSERT ON log_entries REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_entries_require_apps();
CREATE TRIGGER log_entries_require_apps_on_update
    AFTER UPDATE ON log_entries REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_entries_require_apps();

-- Receipts go with their events when apps are deleted or truncated, or the events truncated.
CREATE OR REPLACE FUNCTION apps_delete_log_entries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A READ COMMITTED statement sees the rows of every insert whose lock it waited for. A
    -- REPEATABLE READ or SERIALIZABLE snapshot may not, and would leave their events behind.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'apps can be deleted only in a READ COMMITTED transaction'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'PostgreSQL''s default isolation level is READ COMMITTED';
    END IF;
    DELETE FROM log_entries WHERE app_id IN (SELECT id FROM gone_apps);
    DELETE FROM event_receipts WHERE app_id IN (SELECT id FROM gone_apps);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION apps_truncate_log_entries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM log_entries;
    DELETE FROM event_receipts;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION log_entries_truncate_rollups() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM event_counts_hourly;
    DELETE FROM failure_counts_hourly;
    DELETE FROM rollup_horizons;
    DELETE FROM event_receipts;
    RETURN NULL;
END
$$;

CREATE TRIGGER log_entries_truncate_rollups
    AFTER TRUNCATE ON log_entries
    FOR EACH STATEMENT EXECUTE FUNCTION log_entries_truncate_rollups();
