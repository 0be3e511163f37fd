"""The `emails` queue's actors: check for alerts, send them; each one call into workers.alerting."""

from __future__ import annotations

import dramatiq

from web.core.queue.contract import CHECK_ALERTS_ACTOR, EMAILS_QUEUE, SEND_ALERT_ACTOR
from workers import alerting
from workers.broker import database, settings
from workers.event_loop import run_on_loop
from workers.failures import RETRY_BRIEFLY

# A failed send is not an actor failure: it is recorded on the delivery and retried by the
# next check (workers.alerting); Dramatiq retries only a database that was briefly away.


# Synchronous actors: the messages they enqueue block this worker thread, not the event
# loop the async actors share; their database work runs on that loop.
@dramatiq.actor(
    actor_name=CHECK_ALERTS_ACTOR,
    queue_name=EMAILS_QUEUE,
    run_every=settings.alert_interval,  # a periodic job (workers.scheduler)
    **RETRY_BRIEFLY,
)
def check_alerts() -> None:
    for alert_id, channel in run_on_loop(alerting.check_alerts(database.pool)):
        send_alert.send(alert_id, channel)


@dramatiq.actor(
    actor_name=SEND_ALERT_ACTOR,
    queue_name=EMAILS_QUEUE,
    **RETRY_BRIEFLY,
)
def send_alert(alert_id: int, channel: str) -> None:
    run_on_loop(alerting.send_alert(database.pool, settings, alert_id, channel))
