"""Export at scale: 1 000 000 events out of one `lvd web` in one request, rows/s and memory.

Builds (once, then reuses) an `lvd_bench_export` database on the PostgreSQL and Redis that
`make run` would use: 1 000 000 events of one app over 30 days (~700-byte payloads, 20 %
invalid, 17 names) among 100 000 of another. Then it streams whole exports, a window, a
filter that matches nothing and a dropped connection, sampling the web process tree's
resident memory every 50 ms. Not part of the test suite: `python -m bench.export`.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from bench.pipeline import BIN, ROOT, free_port, process, tree_rss_mb, wait_ready
from lvd.devservices.services import DevServices
from web.core.apps import add_app
from web.core.db import drop_database, prepare_database, with_database

APP_ID = "export"
ROWS = int(os.environ.get("BENCH_EXPORT_ROWS", "1000000"))
OTHER_ROWS = ROWS // 10
DAYS = 30
# Where the 30 days end; fixed, so a rebuilt database holds the same rows.
END = datetime(2026, 1, 1, tzinfo=UTC)
FILL_BATCH = 100_000

# One app's events, numbered n, received evenly over DAYS before END.
_FILL = """
    INSERT INTO log_entries (app_id, event_id, event_name, payload, validation_status, errors,
                             plan_version, session, received_at)
    SELECT $1, $1 || '-' || n, 'event_' || (n % 17),
           jsonb_build_object(
               'eventName', 'event_' || (n % 17), 'userId', 'u_' || (n % 5000),
               'properties', jsonb_build_object('seq', n, 'blob', repeat(md5(n::text), 18))),
           CASE WHEN n % 5 = 0 THEN 'invalid' ELSE 'valid' END,
           CASE WHEN n % 5 = 0
                THEN '[{"path": "/total", "rule": "type", "severity": "error",
                        "message": "total must be a number"}]'::jsonb
                ELSE '[]'::jsonb END,
           1, CASE WHEN n % 7 = 0 THEN 'session-' || (n % 60) END,
           $4::timestamptz - make_interval(days => $5) * (1 - n::float8 / $3)
    FROM generate_series($2::bigint, least($2 + $6 - 1, $3)) AS n
"""


@dataclass(frozen=True)
class Measured:
    rows: int
    megabytes: float
    seconds: float
    first_byte_ms: float
    rss_before_mb: float
    rss_peak_mb: float

    def line(self) -> str:
        first = f"{self.first_byte_ms:.0f} ms" if self.rows else "none"
        return (
            f"{self.rows} rows, {self.megabytes:.0f} MB in {self.seconds:.2f} s:"
            f" {self.rows / self.seconds:,.0f} rows/s, {self.megabytes / self.seconds:.1f} MB/s,"
            f" first row {first}; web RSS {self.rss_before_mb:.0f} MiB"
            f" -> peak {self.rss_peak_mb:.0f} MiB"
            f" (+{self.rss_peak_mb - self.rss_before_mb:.1f} MiB)"
        )


def main() -> None:
    with DevServices(ROOT / ".lvd") as services:
        endpoints = services.start()
        database_url = with_database(endpoints.database_url, "lvd_bench_export")
        redis_url = urlunsplit(urlsplit(endpoints.redis_url)._replace(path="/11"))
        asyncio.run(ensure_rows(database_url))
        env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
        with web_process(env) as (url, pid):
            rows = measure_all(url, pid, database_url)
    width = max(len(name) for name, _ in rows)
    print("\n" + "=" * 100)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def measure_all(url: str, pid: int, database_url: str) -> list[tuple[str, str]]:
    base = f"{url}/apps/{APP_ID}/events"
    day = END - timedelta(days=20)
    window = {"since": day.isoformat(), "until": (day + timedelta(days=1)).isoformat()}
    runs = [
        ("NDJSON, 100 000 rows (limit)", f"{base}.ndjson", {"limit": "100000"}),
        ("NDJSON, every row", f"{base}.ndjson", {}),
        ("CSV, every row", f"{base}.csv", {}),
        ("NDJSON, one day 20 days back", f"{base}.ndjson", window),
        ("NDJSON, a name that never came", f"{base}.ndjson", {"event_name": "nope"}),
    ]
    found = []
    for name, path, query in runs:
        measured = stream(path, query, pid, header_lines=1 if path.endswith(".csv") else 0)
        print(f"{name}: {measured.line()}", flush=True)
        found.append((name, measured.line()))
    found.append(("client gone mid-query", dropped(f"{base}.ndjson", database_url)))
    print(found[-1][1], flush=True)
    return found


def stream(path: str, query: dict[str, str], pid: int, *, header_lines: int) -> Measured:
    """One export read to its end, the web tree's memory sampled meanwhile."""
    before = tree_rss_mb(pid)
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], tree_rss_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lines = size = 0
    first_byte = 0.0
    started = time.monotonic()
    with httpx.stream("GET", path, params=query, timeout=60) as response:
        response.raise_for_status()
        for chunk in response.iter_raw():
            first_byte = first_byte or time.monotonic() - started
            lines += chunk.count(b"\n")
            size += len(chunk)
    seconds = time.monotonic() - started
    done.set()
    sampler.join()
    return Measured(lines - header_lines, size / 1e6, seconds, first_byte * 1000, before, peak[0])


