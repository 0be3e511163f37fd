"""`make bench`: the pipeline's figures, from one run on this machine, as one table.

Starts its own web and worker processes against a fresh `lvd_bench` database and Redis
database 12 on the PostgreSQL and Redis that `make run` would use, then measures.
"""

from __future__ import annotations

import asyncio
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import psutil
import redis

from bench import validation
from lvd import loadtest
from lvd.devservices.services import DevServices
from web.core.apps import add_app
from web.core.db import drop_database, prepare_database, with_database
from web.core.queries.hygiene import update_app_hygiene_checks

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
APP_ID = "bench"
QUICK = os.environ.get("BENCH_QUICK") == "1"
SUSTAIN_SECONDS = 10 if QUICK else 30
STEP_SECONDS = 5 if QUICK else 10
IDLE_SECONDS = 5 if QUICK else 60
# Requests per second offered to find the ceilings: more than any of them answers.
SATURATING = 6000.0
# One web process: on 2 cores shared with the worker, PostgreSQL, Redis and the load tool,
# a second one adds more contention than capacity (p99 at 1 000/s about 3 times higher).
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "1"))
# The hygiene checks (on by default for every app) cost CPU per event: BENCH_HYGIENE=0
# measures the app with them off, for the comparison.
HYGIENE = os.environ.get("BENCH_HYGIENE", "1") != "0"
# Single-event rates tried, in order, for the highest held with p99 <= 50 ms.
LADDER = (1500, 1750, 2000, 2250, 2500, 3000, 3500, 4000)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def peak_rss_mb(root_pid: int) -> float:
    """Peak resident memory (VmHWM) of a process tree's largest member, in MiB."""
    peaks = []
    for proc in [psutil.Process(root_pid), *psutil.Process(root_pid).children(recursive=True)]:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks, default=0.0)


def tree_rss_mb(root_pid: int) -> float:
    """Resident memory of a process and its children (hypercorn's and Dramatiq's workers)."""
    root = psutil.Process(root_pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


async def load(
    url: str, rate: float, seconds: float, *, batch: int = 1, database_url: str, verify: bool = True
) -> dict[str, Any]:
    report = await loadtest.send_load(
        url, APP_ID, rate, seconds, batch=batch, progress=False, connections=128
    )
    if verify:
        await loadtest.verify_storage(report, database_url, APP_ID, drain_limit=120)
    return report.summary()


def measure_ceiling(
    hypercorn: list[str],
    target: str,
    rate: float,
    env: dict[str, str],
    logs: Path,
    database_url: str,
) -> dict[str, Any]:
    port = free_port()
    log = logs / f"ceiling-{target.rpartition(':')[2]}.log"
    with process([*hypercorn, "--bind", f"127.0.0.1:{port}", target], env, log):
        wait_ready(f"http://127.0.0.1:{port}/")  # any answer below 500 will do
        return asyncio.run(
            load(
                f"http://127.0.0.1:{port}",
                rate,
                STEP_SECONDS,
                database_url=database_url,
                verify=False,
            )
        )


def held(summary: dict[str, Any]) -> bool:
    """p99 <= 50 ms, every request answered 202, every event stored exactly once."""
    return bool(
        summary["latency_ms"]["p99"] <= 50
        and summary["status_counts"] == {"202": summary["requests"]}
        and summary["lost"] == 0
        and summary["doubled"] == 0
    )


async def reset(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("TRUNCATE log_entries, dead_letters")
    finally:
        await conn.close()


@contextmanager
def bench_environment() -> Iterator[tuple[dict[str, str], str, Path]]:
    """PostgreSQL and Redis as `make run` finds them, a fresh lvd_bench database and Redis
    database 12: the environment for the processes, the database URL, the log folder."""
    with DevServices(ROOT / ".lvd") as services:
        endpoints = services.start()
        database_url = with_database(endpoints.database_url, "lvd_bench")
        redis_url = urlunsplit(urlsplit(endpoints.redis_url)._replace(path="/12"))
        asyncio.run(fresh_database(database_url, "Benchmark"))
        redis.Redis.from_url(redis_url).flushdb()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        }
        logs = ROOT / "artifacts" / "bench"
        logs.mkdir(parents=True, exist_ok=True)
        yield env, database_url, logs


@contextmanager
def pipeline(
    env: dict[str, str], logs: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes], subprocess.Popen[bytes]]]:
    """`lvd worker` and `lvd web` running: the web URL, the worker and the web process."""
    port = free_port()
    web_env = {**env, "PORT": str(port), "WEB_CONCURRENCY": str(WEB_WORKERS)}
    url = f"http://127.0.0.1:{port}"
    with (
        process([str(BIN / "lvd"), "worker", "--threads", "8"], env, logs / "worker.log") as worker,
        process([str(BIN / "lvd"), "web"], web_env, logs / "web.log") as web,
    ):
        wait_ready(f"{url}/healthz")
        yield url, worker, web


Row = tuple[str, str]


