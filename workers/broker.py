"""The one module with a global effect: builds the worker's broker and makes it Dramatiq's."""

from __future__ import annotations

import dramatiq
from dramatiq.middleware import AsyncIO, CurrentMessage

from web.core.jobs import (
    CHECK_ALERTS_ACTOR,
    EMAILS_QUEUE,
    MAINTENANCE_QUEUE,
    PURGE_EVENTS_ACTOR,
    build_broker,
)
from web.core.settings import Settings
from workers.database import DatabasePool
from workers.dead_letters import DeadLetters
from workers.memory import FreezeStartupObjects, ReturnFreeMemory
from workers.scheduler import Job, Scheduler
from workers.status import WorkerStatus, configure_worker_logging

settings = Settings.from_env()
configure_worker_logging(settings)
# Workers wait on Redis as long as it takes (see build_broker) and retry a dropped connection.
broker = build_broker(settings, socket_timeout=None, retries=3)
broker.add_middleware(AsyncIO())
broker.add_middleware(CurrentMessage())
database = DatabasePool(settings.database_url, max_size=4)
broker.add_middleware(database)
broker.add_middleware(DeadLetters(database, max_deliveries=settings.max_deliveries))
# Before the pool: it starts once the pool is open and stops before the pool closes.
# Only the jobs of actors a worker imports run (`lvd worker` imports all of them).
periodic_jobs = [
    Job(EMAILS_QUEUE, CHECK_ALERTS_ACTOR, settings.alert_interval),
    Job(MAINTENANCE_QUEUE, PURGE_EVENTS_ACTOR, settings.purge_interval),
]
broker.add_middleware(Scheduler(database, periodic_jobs), before=DatabasePool)
broker.add_middleware(WorkerStatus())
broker.add_middleware(ReturnFreeMemory())
# Last: boot hooks run in order, so everything the others open at boot is frozen too.
broker.add_middleware(FreezeStartupObjects())
dramatiq.set_broker(broker)
