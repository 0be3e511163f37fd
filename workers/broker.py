"""The one module with a global effect: builds the worker's broker and makes it Dramatiq's."""

from __future__ import annotations

import dramatiq
from dramatiq.middleware import AsyncIO, CurrentMessage

from web.core.jobs import build_broker
from web.core.settings import Settings
from workers.database import DatabasePool
from workers.dead_letters import DeadLetters

settings = Settings.from_env()
# Workers may wait longer on Redis than a web request can, and retry a dropped connection.
broker = build_broker(settings, socket_timeout=5.0, retries=3)
broker.add_middleware(AsyncIO())
broker.add_middleware(CurrentMessage())
database = DatabasePool(settings.database_url, max_size=4)
broker.add_middleware(database)
broker.add_middleware(DeadLetters(database, max_deliveries=settings.max_deliveries))
dramatiq.set_broker(broker)
