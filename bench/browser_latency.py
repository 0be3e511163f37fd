"""Browser latency: from POST to the row on screen in the live view, in headless Chromium.

Starts its own `lvd web` and `lvd worker` against a fresh `lvd_bench_browser` database and
Redis database 5 on the PostgreSQL and Redis that `make run` would use (as bench/pipeline.py
does), opens the app's live view, then sends events open-loop at a steady rate, one per
request, each with a unique id and its send time in the payload. A MutationObserver the
benchmark installs in the page (not product code) records when each row is inserted and
the next animation frame after it (when it is painted); latency is that minus the send
time, on the same machine's clock.

    .venv/bin/python -m bench.browser_latency [--rate 100] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
import redis
from playwright.async_api import Page, async_playwright

from bench.chromium import launch_chromium
from bench.pipeline import APP_ID, BIN, ROOT, free_port, fresh_database, process, wait_ready
from lvd.devservices.services import DevServices
from lvd.loadtest import ConnectionPool, garbage_collector_paused
from web.core.db import with_database

DATABASE = "lvd_bench_browser"
REDIS_DB = 5
# Installed before the page's own scripts: every row that enters the DOM is timed when it is
# inserted and again at the next animation frame, keyed by its event id.
OBSERVER = """
window.__inserted = {};
window.__painted = {};
new MutationObserver(function (mutations) {
  var now = Date.now();
  var fresh = [];
  mutations.forEach(function (mutation) {
    mutation.addedNodes.forEach(function (node) {
      if (node.nodeType === 1 && node.tagName === "TR" && node.dataset.eventId
          && !(node.dataset.eventId in window.__inserted)) {
        window.__inserted[node.dataset.eventId] = now;
        fresh.push(node.dataset.eventId);
      }
    });
  });
  if (fresh.length) {
    requestAnimationFrame(function () {
      var painted = Date.now();
      fresh.forEach(function (id) { window.__painted[id] = painted; });
    });
  }
}).observe(document, { childList: true, subtree: true });
"""


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan")}
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else []

    def cut(p: int) -> float:
        return round(cuts[p - 1] if cuts else ordered[0], 1)

    return {"p50": cut(50), "p95": cut(95), "p99": cut(99), "max": round(ordered[-1], 1)}


async def _send(
    pool: ConnectionPool, rate: float, seconds: float, run_id: str
) -> tuple[dict[str, float], dict[str, int]]:
    """Open-loop: request i leaves at start + i/rate whether or not earlier ones answered.

    Sent over the load tool's lean keep-alive connections: with httpx's pool the sender's own
    CPU delayed requests by seconds on a slow day, before the web process ever saw them.
    """
    sent: dict[str, float] = {}
    statuses: dict[str, int] = {}
    total = int(rate * seconds)
    start = time.perf_counter() + 0.2

    async def one(index: int) -> None:
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        event_id = f"lat-{run_id}-{index:06d}"
        sent_at = time.time() * 1000
        event = {
            "eventName": "latency_probe",
            "event_id": event_id,
            "sent_at_ms": sent_at,
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        status, error = await pool.post(f"/api/logs/{APP_ID}", orjson.dumps(event), {})
        key = error or str(status)
        statuses[key] = statuses.get(key, 0) + 1
        if key == "202":
            sent[event_id] = sent_at

    await asyncio.gather(*(one(i) for i in range(total)))
    return sent, statuses


async def _arrivals(page: Page, wanted: set[str], within: float) -> tuple[dict[str, float], ...]:
    deadline = time.monotonic() + within
    while True:
        painted: dict[str, float] = await page.evaluate("window.__painted")
        if wanted <= painted.keys() or time.monotonic() > deadline:
            inserted: dict[str, float] = await page.evaluate("window.__inserted")
            return inserted, painted
        await asyncio.sleep(0.2)


async def _stored_times(database_url: str, ids: list[str]) -> dict[str, tuple[float, float]]:
    """event id -> (received_at, created_at) in epoch ms, as the database has them."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT event_id, received_at, created_at FROM log_entries"
            " WHERE app_id = $1 AND event_id = ANY($2::text[])",
            APP_ID,
            ids,
        )
    finally:
        await conn.close()
    return {
        row["event_id"]: (
            row["received_at"].timestamp() * 1000,
            row["created_at"].timestamp() * 1000,
        )
        for row in rows
    }


