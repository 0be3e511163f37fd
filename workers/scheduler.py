"""Periodic jobs: each worker process offers them, PostgreSQL lets one enqueue per interval."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import dramatiq

from web.core.outage_log import OutageLog
from web.core.queries.scheduled_jobs import claim_scheduled_job
from web.core.queue.contract import build_job_message
from workers.database import DatabasePool
from workers.event_loop import run_on_loop

log = logging.getLogger("lvd.worker")

# How often a worker process looks whether a job is due (seconds), at most.
TICK_SECONDS = 1.0
# The actor option that makes an actor a periodic job, declared beside it:
# @dramatiq.actor(..., run_every=seconds).
RUN_EVERY = "run_every"


@dataclass(frozen=True, slots=True)
class Job:
    """Enqueue a message for `actor_name` on `queue_name` every `interval` seconds."""

    queue_name: str
    actor_name: str
    interval: float


def periodic_jobs(broker: dramatiq.Broker) -> list[Job]:
    """The jobs of the actors this process has declared with run_every."""
    return [
        Job(actor.queue_name, actor.actor_name, float(actor.options[RUN_EVERY]))
        for actor in broker.actors.values()
        if RUN_EVERY in actor.options
    ]


class Scheduler(dramatiq.Middleware):
    """A thread per worker process that enqueues each due job's message.

    The schedule lives in PostgreSQL (scheduled_jobs): a process enqueues a job only if
    its UPDATE moved the job's due time forward, so with any number of worker processes,
    on any number of machines, each job runs once per interval, and as long as one
    worker lives the jobs keep running (no chain of self-enqueued messages to lose).
    Only jobs whose actor this process has imported are offered: `dramatiq
    workers.actors.events` alone schedules nothing. If the enqueue fails after the claim,
    that run is skipped and the next interval's happens as usual.
    """

    def __init__(self, database: DatabasePool) -> None:
        self._database = database
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def actor_options(self) -> set[str]:
        return {RUN_EVERY}

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        jobs = periodic_jobs(broker)
        if not jobs:
            return
        tick = max(0.05, min([TICK_SECONDS, *(job.interval for job in jobs)]))
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(broker, jobs, tick), name="lvd-scheduler", daemon=True
        )
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self, broker: dramatiq.Broker, jobs: Sequence[Job], tick: float) -> None:
        outage = OutageLog(log, recovered="Periodic jobs resumed")
        while not self._stop.wait(tick):
            try:
                for job in jobs:
                    if run_on_loop(self._claim(job)):
                        broker.enqueue(build_job_message(job.queue_name, job.actor_name))
                        log.debug("Enqueued the periodic job %s", job.actor_name)
            except Exception:
                # The database or the broker is away: say so once, then keep trying.
                outage.failed("Periodic jobs paused: cannot schedule", exc_info=True)
            else:
                outage.succeeded()

    async def _claim(self, job: Job) -> bool:
        async with self._database.pool.acquire() as conn:
            return await claim_scheduled_job(conn, job.actor_name, job.interval)