def dropped(path: str, database_url: str) -> str:
    """Hang up while a page query runs (a search that matches nothing reads every row);
    then time until the database has stopped working for the export."""
    with httpx.stream("GET", path, params={"q": "matches-nothing"}, timeout=60):
        asyncio.run(wait_for_queries(database_url, running=True))
        hung_up = time.monotonic()
    asyncio.run(wait_for_queries(database_url, running=False))
    return f"the page query running is stopped {(time.monotonic() - hung_up) * 1000:.0f} ms later"


async def wait_for_queries(database_url: str, *, running: bool) -> None:
    """Until some query reads log_entries (running) or none does, within 30 s."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            count = await conn.fetchval(
                """
                SELECT count(*) FROM pg_stat_activity
                WHERE datname = current_database() AND state = 'active'
                  AND pid <> pg_backend_pid() AND query LIKE '%FROM log_entries%'
                """
            )
            if (count > 0) == running:
                return
            await asyncio.sleep(0.005)
        raise RuntimeError(f"queries never {'ran' if running else 'stopped'}")
    finally:
        await conn.close()


@contextmanager
def web_process(env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """`lvd web` with one worker process: its URL and its pid."""
    port = free_port()
    web_env = {**env, "PORT": str(port), "WEB_CONCURRENCY": "1"}
    logs = ROOT / "artifacts" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    with process([str(BIN / "lvd"), "web"], web_env, logs / "export-web.log") as web:
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/healthz")
        yield url, web.pid


async def ensure_rows(database_url: str) -> None:
    """The database as the docstring says: kept when it holds the rows, else built again."""
    try:
        conn = await asyncpg.connect(database_url)
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        try:
            count = await conn.fetchval(
                "SELECT count(*) FROM log_entries WHERE app_id = $1", APP_ID
            )
        finally:
            await conn.close()
        if count == ROWS:
            return
    started = time.monotonic()
    await drop_database(database_url)
    await prepare_database(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        await add_app(conn, APP_ID, "Export benchmark")
        await add_app(conn, "other", "Another app")
        # Batch by batch, the other app's events between the export's, as they would come.
        for first in range(1, ROWS + 1, FILL_BATCH):
            await conn.execute(_FILL, APP_ID, first, ROWS, END, DAYS, FILL_BATCH)
            other_first = (first - 1) // 10 + 1
            await conn.execute(_FILL, "other", other_first, OTHER_ROWS, END, DAYS, FILL_BATCH // 10)
        await conn.execute("VACUUM ANALYZE log_entries")
    finally:
        await conn.close()
    print(f"built {ROWS + OTHER_ROWS} events in {time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
