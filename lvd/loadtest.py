"""`lvd loadtest`: open-loop load on the ingest API, then a check that every 202 was stored once.

Open loop: request i is due at start + i / rate whatever the server does, and its latency is
measured from that due time, so a slow server cannot hide its queueing (no coordinated
omission). The HTTP client is a minimal keep-alive HTTP/1.1 client on asyncio streams: on
a 2-core machine a heavier client would take the CPU the server is being measured with.
"""

from __future__ import annotations

import asyncio
import gc
import math
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import asyncpg

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute))?\s*$")


def parse_rate(text: str) -> float:
    """Requests per second from `100/s`, `500/min` or a bare number (per second)."""
    match = _RATE.match(text.lower())
    if not match:
        raise ValueError(f"a rate looks like 100/s or 500/min, got {text!r}")
    value = float(match[1])
    per_minute = (match[2] or "s").startswith("m")
    rate = value / 60 if per_minute else value
    if rate <= 0:
        raise ValueError("the rate must be positive")
    return rate


def due_times(rate: float, duration: float) -> list[float]:
    """Seconds after the start at which each request is due."""
    count = math.floor(rate * duration)
    return [i / rate for i in range(count)]


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values; 0.0 for none."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class Outcome:
    status: int
    latency: float  # seconds from the due time to the full response
    event_ids: list[str]


@dataclass
class Report:
    requested: int
    duration: float
    outcomes: list[Outcome] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    stored_once: int = 0
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    stored_but_refused: list[str] = field(default_factory=list)
    stored_after_retryable: list[str] = field(default_factory=list)
    queue_latencies: list[float] = field(default_factory=list)
    drain_seconds: float = 0.0
    # From the first accepted event's arrival to the last one's commit, by the server's clocks.
    stored_span_seconds: float = 0.0

    @property
    def accepted_ids(self) -> list[str]:
        return [i for o in self.outcomes if o.status == 202 for i in o.event_ids]

    def summary(self) -> dict[str, Any]:
        latencies = sorted(o.latency for o in self.outcomes)
        queue = sorted(self.queue_latencies)
        statuses = Counter(str(o.status) for o in self.outcomes)
        events_sent = sum(len(o.event_ids) for o in self.outcomes)
        return {
            "requests": self.requested,
            "responses": len(self.outcomes),
            "achieved_rate": round(len(self.outcomes) / self.duration, 1) if self.duration else 0,
            "events_sent": events_sent,
            # Sent, whatever the answer; accepted_per_second counts the 202s alone.
            "events_per_second": round(events_sent / self.duration, 1) if self.duration else 0,
            "accepted_per_second": (
                round(len(self.accepted_ids) / self.duration, 1) if self.duration else 0
            ),
            "status_counts": dict(statuses),
            "client_errors": dict(self.errors),
            "latency_ms": {
                "p50": _ms(percentile(latencies, 0.50)),
                "p95": _ms(percentile(latencies, 0.95)),
                "p99": _ms(percentile(latencies, 0.99)),
                "max": _ms(latencies[-1] if latencies else 0.0),
            },
            "accepted_events": len(self.accepted_ids),
            "stored_once": self.stored_once,
            "lost": len(self.lost),
            "doubled": len(self.doubled),
            "stored_but_refused": len(self.stored_but_refused),
            "stored_after_retryable_refusal": len(self.stored_after_retryable),
            "queue_to_db_ms": {
                "p50": _ms(percentile(queue, 0.50)),
                "p99": _ms(percentile(queue, 0.99)),
                "max": _ms(queue[-1] if queue else 0.0),
            },
            "drain_seconds": round(self.drain_seconds, 2),
            "stored_per_second": (
                round(self.stored_once / self.stored_span_seconds, 1)
                if self.stored_span_seconds > 0
                else 0
            ),
        }


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


