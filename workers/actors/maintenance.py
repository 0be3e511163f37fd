"""The `maintenance` queue's actors: housekeeping, thin and idempotent, one call each."""

from __future__ import annotations

import dramatiq

from web.core.queries.scheduled_jobs import update_scheduled_job_due
from web.core.queue.contract import MAINTENANCE_QUEUE, PURGE_EVENTS_ACTOR
from workers.broker import database, settings
from workers.event_loop import run_on_loop
from workers.failures import RETRY_BRIEFLY
from workers.retention import purge_expired


@dramatiq.actor(
    actor_name=PURGE_EVENTS_ACTOR,
    queue_name=MAINTENANCE_QUEUE,
    run_every=settings.purge_interval,  # a periodic job (workers.scheduler)
    **RETRY_BRIEFLY,
)
def purge_expired_events() -> None:
    report = run_on_loop(
        purge_expired(
            database.pool,
            default_days=settings.retention_days,
            batch_size=settings.purge_batch_size,
            pause=settings.purge_pause_ms / 1000,
        )
    )
    if not report.finished:
        # More is expired than one run may delete: the scheduler enqueues the next run now.
        run_on_loop(_due_again())


async def _due_again() -> None:
    async with database.pool.acquire() as conn:
        await update_scheduled_job_due(conn, PURGE_EVENTS_ACTOR)
