"""`make bench-history`: every page and API call a QA engineer uses, timed over a big history.

Builds a database of 20 million events once (bench/history_data.py; kept and reused while
it has that many events and the current schema, `--rebuild` makes it again), starts `lvd
web` and `lvd worker` on it as bench/pipeline.py does, then times each request 10 times
after one warm-up (p50 and p95) and measures ingest into that history: 1 000 events/s
open-loop after two seconds of warm-up, and 500-event batches offered faster than they
can be stored, each checked event by event in the database (lost, doubled). The ingest's
events go to one of the smaller apps in a test session of their own, deleted through the
product's reset afterwards, so the history stays as built. The table is printed as
Markdown and written to artifacts/bench-history.json.

    .venv/bin/python -m bench.history [--events N | --quick] [--rebuild]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import orjson
import redis

from bench import history_data
from bench.history_data import MAIN_APP, OTHER_APPS, RARE_NAME, History
from bench.pipeline import BIN, ROOT, pipeline
from lvd import loadtest
from lvd.devservices.services import DevServices
from web.core.db import with_database
from web.core.queries.events import delete_log_entries
from web.core.queries.retention import vacuum_log_entries

DEFAULT_EVENTS = 20_000_000
QUICK_EVENTS = 500_000
REDIS_DB = 9
REPEATS = 10
SESSION = "qa-run-30"
RULE = "required"
# The ingest measurements' app: one with a history of its own and, like bench/pipeline.py's,
# no plan, so that the events are judged as there (the README's targets). Its events
# belong to a session of their own, reset afterwards.
INGEST_APP = OTHER_APPS[0]
INGEST_SESSION = "bench-history-ingest"
RESULTS = ROOT / "artifacts" / "bench-history.json"


def database_for(events: int) -> str:
    """One cached database per size: a quick look never replaces the big one."""
    return "lvd_bench_history" if events == DEFAULT_EVENTS else f"lvd_bench_history_{events}"


@dataclass(frozen=True)
class Probe:
    """One request as a QA engineer makes it, named as the issue's table names it."""

    name: str
    path: str
    params: dict[str, str] = field(default_factory=dict)


def probes(now: datetime, page_100_cursor: str) -> list[Probe]:
    app = f"/apps/{MAIN_APP}"
    api = f"/api/logs/{MAIN_APP}"
    window = (now - timedelta(days=20)).replace(minute=0, second=0, microsecond=0)
    hour = {"since": _iso(window), "until": _iso(window + timedelta(hours=1))}
    nothing = "u_1234567"  # user ids have six digits: no payload holds this
    return [
        Probe("apps list `/`", "/"),
        Probe("live view, first page", app),
        Probe("live view, `status=invalid`", app, {"status": "invalid"}),
        Probe("live view, text search matching nothing (`q=u_1234567`)", app, {"q": nothing}),
        Probe("the same with `status=invalid`", app, {"q": nothing, "status": "invalid"}),
        Probe("live view, a 1-hour window 20 days ago", app, hour),
        Probe("live view, a rare event name (0.01 %)", app, {"event_name": RARE_NAME}),
        Probe("query API, a rare event name (0.01 %)", api, {"event_name": RARE_NAME}),
        Probe(f"live view, session filter (`session={SESSION}`)", app, {"session": SESSION}),
        Probe(f"live view, rule filter (`rule={RULE}`)", app, {"rule": RULE}),
        Probe("query API, cursor page 100", api, {"cursor": page_100_cursor}),
        Probe("`GET /api/logs/<app>/summary`", f"{api}/summary"),
        Probe("coverage over 30 days", f"{app}/coverage", {"since": _iso(now - timedelta(30))}),
        Probe("coverage of a test session", f"{app}/coverage", {"session": SESSION}),
        Probe("violations, 1 h", f"{app}/violations", {"window": "1h"}),
        Probe("violations, 24 h", f"{app}/violations", {"window": "24h"}),
        Probe("violations, 7 d", f"{app}/violations", {"window": "7d"}),
        Probe("tiles (`/apps/<app>/tiles`)", f"{app}/tiles"),
        Probe("export, first 1 000 rows (NDJSON)", f"{app}/events.ndjson", {"limit": "1000"}),
    ]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _get(client: httpx.Client, path: str, params: dict[str, str]) -> httpx.Response:
    response = client.get(path, params=params)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} {params}: {response.status_code} {response.text[:300]}")
    return response


