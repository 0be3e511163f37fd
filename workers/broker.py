"""The one module with a global effect: builds the worker's broker and makes it Dramatiq's."""

from __future__ import annotations

import dramatiq
from dramatiq.middleware import AsyncIO, CurrentMessage

from web.core.logs import configure_worker_logging
from web.core.queue.brokers import build_broker
from web.core.settings import Settings
from workers.database import DatabasePool
from workers.dead_letters import DeadLetters
from workers.memory import FreezeStartupObjects, ReturnFreeMemory
from workers.scheduler import Scheduler
from workers.signals import OneStopPerSignal
from workers.status import WorkerStatus

settings = Settings.from_env()
configure_worker_logging(json=settings.log_json, level=settings.log_level)
# Workers wait on Redis as long as it takes (see build_broker) and retry a dropped connection.
broker = build_broker(settings, socket_timeout=None, retries=3)
broker.add_middleware(AsyncIO())
broker.add_middleware(CurrentMessage())
database = DatabasePool(settings.database_url, max_size=4)
broker.add_middleware(database)
broker.add_middleware(DeadLetters(database, max_deliveries=settings.max_deliveries))
# Before the pool: it starts once the pool is open and stops before the pool closes. It
# runs the jobs of the actors this worker imported that declare run_every (`lvd worker`
# imports every actor module: workers.actors).
broker.add_middleware(Scheduler(database), before=DatabasePool)
broker.add_middleware(WorkerStatus())
broker.add_middleware(ReturnFreeMemory())
# A stop signal sent to the whole process group stops the worker once, not hangs it.
broker.add_middleware(OneStopPerSignal())
# Last: boot hooks run in order, so everything the others open at boot is frozen too.
broker.add_middleware(FreezeStartupObjects())
dramatiq.set_broker(broker)