def main() -> None:
    with bench_environment() as (env, database_url, logs):
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores,"
            f" {psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()},"
            f" web processes {WEB_WORKERS}, 1 worker process;"
            f" hygiene checks {'on' if HYGIENE else 'off'}; everything on this machine",
            flush=True,
        )
        hypercorn = [str(BIN / "hypercorn"), "--worker-class", "uvloop"]
        hypercorn += ["--workers", str(WEB_WORKERS)]
        ceilings = {
            name: measure_ceiling(hypercorn, target, SATURATING, env, logs, database_url)
            for name, target in (
                ("Quart", "bench.ceiling:app"),
                ("plain ASGI", "bench.ceiling:plain_app"),
            )
        }
        rows: list[Row] = []
        with pipeline(env, logs) as (url, worker, web):
            # Each measurement starts from an empty table and prints its rows as it goes.
            measures: list[Callable[[], list[Row]]] = [
                lambda: against_ceilings(url, database_url, ceilings),
                lambda: [at_1000_per_second(url, database_url)],
                lambda: [highest_rate_held(url, database_url)],
                lambda: [in_batches(url, database_url)],
            ]
            for measure in measures:
                asyncio.run(reset(database_url))
                found = measure()
                print(*found, sep="\n", flush=True)
                rows += found
            rows += [after_idle(url, database_url), peak_memory(worker.pid, web.pid)]
        rows += [
            (f"validation, {name}", f"p50 {f['p50_ms']:.3f} ms, p99 {f['p99_ms']:.3f} ms")
            for name, f in validation.run(20_000).items()
        ]
    width = max(len(name) for name, _ in rows)
    print("\n" + "=" * 100)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def against_ceilings(url: str, database_url: str, ceilings: dict[str, Any]) -> list[Row]:
    """Real ingest at the load that saturates the trivial endpoints, and the ratios."""
    real = asyncio.run(load(url, SATURATING, STEP_SECONDS, database_url=database_url))
    rows = [
        (
            f"ceiling: trivial 202 endpoint via {name}, offered 6000/s",
            f"{ceiling['achieved_rate']:.0f} req/s, p99 {ceiling['latency_ms']['p99']} ms",
        )
        for name, ceiling in ceilings.items()
    ]
    rows.append(
        (
            "real ingest, same offered load",
            f"{real['achieved_rate']:.0f} req/s, p99 {real['latency_ms']['p99']} ms,"
            f" lost {real['lost']}, doubled {real['doubled']}",
        )
    )
    rows += [
        (f"real / {name} ceiling", f"{real['achieved_rate'] / ceiling['achieved_rate']:.0%}")
        for name, ceiling in ceilings.items()
    ]
    return rows


def at_1000_per_second(url: str, database_url: str) -> Row:
    at_1000 = asyncio.run(load(url, 1000, SUSTAIN_SECONDS, database_url=database_url))
    return (
        f"1000 events/s for {SUSTAIN_SECONDS} s",
        f"p50 {at_1000['latency_ms']['p50']} ms, p99 {at_1000['latency_ms']['p99']} ms,"
        f" accept->committed p50 {at_1000['queue_to_db_ms']['p50']} ms"
        f" p99 {at_1000['queue_to_db_ms']['p99']} ms, lost {at_1000['lost']},"
        f" doubled {at_1000['doubled']}",
    )


def highest_rate_held(url: str, database_url: str) -> Row:
    """Climb in short steps while p99 <= 50 ms holds, then confirm over SUSTAIN_SECONDS,
    stepping back down if the longer run does not hold."""
    passed: list[int] = []
    for rate in LADDER:
        asyncio.run(reset(database_url))
        step = asyncio.run(load(url, rate, STEP_SECONDS, database_url=database_url))
        print(f"  step {rate}/s: p99 {step['latency_ms']['p99']} ms, held={held(step)}", flush=True)
        if not held(step):
            break
        passed.append(rate)
    for rate in reversed(passed):
        asyncio.run(reset(database_url))
        sustained = asyncio.run(load(url, rate, SUSTAIN_SECONDS, database_url=database_url))
        print(
            f"  {rate}/s for {SUSTAIN_SECONDS} s: p99 {sustained['latency_ms']['p99']} ms,"
            f" held={held(sustained)}",
            flush=True,
        )
        if held(sustained):
            return (
                f"highest single-event rate held {SUSTAIN_SECONDS} s with p99 <= 50 ms",
                f"{rate}/s: p99 {sustained['latency_ms']['p99']} ms,"
                f" queue->db p50 {sustained['queue_to_db_ms']['p50']} ms"
                f" p99 {sustained['queue_to_db_ms']['p99']} ms, lost {sustained['lost']},"
                f" doubled {sustained['doubled']}",
            )
    return (
        f"highest single-event rate held {SUSTAIN_SECONDS} s with p99 <= 50 ms",
        f"below {LADDER[0]}/s",
    )


def in_batches(url: str, database_url: str) -> Row:
    batched = asyncio.run(load(url, 500, STEP_SECONDS, batch=100, database_url=database_url))
    return (
        "batches of 100 events, offered 50 000 events/s",
        f"{batched['events_per_second']:.0f} events/s sent,"
        f" {batched['accepted_per_second']:.0f} accepted,"
        f" {batched['stored_per_second']:.0f} events/s through to the database"
        " (first accepted to last committed),"
        f" p99 {batched['latency_ms']['p99']} ms, lost {batched['lost']},"
        f" answers {batched['status_counts']}",
    )


def after_idle(url: str, database_url: str) -> Row:
    time.sleep(IDLE_SECONDS)
    first = asyncio.run(load(url, 1, 1, database_url=database_url))
    return (
        f"first event after {IDLE_SECONDS} s idle",
        f"response {first['latency_ms']['max']} ms, accept->committed"
        f" {first['queue_to_db_ms']['max']} ms",
    )


def peak_memory(worker_pid: int, web_pid: int) -> Row:
    return (
        "peak memory (largest process)",
        f"worker {peak_rss_mb(worker_pid):.0f} MiB, web {peak_rss_mb(web_pid):.0f} MiB",
    )


async def fresh_database(database_url: str, app_name: str) -> None:
    """The URL's database dropped, created again, migrated, with one app: APP_ID."""
    await drop_database(database_url)
    await prepare_database(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        await add_app(conn, APP_ID, app_name)
        await update_app_hygiene_checks(conn, APP_ID, HYGIENE)
    finally:
        await conn.close()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # Turn SIGTERM into an exception so every `finally` stops the processes it started.
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    main()