def page_100_cursor(client: httpx.Client) -> str:
    """The query API's cursor for its 100th page, found by following next_cursor."""
    params: dict[str, str] = {}
    for _ in range(99):
        cursor = _get(client, f"/api/logs/{MAIN_APP}", params).json()["next_cursor"]
        if cursor is None:
            raise RuntimeError("the history has fewer than 100 pages")
        params = {"cursor": cursor}
    return params["cursor"]


def time_probe(client: httpx.Client, probe: Probe) -> dict[str, Any]:
    """p50 and p95 of REPEATS requests after one warm-up, each to its last byte."""
    _get(client, probe.path, probe.params)
    took = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        _get(client, probe.path, probe.params)
        took.append((time.perf_counter() - began) * 1000)
    took.sort()
    return {
        "request": probe.name,
        "path": probe.path,
        "params": probe.params,
        "p50_ms": round(loadtest.percentile(took, 0.50), 1),
        "p95_ms": round(loadtest.percentile(took, 0.95), 1),
    }


def time_requests(url: str) -> list[dict[str, Any]]:
    # No redirects followed: every probe must answer 200 itself.
    with httpx.Client(base_url=url, follow_redirects=False, timeout=600) as client:
        found = []
        for probe in probes(datetime.now(UTC), page_100_cursor(client)):
            found.append(time_probe(client, probe))
            row = found[-1]
            print(f"  {probe.name}: p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms", flush=True)
        return found


async def _ingest(
    url: str, database_url: str, rate: float, seconds: float, batch: int, warmup: float = 0.0
) -> dict[str, Any]:
    """Open-loop load on INGEST_APP in INGEST_SESSION, then every event counted stored."""
    report = await loadtest.send_load(
        url,
        INGEST_APP,
        rate,
        seconds,
        batch=batch,
        progress=False,
        connections=128,
        headers={"X-LVD-Session": INGEST_SESSION},
        warmup=warmup,
    )
    await loadtest.verify_storage(report, database_url, INGEST_APP, drain_limit=180)
    return report.summary()


def measure_ingest(url: str, database_url: str, quick: bool) -> dict[str, Any]:
    """1 000 single events/s, then 500-event batches offered at 50 000 events/s."""
    singles_seconds, batches_seconds = (10, 5) if quick else (20, 10)
    # Two seconds over the same connections not measured first, as the page timings have a
    # warm-up request: the first request on each connection and a web process's first
    # ingest requests took 30-56 ms for about 150 ms, which alone moved the p99 by several ms.
    singles = asyncio.run(_ingest(url, database_url, 1000, singles_seconds, 1, warmup=2))
    singles["seconds"] = singles_seconds
    print(f"  {ingest_lines({'singles': singles})[0]}", flush=True)
    batches = asyncio.run(_ingest(url, database_url, 100, batches_seconds, 500))
    batches["seconds"] = batches_seconds
    return {"singles": singles, "batches": batches}


def ingest_lines(ingest: dict[str, Any]) -> list[str]:
    singles, batches = ingest["singles"], ingest.get("batches")
    lines = [
        f"ingest, 1 000 events/s for {singles['seconds']} s:"
        f" p50 {singles['latency_ms']['p50']} ms, p99 {singles['latency_ms']['p99']} ms,"
        f" accept->committed p99 {singles['queue_to_db_ms']['p99']} ms,"
        f" lost {singles['lost']}, doubled {singles['doubled']}"
    ]
    if batches:
        lines.append(
            f"ingest, 500-event batches offered at 50 000 events/s for {batches['seconds']} s:"
            f" {batches['events_per_second']:.0f} events/s sent,"
            f" {batches['accepted_per_second']:.0f} accepted (answers {batches['status_counts']}),"
            f" {batches['stored_per_second']:.0f} events/s through to the database,"
            f" p99 {batches['latency_ms']['p99']} ms, lost {batches['lost']},"
            f" doubled {batches['doubled']}"
        )
    return lines