# Events are written from a template: on a 2-core machine the load tool shares the CPU with
# the server it measures, and building dicts and serialising them cost it 5 times as much.
_EVENT_TEMPLATE = (
    '{"event_id":"%s","eventName":"load_test_event","userId":%d,"timestamp":"%s",'
    '"properties":{"step":%d,"source":"lvd loadtest"}}'
)
# SDKs send ids of 36 characters or more (UUIDs, "ajs-next-" + 32 hex). Shorter ones would
# make the load test's receipts smaller than real traffic's, and PostgreSQL would put them
# into the gaps vacuumed pages leave, which real traffic's do not fit (issue 18).
EVENT_ID_LENGTH = 36
_GOOD_TIMESTAMP = "2025-12-10T15:45:00Z"
_BAD_TIMESTAMP = "not a date"  # fails the envelope's RFC 3339 check


def event_id(run_id: str, index: int) -> str:
    """The run's index-th event id: the run id, then the index zero-padded to at least
    EVENT_ID_LENGTH characters in all."""
    return f"{run_id}-{index:0{max(EVENT_ID_LENGTH - len(run_id) - 1, 1)}d}"


def event_json(index: int, invalid: bool, run_id: str) -> bytes:
    """One event as JSON; run ids are hex or plain words, so they need no escaping."""
    timestamp = _BAD_TIMESTAMP if invalid else _GOOD_TIMESTAMP
    fields = (event_id(run_id, index), index, timestamp, index % 10)
    return (_EVENT_TEMPLATE % fields).encode()


def request_body(
    first: int, batch: int, invalid_every: int, run_id: str
) -> tuple[bytes, list[str]]:
    """A request's body (an event, or an array of `batch`) and the ids of its events."""
    indexes = range(first, first + batch)
    events = [
        event_json(i, bool(invalid_every) and i % invalid_every == 0, run_id) for i in indexes
    ]
    body = events[0] if batch == 1 else b"[" + b",".join(events) + b"]"
    return body, [event_id(run_id, i) for i in indexes]


class HttpConnection:
    """One keep-alive HTTP/1.1 connection: send a request, read a Content-Length response."""

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        """Open the connection unless it is open: a kept-alive one the server closed while
        idle (its keep-alive timeout) is opened again."""
        if self._writer is None or self._writer.is_closing() or self._server_hung_up():
            await self.close()
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        # On a connection the server closed while idle the request was never sent: not a
        # failure, a new connection.
        await self.connect()
        assert self._reader is not None and self._writer is not None
        head = f"POST {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
        head += f"Content-Length: {len(body)}\r\nContent-Type: application/json\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self._writer.write(head.encode() + body)
        # The whole head in one read: a line-by-line read costs an await per header, and
        # this client shares the machine's CPU with the server it measures.
        try:
            response_head = await self._reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise ConnectionError("the server closed the connection") from None
            raise
        status_line, *header_lines = response_head[:-4].decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        length, close = 0, False
        for line in header_lines:
            name, _, value = line.partition(":")
            name = name.lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and "close" in value.lower():
                close = True
        payload = await self._reader.readexactly(length)
        if close:
            await self.close()
        return status, payload

    def _server_hung_up(self) -> bool:
        return self._reader is not None and self._reader.at_eof()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class ConnectionPool:
    """Keep-alive connections to one server, each carrying one request at a time."""

    def __init__(self, url: str, size: int) -> None:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        self._idle: asyncio.Queue[HttpConnection] = asyncio.Queue()
        for _ in range(size):
            self._idle.put_nowait(HttpConnection(host, port))

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """The answer's status, or 0 and the error's name when the connection failed."""
        conn = await self._idle.get()
        try:
            status, _ = await conn.post(path, body, headers)
            return status, ""
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            await conn.close()
            return 0, type(exc).__name__
        finally:
            self._idle.put_nowait(conn)

    async def connect_all(self) -> None:
        """Open every connection now, so that no request of the run pays for a handshake; a
        server that cannot be reached is reported by the requests themselves."""
        connections = [self._idle.get_nowait() for _ in range(self._idle.qsize())]
        await asyncio.gather(*(c.connect() for c in connections), return_exceptions=True)
        for connection in connections:
            self._idle.put_nowait(connection)

    async def close(self) -> None:
        while not self._idle.empty():
            await self._idle.get_nowait().close()