async def measure(base_url: str, database_url: str, rate: float, seconds: float) -> dict[str, Any]:
    """Open the live view in Chromium, send events, and time each row onto the screen."""
    run_id = uuid.uuid4().hex[:8]
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        try:
            page = await browser.new_page(viewport={"width": 1366, "height": 800})
            await page.add_init_script(OBSERVER)
            await page.goto(f"{base_url}/apps/{APP_ID}")
            # A selector, not wait_for_function: the page's CSP forbids evaluating strings.
            await page.wait_for_selector('#connection[data-state="live"]', timeout=15_000)
            pool = ConnectionPool(base_url, 64)
            try:
                # A few events first, so that connections, plan cache and worker are warm.
                warm, _ = await _send(pool, 10, 0.5, f"warm-{run_id}")
                await _arrivals(page, set(warm), 10)
                with garbage_collector_paused():  # as the load tool sends (lvd/loadtest.py)
                    sent, statuses = await _send(pool, rate, seconds, run_id)
            finally:
                await pool.close()
            inserted, painted = await _arrivals(page, set(sent), 30)
        finally:
            await browser.close()
    stored = await _stored_times(database_url, list(sent))
    shown = [event_id for event_id in sent if event_id in painted]
    return {
        "rate": rate,
        "seconds": seconds,
        "sent": sum(statuses.values()),
        "status_counts": statuses,
        "shown": len(shown),
        "missing": len(sent) - len(shown),
        "post_to_screen_ms": percentiles([painted[i] - sent[i] for i in shown]),
        "post_to_dom_ms": percentiles([inserted[i] - sent[i] for i in shown if i in inserted]),
        "post_to_committed_ms": percentiles([stored[i][1] - sent[i] for i in shown if i in stored]),
        "committed_to_screen_ms": percentiles(
            [painted[i] - stored[i][1] for i in shown if i in stored]
        ),
    }


def run(rate: float = 100.0, seconds: float = 20.0, *, web_workers: int = 1) -> dict[str, Any]:
    """Start services and processes of its own, measure, stop them; the figures as a dict."""
    with DevServices(ROOT / ".lvd") as services:
        endpoints = services.start()
        database_url = with_database(endpoints.database_url, DATABASE)
        redis_url = urlunsplit(urlsplit(endpoints.redis_url)._replace(path=f"/{REDIS_DB}"))
        asyncio.run(fresh_database(database_url, "Browser latency"))
        redis.Redis.from_url(redis_url).flushdb()
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "WEB_CONCURRENCY": str(web_workers),
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        }
        logs = ROOT / "artifacts" / "bench"
        logs.mkdir(parents=True, exist_ok=True)
        base_url = f"http://127.0.0.1:{port}"
        with (
            process(
                [str(BIN / "lvd"), "worker", "--threads", "8"], env, logs / "browser-worker.log"
            ),
            process([str(BIN / "lvd"), "web"], env, logs / "browser-web.log"),
        ):
            wait_ready(f"{base_url}/healthz")
            figures = asyncio.run(measure(base_url, database_url, rate, seconds))
        figures["web_processes"] = web_workers
        figures["cores"] = os.cpu_count()
        # Everything (browser, web, worker, databases, sender) shares this machine.
        figures["load_average_1m"] = round(os.getloadavg()[0], 1)
        return figures


def report(figures: dict[str, Any]) -> str:
    def line(name: str, key: str) -> str:
        f = figures[key]
        return f"{name:<34} p50 {f['p50']:>7} ms  p95 {f['p95']:>7} ms  p99 {f['p99']:>7} ms"

    return "\n".join(
        [
            f"browser latency: {figures['rate']:g} events/s for {figures['seconds']:g} s,"
            f" {figures['web_processes']} web process(es), 1 worker; Chromium headless;"
            f" {figures['cores']} cores, load average {figures['load_average_1m']} after the run",
            f"sent {figures['sent']} ({figures['status_counts']}), shown {figures['shown']},"
            f" missing {figures['missing']}",
            line("POST -> row painted in the page", "post_to_screen_ms"),
            line("POST -> row inserted in the DOM", "post_to_dom_ms"),
            line("POST -> row committed (worker)", "post_to_committed_ms"),
            line("committed -> row painted", "committed_to_screen_ms"),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=100.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--web-workers", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    figures = run(args.rate, args.seconds, web_workers=args.web_workers)
    print(report(figures), flush=True)
    if args.json:
        args.json.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
