"""Periodic jobs: each worker process offers them, PostgreSQL lets one enqueue per interval."""

from __future__ import annotations

import logging
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import dramatiq
from dramatiq.asyncio import get_event_loop_thread

from web.core import queries
from web.core.jobs import build_job_message
from workers.database import DatabasePool
from workers.failures import is_permanent, is_transient

log = logging.getLogger("lvd.worker")

_T = TypeVar("_T")

# How often a worker process looks whether a job is due (seconds), at most.
TICK_SECONDS = 1.0
# A periodic job runs again at its next interval anyway: Dramatiq retries it only a few
# times, for a database or broker that was briefly away.
PERIODIC_RETRIES = 3


def retry_briefly(retries: int, exc: BaseException) -> bool:
    """retry_when for periodic and alert actors: a few tries, never for bad data."""
    return retries < PERIODIC_RETRIES and (is_transient(exc) or not is_permanent(exc))


def run_on_loop(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine on the worker's event loop and wait for it, from a worker thread.

    Synchronous actors use this so the broker calls they make (enqueueing the next
    messages) block their own thread, never the loop the async actors share.
    """
    loop_thread = get_event_loop_thread()
    if loop_thread is None:
        coroutine.close()
        raise RuntimeError("the AsyncIO middleware is not installed")
    result: _T = loop_thread.run_coroutine(coroutine)
    return result


@dataclass(frozen=True, slots=True)
class Job:
    """Enqueue a message for `actor_name` on `queue_name` every `interval` seconds."""

    queue_name: str
    actor_name: str
    interval: float


class Scheduler(dramatiq.Middleware):
    """A thread per worker process that enqueues each due job's message.

    The schedule lives in PostgreSQL (scheduled_jobs): a process enqueues a job only if
    its UPDATE moved the job's due time forward, so with any number of worker processes,
    on any number of machines, each job runs once per interval, and as long as one
    worker lives the jobs keep running (no chain of self-enqueued messages to lose).
    Only jobs whose actor this process has imported are offered: `dramatiq workers.actors`
    alone schedules nothing. If the enqueue fails after the claim, that run is skipped
    and the next interval's happens as usual.
    """

    def __init__(self, database: DatabasePool, jobs: Sequence[Job]) -> None:
        self._database = database
        self._jobs = list(jobs)
        self._tick = max(0.05, min([TICK_SECONDS, *(job.interval for job in jobs)]))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        jobs = [job for job in self._jobs if job.actor_name in broker.actors]
        if not jobs:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(broker, jobs), name="lvd-scheduler", daemon=True
        )
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self, broker: dramatiq.Broker, jobs: Sequence[Job]) -> None:
        failing = False
        while not self._stop.wait(self._tick):
            try:
                for job in jobs:
                    if run_on_loop(self._claim(job)):
                        broker.enqueue(build_job_message(job.queue_name, job.actor_name))
                        log.debug("Enqueued the periodic job %s", job.actor_name)
            except Exception:
                # The database or the broker is away: say so once, then keep trying.
                if not failing:
                    log.warning("Periodic jobs paused: cannot schedule", exc_info=True)
                failing = True
            else:
                if failing:
                    log.info("Periodic jobs resumed")
                failing = False

    async def _claim(self, job: Job) -> bool:
        async with self._database.pool.acquire() as conn:
            return await queries.claim_scheduled_job(conn, job.actor_name, job.interval)
