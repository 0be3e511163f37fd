"""Each worker process reports itself: a heartbeat with its counts, events by app and verdict."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections import Counter, deque
from typing import Any

import dramatiq
import redis

from web.core.outage_log import OutageLog
from web.core.queue.contract import STORE_EVENTS_ACTOR
from web.core.status.keys import DEFAULT_KEYS, StatusKeys, event_total_field
from web.core.status.records import (
    HEARTBEAT_SECONDS,
    RECENT_WINDOW,
    WorkerHeartbeat,
    forgotten_ids,
)

log = logging.getLogger("lvd.worker")


class WorkerReport:
    """One process's counts, written to Redis by beat(); counting is thread-safe and cheap."""

    def __init__(self, keys: StatusKeys = DEFAULT_KEYS) -> None:
        self.keys = keys
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.worker_id = f"{self.hostname}:{self.pid}"
        self.started_at = time.time()
        self._lock = threading.Lock()
        self._messages = 0
        self._events = 0
        self._failed = 0
        # Counts not yet added to the shared totals in Redis.
        self._unsent: Counter[str] = Counter()
        # (time, events so far) at each beat within the last minute: the throughput.
        self._samples: deque[tuple[float, int]] = deque()

    def count_message(self, events: list[Any], *, failed: bool) -> None:
        fields = Counter(
            event_total_field(str(e.get("app_id")), str(e.get("status")))
            for e in events
            if isinstance(e, dict)
        )
        with self._lock:
            self._messages += 1
            if failed:
                self._failed += 1
                return
            self._events += len(events)
            self._unsent.update(fields)

    def beat(self, client: redis.Redis, *, now: float | None = None, stopped: bool = False) -> None:
        """Write the heartbeat and add the unsent counts to the totals; raises RedisError."""
        now = time.time() if now is None else now
        with self._lock:
            messages, events, failed = self._messages, self._events, self._failed
            unsent, self._unsent = self._unsent, Counter()
        self._samples.append((now, events))
        while now - self._samples[0][0] > RECENT_WINDOW.total_seconds():
            self._samples.popleft()
        since, events_then = self._samples[0]
        rate = (events - events_then) / (now - since) if now > since else 0.0
        heartbeat = WorkerHeartbeat(
            worker_id=self.worker_id,
            hostname=self.hostname,
            pid=self.pid,
            started_at=self.started_at,
            seen_at=now,
            messages=messages,
            events=events,
            failed=failed,
            events_per_second=rate,
            stopped=stopped,
        )
        pipe = client.pipeline(transaction=True)
        pipe.hset(self.keys.workers, self.worker_id, heartbeat.encode())
        for field, count in unsent.items():
            pipe.hincrby(self.keys.event_totals, field, count)
        try:
            pipe.execute()
        except redis.RedisError:
            with self._lock:
                self._unsent.update(unsent)  # sent with the next beat instead
            raise

    def forget_old_workers(self, client: redis.Redis, *, now: float | None = None) -> None:
        """Delete records of workers silent for FORGET_AFTER_SECONDS."""
        now = time.time() if now is None else now
        records = client.hgetall(self.keys.workers)
        stale = forgotten_ids(records, WorkerHeartbeat.decode, now=now)
        if stale:
            client.hdel(self.keys.workers, *stale)


class WorkerStatus(dramatiq.Middleware):
    """Counts every message this process finishes and beats every HEARTBEAT_SECONDS."""

    def __init__(self, keys: StatusKeys = DEFAULT_KEYS) -> None:
        self._keys = keys
        self._report: WorkerReport | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: Any, worker: dramatiq.Worker) -> None:
        client = getattr(broker, "client", None)
        if not isinstance(client, redis.Redis):
            # The records live beside Dramatiq's own keys in Redis: another broker has none.
            log.info("Worker status is kept in Redis; with %s it is not reported", type(broker))
            return
        # Made here, not in __init__: the pid is the worker process's, not the parent's.
        self._report = WorkerReport(self._keys)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._beat_forever, args=(client,), name="lvd-status", daemon=True
        )
        self._thread.start()

    def after_process_message(
        self,
        broker: Any,
        message: dramatiq.broker.MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if self._report is not None:
            self._report.count_message(_events_of(message), failed=exception is not None)

    def after_skip_message(self, broker: Any, message: dramatiq.broker.MessageProxy) -> None:
        if self._report is not None:
            self._report.count_message(_events_of(message), failed=True)

    def after_worker_shutdown(self, broker: Any, worker: dramatiq.Worker) -> None:
        # After the worker threads stopped, so the last beat holds every count.
        self._stop.set()
        if self._thread is not None:
            self._thread.join(HEARTBEAT_SECONDS * 2)
        if self._report is not None:
            try:
                self._report.beat(broker.client, stopped=True)  # a RedisBroker's (see boot)
            except redis.RedisError as exc:
                log.warning("Could not record this worker as stopped: %s", exc)

    def _beat_forever(self, client: redis.Redis) -> None:
        assert self._report is not None
        outage = OutageLog(log)  # once per outage, not every beat
        with contextlib.suppress(redis.RedisError):  # housekeeping: the next worker retries
            self._report.forget_old_workers(client)
        while True:
            try:
                self._report.beat(client)
                outage.succeeded()
            except redis.RedisError as exc:
                outage.failed("Worker heartbeat failed (retrying): %s", exc)
            if self._stop.wait(HEARTBEAT_SECONDS):
                return


def _events_of(message: dramatiq.broker.MessageProxy) -> list[Any]:
    """The events a store message carries; other actors' messages carry none."""
    args = message.args
    if message.actor_name != STORE_EVENTS_ACTOR or not args or not isinstance(args[0], list):
        return []
    return args[0]
