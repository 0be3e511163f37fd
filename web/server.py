"""`lvd web`: Hypercorn serving create_app(), its log lines ours, stopping within seconds.

Hypercorn runs from here rather than from its command line so that its error and access
loggers are plain loggers our handler formats (text or JSON, UTC times, request ids), not
handlers of its own with a format our logging set-up cannot fill.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from types import FrameType

from hypercorn.config import Config
from hypercorn.run import run
from quart import Quart

from web.app import create_app
from web.core.logs import configure_logging
from web.core.settings import Settings

APPLICATION = "web.server:create_served_app()"
# Client, request line, status, bytes, seconds, request id, user agent.
ACCESS_LOG_FORMAT = '%(h)s "%(R)s" %(s)s %(b)s %(L)ss id=%({x-request-id}o)s "%(a)s"'
# How long open requests get to finish after a stop signal before they are cut. Live streams
# and long polls never finish by themselves, so a stop takes this long when one is open
# (browsers reconnect to another process at once); then the lifespan closes the rest.
GRACEFUL_SECONDS = 3.0

log = logging.getLogger("lvd.web")


def hypercorn_config(settings: Settings, workers: int) -> Config:
    config = Config()
    config.application_path = APPLICATION
    config.bind = [f"{_bind_host(settings.host)}:{settings.port}"]
    config.worker_class = "uvloop"
    config.workers = workers
    config.graceful_timeout = GRACEFUL_SECONDS
    config.errorlog = logging.getLogger("hypercorn.error")
    config.accesslog = logging.getLogger("hypercorn.access") if settings.access_log else None
    config.access_log_format = ACCESS_LOG_FORMAT
    return config


def serve(settings: Settings, workers: int) -> int:
    """Serve until SIGTERM or SIGINT (to this process or its group); the exit status."""
    configure_logging(json=settings.log_json, level=settings.log_level)
    code = run(hypercorn_config(settings, workers))
    log.info("Web server stopped (exit %d)", code)
    return code


def create_served_app() -> Quart:
    """The app as each of Hypercorn's worker processes loads it."""
    _stop_through_parent()
    return create_app()


def _stop_through_parent() -> None:
    """A stop signal reaching a worker process leaves the stop to the main process.

    Hypercorn's worker processes install no handler of their own: a SIGTERM sent to the
    process group killed them mid-request, skipping the lifespan that flushes queued
    events. The main process gets the same signal (a group signal, or systemd's
    KillMode=mixed sending it to the main process alone) and stops its workers gracefully,
    so a worker ignores it. Passing it on instead could deadlock the main process: a second
    SIGTERM landing while its handler holds the shutdown event's lock. An orphaned worker,
    whose main process is gone, stops as the signal says.
    """
    if multiprocessing.parent_process() is None:
        return
    parent = os.getppid()

    def leave_it_to_the_main_process(signum: int, frame: FrameType | None) -> None:
        if os.getppid() != parent:  # orphaned: nobody else will stop us
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, leave_it_to_the_main_process)


def _bind_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
