"""/status: queue depths, workers, ingest and open streams, re-rendered over SSE every ~2 s."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from typing import cast

from quart import (
    Blueprint,
    Quart,
    Response,
    current_app,
    jsonify,
    render_template,
    stream_with_context,
)
from redis.exceptions import RedisError
from typing_extensions import TypedDict

from web.api_types import Count, Timestamp
from web.context import Services
from web.core.outage_log import OutageLog
from web.core.status.formatting import FORMAT, status_as_dict
from web.core.status.keys import DEFAULT_KEYS
from web.core.status.readers import READ_TIMEOUT_SECONDS, gather_status_over, status_redis
from web.core.status.records import (
    HEARTBEAT_SECONDS,
    PipelineStatus,
    WebHeartbeat,
    forgotten_ids,
)
from web.core.tasks import cancel_and_wait
from web.sse import RETRY_FRAME, sse_frame, sse_response

log = logging.getLogger(__name__)

blueprint = Blueprint("status", __name__)

# How often an open status page is re-rendered (seconds).
REFRESH_SECONDS = 2.0
# Pages asking within this long of the last reading share it: ten open pages, one reading.
READING_MAX_AGE = 1.0
# A status read may wait this long on Redis per call.
REDIS_TIMEOUT_SECONDS = 1.0
_BOARD = "lvd.status"


class QueueReading(TypedDict):
    """The broker's queue: messages waiting, being worked on, delayed, and given up on."""

    waiting: Count
    in_flight: Count
    delayed: Count
    dramatiq_dead: Count
    oldest_waiting_seconds: float


class WorkerReading(TypedDict):
    """One worker process, from its heartbeat."""

    worker_id: str
    hostname: str
    pid: int
    state: str
    started_at: Timestamp
    last_seen: Timestamp
    silent_seconds: float
    messages: Count
    events: Count
    failed: Count
    events_per_second: float


class IngestReading(TypedDict):
    """Events stored over the last minute."""

    events_last_minute: Count
    invalid_last_minute: Count
    events_per_second: float
    invalid_share: float | None
    store_delay_seconds: float | None


class PipelineReading(TypedDict):
    """The pipeline at one moment; a part that could not be read is null, and a problem."""

    taken_at: Timestamp
    queue: QueueReading | None
    dead_letters_pending: Count | None
    workers: list[WorkerReading]
    ingest: IngestReading | None
    database_bytes: Count | None
    open_streams: Count | None
    web_processes: Count | None
    problems: list[str]


class StatusBoard:
    """One per web process: reads the pipeline for its pages and publishes its stream count."""

    def __init__(self, svc: Services) -> None:
        self._svc = svc
        self.redis = status_redis(svc.settings.redis_url, timeout=REDIS_TIMEOUT_SECONDS)
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.process_id = f"{self.hostname}:{self.pid}"
        self._reading: PipelineStatus | None = None
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def status(self) -> PipelineStatus:
        async with self._lock:
            if self._reading is None or time.monotonic() - self._read_at > READING_MAX_AGE:
                self._reading = await self._read()
                self._read_at = time.monotonic()
            return self._reading

    async def _read(self) -> PipelineStatus:
        return await gather_status_over(
            self.redis,
            self._svc.pool.acquire(timeout=READ_TIMEOUT_SECONDS),
            gone_after=self._svc.settings.worker_gone_seconds,
        )

    async def publish(self) -> None:
        """Tell the other web processes how many dashboard streams this one serves."""
        beat = WebHeartbeat(
            process_id=self.process_id,
            hostname=self.hostname,
            pid=self.pid,
            streams=self._svc.hub.subscriber_count,
            seen_at=time.time(),
        )
        await self.redis.hset(DEFAULT_KEYS.web, self.process_id, beat.encode())

    async def forget_old_processes(self) -> None:
        records = await self.redis.hgetall(DEFAULT_KEYS.web)
        stale = forgotten_ids(records, WebHeartbeat.decode, now=time.time())
        if stale:
            await self.redis.hdel(DEFAULT_KEYS.web, *stale)

    async def publish_forever(self) -> None:
        outage = OutageLog(log)
        with contextlib.suppress(RedisError, OSError):  # housekeeping: the next one retries
            await self.forget_old_processes()
        while True:
            try:
                await self.publish()
                outage.succeeded()
            except (RedisError, OSError) as exc:
                outage.failed("Could not publish this process's stream count: %s", exc)
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def close(self) -> None:
        try:
            # Gone at once, rather than counted until its record goes stale.
            await self.redis.hdel(DEFAULT_KEYS.web, self.process_id)
        except (RedisError, OSError) as exc:
            log.info("Could not remove this process's stream count: %s", exc)
        finally:
            await self.redis.aclose()


@contextlib.asynccontextmanager
async def serve_status_board(app: Quart, svc: Services) -> AsyncIterator[StatusBoard]:
    """This process's status board, publishing its stream count while the block runs."""
    board = StatusBoard(svc)
    app.extensions[_BOARD] = board
    publisher = asyncio.create_task(board.publish_forever(), name="status-publish")
    yield board
    await cancel_and_wait(publisher)
    app.extensions.pop(_BOARD, None)
    await board.close()


def board() -> StatusBoard:
    found: StatusBoard = current_app.extensions[_BOARD]
    return found


@blueprint.get("/status")
async def page() -> str:
    status = await board().status()
    return await render_template(
        "status.html", status=status, fmt=FORMAT, refresh_seconds=REFRESH_SECONDS
    )


@blueprint.get("/status/stream")
async def stream() -> Response:
    status_board = board()

    @stream_with_context
    async def frames() -> AsyncIterator[bytes]:
        yield RETRY_FRAME
        sent = 0
        while True:
            status = await status_board.status()
            html = await render_template("_status.html", status=status, fmt=FORMAT)
            sent += 1
            yield sse_frame(html, event="status", event_id=sent)
            await asyncio.sleep(REFRESH_SECONDS)

    return sse_response(frames())


@blueprint.get("/api/status")
async def api_status() -> Response:
    """The same reading as the page and `lvd status --json`."""
    # web/core/status/formatting.py writes this shape (for `lvd status --json` too).
    reading = cast(PipelineReading, status_as_dict(await board().status()))
    return jsonify(reading)