async def forget_ingest(database_url: str) -> None:
    """Reset the ingest session (as a QA engineer resets one) and vacuum what it left as the
    worker's purge does: every partition but the one being written, which stays unvacuumed
    (web/core/queries/partitions.py, open_partition_if_due)."""
    conn = await history_data.connect_if_exists(database_url)
    if conn is None:
        return
    try:
        if await delete_log_entries(conn, INGEST_APP, INGEST_SESSION):
            await vacuum_log_entries(conn, timeout_seconds=600)
    finally:
        await conn.close()


@contextmanager
def environment(events: int, rebuild: bool) -> Iterator[tuple[dict[str, str], str, History]]:
    """PostgreSQL and Redis as `make run` finds them, the history database (built when it
    is missing, stale or `rebuild`), Redis database REDIS_DB emptied: the processes'
    environment, the database URL and the history."""
    with DevServices(ROOT / ".lvd") as services:
        endpoints = services.start()
        database_url = with_database(endpoints.database_url, database_for(events))
        redis_url = urlunsplit(urlsplit(endpoints.redis_url)._replace(path=f"/{REDIS_DB}"))
        asyncio.run(forget_ingest(database_url))  # a run that was cut short left them
        history = None if rebuild else asyncio.run(history_data.cached(database_url, events))
        if history is None:
            print(f"building {events:,} events into {database_for(events)}", flush=True)
            history = asyncio.run(history_data.build(database_url, events))
        redis.Redis.from_url(redis_url).flushdb()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        }
        yield env, database_url, history


def history_line(history: History) -> str:
    age = datetime.now(UTC) - history.end
    return (
        f"history: {history.events:,} events over {history_data.DAYS} days"
        f" ({history.start:%Y-%m-%d %H:%M} to {history.end:%Y-%m-%d %H:%M} UTC, the newest"
        f" {age.total_seconds() / 3600:.1f} h old), built in {history.build_seconds / 60:.1f} min,"
        f" database {history.database_bytes / 2**30:.1f} GiB"
    )


def report(results: dict[str, Any]) -> str:
    lines = [
        results["machine"],
        history_line(History.from_json(orjson.dumps(results["history"]).decode())),
        "",
        "| request | p50 ms | p95 ms |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {r['request']} | {r['p50_ms']:,} | {r['p95_ms']:,} |" for r in results["requests"]
    ]
    return "\n".join([*lines, "", *ingest_lines(results["ingest"])])


def _revision() -> str:
    done = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


# The PostgreSQL settings the figures depend on most: the buffer cache that holds the hot
# indexes, and how much WAL may pass between checkpoints (after each one, the first change to
# every page writes the whole page to the WAL: random inserts into the receipts' index).
POSTGRES_SETTINGS = ("shared_buffers", "max_wal_size", "wal_compression")


async def postgres_settings(database_url: str) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        values = [f"{name} {await conn.fetchval(f'SHOW {name}')}" for name in POSTGRES_SETTINGS]
    finally:
        await conn.close()
    return ", ".join(values)


def run(events: int, rebuild: bool, quick: bool) -> dict[str, Any]:
    """Build or reuse the history, time the requests, measure ingest: the results."""
    with environment(events, rebuild) as (env, database_url, history):
        print(history_line(history), flush=True)
        logs = ROOT / "artifacts" / "bench-history"
        logs.mkdir(parents=True, exist_ok=True)
        with pipeline(env, logs) as (url, _worker, _web):
            requests = time_requests(url)
            ingest = measure_ingest(url, database_url, quick)
        asyncio.run(forget_ingest(database_url))
        postgres = asyncio.run(postgres_settings(database_url))
    # Everything (web, worker, PostgreSQL, Redis, the load) shares this machine, and so may
    # whatever else runs on it.
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python"
        f" {platform.python_version()}, 1 web process, 1 worker; code {_revision()};"
        f" load average {os.getloadavg()[0]:.1f} after the run; PostgreSQL {postgres}",
        "history": orjson.loads(history.as_json()),
        "requests": requests,
        "ingest": ingest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="history size")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_EVENTS:,} events")
    parser.add_argument("--rebuild", action="store_true", help="build the history again")
    args = parser.parse_args()
    events = QUICK_EVENTS if args.quick else args.events
    results = run(events, args.rebuild, args.quick)
    print("\n" + report(results), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # Turn SIGTERM into an exception so every `finally` stops the processes it started.
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    main()
