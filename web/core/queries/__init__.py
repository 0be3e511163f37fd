"""All SQL, as async functions that take a connection first and return frozen dataclasses.

One module per subject; everything is re-exported here, so callers write `queries.x`.
"""

from web.core.queries.alerts import (
    _ALERT_SETTINGS_COLUMNS as _ALERT_SETTINGS_COLUMNS,
)
from web.core.queries.alerts import (
    AlertDelivery as AlertDelivery,
)
from web.core.queries.alerts import (
    AlertRecord as AlertRecord,
)
from web.core.queries.alerts import (
    AlertSettings as AlertSettings,
)
from web.core.queries.alerts import (
    FailureScan as FailureScan,
)
from web.core.queries.alerts import (
    claim_alert_delivery as claim_alert_delivery,
)
from web.core.queries.alerts import (
    claim_scheduled_job as claim_scheduled_job,
)
from web.core.queries.alerts import (
    count_message_delivery as count_message_delivery,
)
from web.core.queries.alerts import (
    delete_expired_log_entries as delete_expired_log_entries,
)
from web.core.queries.alerts import (
    delete_expired_share_alerts as delete_expired_share_alerts,
)
from web.core.queries.alerts import (
    delete_message_deliveries as delete_message_deliveries,
)
from web.core.queries.alerts import (
    delete_stale_message_deliveries as delete_stale_message_deliveries,
)
from web.core.queries.alerts import (
    insert_alert_deliveries as insert_alert_deliveries,
)
from web.core.queries.alerts import (
    insert_invalid_share_alert as insert_invalid_share_alert,
)
from web.core.queries.alerts import (
    insert_new_failure_alerts as insert_new_failure_alerts,
)
from web.core.queries.alerts import (
    lock_alert_settings as lock_alert_settings,
)
from web.core.queries.alerts import (
    select_alert_settings as select_alert_settings,
)
from web.core.queries.alerts import (
    select_alerting_app_ids as select_alerting_app_ids,
)
from web.core.queries.alerts import (
    select_due_alert_deliveries as select_due_alert_deliveries,
)
from web.core.queries.alerts import (
    select_recent_alert as select_recent_alert,
)
from web.core.queries.alerts import (
    select_recent_alerts as select_recent_alerts,
)
from web.core.queries.alerts import (
    select_retention_cutoffs as select_retention_cutoffs,
)
from web.core.queries.alerts import (
    select_window_counts as select_window_counts,
)
from web.core.queries.alerts import (
    update_alert_cursor as update_alert_cursor,
)
from web.core.queries.alerts import (
    update_alert_delivery_failed as update_alert_delivery_failed,
)
from web.core.queries.alerts import (
    update_alert_delivery_sent as update_alert_delivery_sent,
)
from web.core.queries.alerts import (
    update_scheduled_job_due as update_scheduled_job_due,
)
from web.core.queries.alerts import (
    upsert_alert_settings as upsert_alert_settings,
)
from web.core.queries.apps import (
    insert_app as insert_app,
)
from web.core.queries.apps import (
    lock_app as lock_app,
)
from web.core.queries.apps import (
    select_app as select_app,
)
from web.core.queries.apps import (
    select_app_by_write_key as select_app_by_write_key,
)
from web.core.queries.apps import (
    select_app_retention_days as select_app_retention_days,
)
from web.core.queries.apps import (
    select_app_summaries as select_app_summaries,
)
from web.core.queries.apps import (
    select_apps as select_apps,
)
from web.core.queries.apps import (
    update_app_retention_days as update_app_retention_days,
)
from web.core.queries.base import (
    _APP_COLUMNS as _APP_COLUMNS,
)
from web.core.queries.base import (
    _ENTRY_COLUMNS as _ENTRY_COLUMNS,
)
from web.core.queries.base import (
    FILTER_SQL as FILTER_SQL,
)
from web.core.queries.base import (
    NO_FILTER as NO_FILTER,
)
from web.core.queries.base import (
    App as App,
)
from web.core.queries.base import (
    AppSummary as AppSummary,
)
from web.core.queries.base import (
    Connection as Connection,
)
from web.core.queries.base import (
    LogEntry as LogEntry,
)
from web.core.queries.base import (
    NewLogEntry as NewLogEntry,
)
from web.core.queries.base import (
    PlanVersion as PlanVersion,
)
from web.core.queries.dashboard import (
    KnownValues as KnownValues,
)
from web.core.queries.dashboard import (
    MinuteCount as MinuteCount,
)
from web.core.queries.dashboard import (
    NameActivity as NameActivity,
)
from web.core.queries.dashboard import (
    NameCount as NameCount,
)
from web.core.queries.dashboard import (
    ViolationGroup as ViolationGroup,
)
from web.core.queries.dashboard import (
    select_known_values as select_known_values,
)
from web.core.queries.dashboard import (
    select_minute_counts as select_minute_counts,
)
from web.core.queries.dashboard import (
    select_name_activity as select_name_activity,
)
from web.core.queries.dashboard import (
    select_top_failing_events as select_top_failing_events,
)
from web.core.queries.dashboard import (
    select_violation_groups as select_violation_groups,
)
from web.core.queries.dead_letters import (
    _DEAD_LETTER_COLUMNS as _DEAD_LETTER_COLUMNS,
)
from web.core.queries.dead_letters import (
    DeadLetter as DeadLetter,
)
from web.core.queries.dead_letters import (
    count_dead_letters as count_dead_letters,
)
from web.core.queries.dead_letters import (
    insert_dead_letters as insert_dead_letters,
)
from web.core.queries.dead_letters import (
    lock_pending_dead_letters as lock_pending_dead_letters,
)
from web.core.queries.dead_letters import (
    mark_dead_letters_retried as mark_dead_letters_retried,
)
from web.core.queries.dead_letters import (
    select_dead_letters as select_dead_letters,
)
from web.core.queries.events import (
    NOTIFY_PAYLOAD_LIMIT as NOTIFY_PAYLOAD_LIMIT,
)
from web.core.queries.events import (
    EventCount as EventCount,
)
from web.core.queries.events import (
    delete_log_entries as delete_log_entries,
)
from web.core.queries.events import (
    insert_log_entries as insert_log_entries,
)
from web.core.queries.events import (
    insert_log_entries_and_notify as insert_log_entries_and_notify,
)
from web.core.queries.events import (
    notify as notify,
)
from web.core.queries.events import (
    notify_ids as notify_ids,
)
from web.core.queries.events import (
    select_event_counts as select_event_counts,
)
from web.core.queries.events import (
    select_log_entries as select_log_entries,
)
from web.core.queries.events import (
    select_log_entries_after as select_log_entries_after,
)
from web.core.queries.events import (
    select_log_entries_by_ids as select_log_entries_by_ids,
)
from web.core.queries.events import (
    select_log_entry as select_log_entry,
)
from web.core.queries.events import (
    select_max_log_entry_id as select_max_log_entry_id,
)
from web.core.queries.events import (
    select_payload_samples as select_payload_samples,
)
from web.core.queries.plans import (
    insert_plan_version as insert_plan_version,
)
from web.core.queries.plans import (
    select_plan_version as select_plan_version,
)
from web.core.queries.plans import (
    select_plan_versions as select_plan_versions,
)
from web.core.queries.status import (
    LatestStored as LatestStored,
)
from web.core.queries.status import (
    RecentEvents as RecentEvents,
)
from web.core.queries.status import (
    select_database_size as select_database_size,
)
from web.core.queries.status import (
    select_latest_stored as select_latest_stored,
)
from web.core.queries.status import (
    select_recent_event_counts as select_recent_event_counts,
)
from web.core.queries.users import (
    User as User,
)
from web.core.queries.users import (
    count_users as count_users,
)
from web.core.queries.users import (
    insert_user as insert_user,
)
from web.core.queries.users import (
    instance_secret as instance_secret,
)
from web.core.queries.users import (
    select_user as select_user,
)
from web.core.queries.users import (
    update_password_hash as update_password_hash,
)