async def write_key_headers(url: str, app_id: str, token: str | None) -> dict[str, str]:
    """The app's write key as a header, looked up over the API with an API token (read
    scope); none without a token. A server that requires write keys refuses events without."""
    if not token:
        return {}
    import httpx

    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(
            f"{url.rstrip('/')}/api/apps/{app_id}",
            headers={"Authorization": f"Bearer {token}"},
        )
    if response.status_code != 200:
        raise SystemExit(f"lvd loadtest: cannot look the app {app_id!r} up: {response.text}")
    return {"X-Write-Key": str(response.json()["write_key"])}


async def send_load(
    url: str,
    app_id: str,
    rate: float,
    duration: float,
    *,
    batch: int = 1,
    invalid_share: float = 0.0,
    connections: int = 64,
    progress: bool = True,
    run_id: str | None = None,
    headers: dict[str, str] | None = None,
    warmup: float = 0.0,
) -> Report:
    """Open-loop load for `duration` seconds, after `warmup` seconds of the same load over
    the same connections that the report leaves out (their events are stored all the same)."""
    run_id = run_id or uuid.uuid4().hex[:12]
    load = _Load(
        ConnectionPool(url, connections),
        f"/api/logs/{app_id}",
        batch,
        round(1 / invalid_share) if invalid_share > 0 else 0,
        headers or {},
    )
    await load.pool.connect_all()  # the clock measures the server, not TCP handshakes
    if warmup > 0:
        # A connection's first request and a server's first second cost more than the rest.
        warm = Report(requested=0, duration=warmup)
        await load.run(due_times(rate, warmup), f"{run_id}w", warm, progress_every=0)
    due = due_times(rate, duration)
    report = Report(requested=len(due), duration=duration)
    await load.run(due, run_id, report, progress_every=max(1, int(rate)) if progress else 0)
    if progress:
        _progress(len(due), len(due), len(report.outcomes))
        print(file=sys.stderr)
    await load.pool.close()
    return report


@dataclass
class _Load:
    """What every request of a run shares: where it goes and how its bodies are made."""

    pool: ConnectionPool
    path: str
    batch: int
    invalid_every: int
    headers: dict[str, str]

    async def run(
        self, due: Sequence[float], run_id: str, report: Report, *, progress_every: int
    ) -> None:
        """Send a request at each due time (seconds from now), open-loop, into `report`."""
        started = time.perf_counter()

        async def one(index: int, due_at: float) -> None:
            body, event_ids = request_body(
                index * self.batch, self.batch, self.invalid_every, run_id
            )
            status, error = await self.pool.post(self.path, body, self.headers)
            if error:
                report.errors[error] += 1
            latency = time.perf_counter() - (started + due_at)
            report.outcomes.append(Outcome(status, latency, event_ids))

        tasks = []
        with garbage_collector_paused():
            for index, due_at in enumerate(due):
                delay = started + due_at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(index, due_at)))
                if progress_every and index % progress_every == 0:
                    _progress(index, len(due), len(report.outcomes))
            await asyncio.gather(*tasks)
        report.duration = time.perf_counter() - started


@contextmanager
def garbage_collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block, as timeit does while it measures.

    A full collection walks every outcome and task of the run so far: at 1 500 requests/s
    it paused this process for 40-60 ms, and every request due meanwhile was charged that
    pause as server latency. Reference counting still frees almost everything at once;
    the little cyclic garbage a run makes waits for its end.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _retryable(status: int) -> bool:
    return status in (0, 408, 429) or status >= 500


def _progress(sent: int, total: int, answered: int) -> None:
    width = 30
    filled = int(width * sent / total) if total else width
    bar = "#" * filled + "-" * (width - filled)
    print(f"\r[{bar}] sent {sent}/{total}, answered {answered}", end="", file=sys.stderr)


# How many of the last answered events the drain waits for before it counts them all.
DRAIN_SAMPLE = 1000


