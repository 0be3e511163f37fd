"""Export at scale: a million events out of one `lvd web` in one request, rows/s and memory.

Builds (once, then reuses) an `lvd_bench_export` database on the PostgreSQL that `make run`
would use: bench/history_data.py's history of 1 250 000 events, about 1 040 000 of them the
main app's. Then it streams exports of that app (all of it as NDJSON and as CSV, the first
100 000 rows, one day, a name that never came) while sampling the web process tree's
resident memory every 50 ms, and hangs up on one whose query is running to time how soon
the database stops. Not part of the test suite: `.venv/bin/python -m bench.export`.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from bench import history_data
from bench.history_data import MAIN_APP
from bench.pipeline import BIN, ROOT, free_port, process, tree_rss_mb, wait_ready
from lvd.devservices.services import DevServices
from web.core.db import with_database

EVENTS = int(os.environ.get("BENCH_EXPORT_EVENTS", "1250000"))


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
        history = asyncio.run(history_data.cached(database_url, EVENTS))
        if history is None:
            print(f"building {EVENTS:,} events into lvd_bench_export", flush=True)
            history = asyncio.run(history_data.build(database_url, EVENTS))
        env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
        with web_process(env) as (url, pid):
            rows = measure_all(url, pid, database_url, history.end)
    width = max(len(name) for name, _ in rows)
    print("\n" + "=" * 100)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def measure_all(url: str, pid: int, database_url: str, end: datetime) -> list[tuple[str, str]]:
    base = f"{url}/apps/{MAIN_APP}/events"
    day = end - timedelta(days=20)
    window = {"since": day.isoformat(), "until": (day + timedelta(days=1)).isoformat()}
    runs = [
        ("NDJSON, 100 000 rows (limit)", f"{base}.ndjson", {"limit": "100000"}),
        ("NDJSON, every row", f"{base}.ndjson", {}),
        ("CSV, every row", f"{base}.csv", {}),
        ("NDJSON, one day 20 days back", f"{base}.ndjson", window),
        ("NDJSON, a name that never came", f"{base}.ndjson", {"event_name": "never_sent"}),
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


if __name__ == "__main__":
    main()
