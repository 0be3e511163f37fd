-- lvd: no-transaction
-- Issue 17 (hygiene checks): the rows with any issue, error or warning, by app and time. The
-- violations page reads the edges of its window from these (valid events with warnings
-- included), never every event. Built CONCURRENTLY, partition by partition, while events
-- keep being stored: first the parent's index alone (ON ONLY: no partition's is built, and
-- it stays invalid), then each partition's, named after it as migration 0012 names them
-- (log_entries_app_issues_received_<first id>), attached to the parent's as it is made. The
-- parent's becomes valid once every partition's is attached; a partition opened meanwhile
-- gets its own from open_log_entries_partition. Safe to repeat: an interrupted run's
-- half-built index is dropped and built again, and an attached one is left alone.
CREATE INDEX IF NOT EXISTS log_entries_app_issues_received
    ON ONLY log_entries (app_id, received_at) WHERE errors <> '[]'::jsonb;

-- lvd: each row is a statement
SELECT steps.statement
FROM (
    SELECT c.relname AS partition,
           'log_entries_app_issues_received_'
               || regexp_replace(c.relname, '^log_entries_(from_)?', '') AS index_name
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'log_entries'::regclass
      AND NOT i.inhdetachpending
      AND NOT EXISTS (
          SELECT FROM pg_inherits attached
          JOIN pg_index x ON x.indexrelid = attached.inhrelid
          WHERE attached.inhparent = 'log_entries_app_issues_received'::regclass
            AND x.indrelid = c.oid
      )
) AS missing
CROSS JOIN LATERAL (
    VALUES
        (1, format('DROP INDEX CONCURRENTLY IF EXISTS %I', missing.index_name)),
        (2, format(
            'CREATE INDEX CONCURRENTLY %I ON %I (app_id, received_at) WHERE errors <> %L::jsonb',
            missing.index_name, missing.partition, '[]'
        )),
        (3, format(
            'ALTER INDEX log_entries_app_issues_received ATTACH PARTITION %I', missing.index_name
        ))
) AS steps (step, statement)
ORDER BY missing.partition, steps.step;