async def verify_storage(
    report: Report, database_url: str, app_id: str, *, drain_limit: float = 60.0
) -> None:
    """Wait for the queue to drain, then count each sent id in the database."""
    accepted_ids = report.accepted_ids
    accepted = set(accepted_ids)
    # The oracle: an event refused for good (a 4xx other than 408/429) must never be stored.
    # After a retryable answer (429, 503, a dropped connection) it may be: the request can
    # have reached a hung Redis that ran it later; a retry with the same id stores it once.
    refused = {
        i
        for o in report.outcomes
        if o.status != 202 and not _retryable(o.status)
        for i in o.event_ids
    }
    retryable = {
        i for o in report.outcomes if o.status != 202 and _retryable(o.status) for i in o.event_ids
    }
    conn = await asyncpg.connect(database_url)
    try:
        started = time.perf_counter()
        deadline = started + drain_limit
        # Counting every id ten times a second would load PostgreSQL while the workers
        # drain (50 000 index probes a poll): wait for the last answered events first, the
        # likeliest to be stored last, then count them all.
        await _wait_until_stored(conn, app_id, accepted_ids[-DRAIN_SAMPLE:], deadline)
        await _wait_until_stored(conn, app_id, list(accepted), deadline)
        report.drain_seconds = time.perf_counter() - started
        rows = await conn.fetch(
            "SELECT event_id, count(*) AS copies,"
            " max(extract(epoch FROM created_at - received_at)) AS queue_seconds,"
            " min(extract(epoch FROM received_at)) AS received,"
            " max(extract(epoch FROM created_at)) AS created"
            " FROM log_entries WHERE app_id = $1 AND event_id = ANY($2::text[])"
            # The rows from the first one stored on: through the (app_id, id) index, and
            # any copy of an event (the receipts hold one each) would be among them.
            " AND id >= (SELECT min(entry_id) FROM event_receipts"
            "            WHERE app_id = $1 AND event_id = ANY($2::text[]))"
            " GROUP BY event_id",
            app_id,
            list(accepted | refused | retryable),
        )
    finally:
        await conn.close()
    copies = {row["event_id"]: row["copies"] for row in rows}
    report.stored_once = sum(1 for i in accepted if copies.get(i) == 1)
    report.lost = sorted(i for i in accepted if i not in copies)
    report.doubled = sorted(i for i, n in copies.items() if n > 1)
    report.stored_but_refused = sorted(i for i in refused if i in copies)
    report.stored_after_retryable = sorted(i for i in retryable if i in copies)
    stored = [row for row in rows if row["event_id"] in accepted]
    report.queue_latencies = [float(row["queue_seconds"]) for row in stored]
    if stored:
        first = min(float(row["received"]) for row in stored)
        report.stored_span_seconds = max(float(row["created"]) for row in stored) - first


async def _wait_until_stored(
    conn: asyncpg.Connection, app_id: str, event_ids: list[str], deadline: float
) -> None:
    expected = len(set(event_ids))
    while True:
        found = await conn.fetchval(
            # Each stored event has one receipt, committed with it (migration 0012).
            "SELECT count(*) FROM event_receipts WHERE app_id = $1 AND event_id = ANY($2::text[])",
            app_id,
            event_ids,
        )
        if found >= expected or time.perf_counter() > deadline:
            return
        await asyncio.sleep(0.1)


def format_report(summary: dict[str, Any]) -> str:
    latency, queue = summary["latency_ms"], summary["queue_to_db_ms"]
    lines = [
        f"requests      {summary['responses']}/{summary['requests']} answered,"
        f" {summary['achieved_rate']} req/s, {summary['events_per_second']} events/s sent,"
        f" {summary['accepted_per_second']} accepted",
        f"status codes  {summary['status_counts']}"
        + (f"  client errors {summary['client_errors']}" if summary["client_errors"] else ""),
        f"latency ms    p50 {latency['p50']}  p95 {latency['p95']}  p99 {latency['p99']}"
        f"  max {latency['max']}",
        f"storage       {summary['accepted_events']} accepted, {summary['stored_once']} stored"
        f" once, {summary['lost']} lost, {summary['doubled']} doubled,"
        f" {summary['stored_but_refused']} stored though refused"
        f" (drained in {summary['drain_seconds']} s);"
        f" {summary['stored_per_second']} events/s from first accepted to last committed",
        f"queue->db ms  p50 {queue['p50']}  p99 {queue['p99']}  max {queue['max']}",
    ]
    return "\n".join(lines)
