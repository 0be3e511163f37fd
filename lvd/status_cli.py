"""`lvd status` (the pipeline's figures, read from Redis and PostgreSQL directly), and the
metrics directory `lvd web` prepares for prometheus_client's multiprocess mode."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

import asyncpg
import orjson

from web.core.pipeline_status import (
    READ_TIMEOUT_SECONDS,
    PipelineStatus,
    describe_error,
    format_bytes,
    format_count,
    format_rate,
    format_seconds,
    format_share,
    gather_status,
    status_as_dict,
    status_redis,
)
from web.core.settings import Settings

METRICS_DIR_PREFIX = "lvd-metrics-"
WORKER_COLUMNS = (
    *("STATE", "HOST", "PID", "STARTED (UTC)", "LAST HEARTBEAT"),
    *("MESSAGES", "EVENTS", "FAILED", "THROUGHPUT"),
)


def print_status(*, as_json: bool) -> int:
    """Print the figures; exit status 1 when Redis or PostgreSQL could not be read."""
    status = asyncio.run(read_status(Settings.from_env()))
    if as_json:
        print(orjson.dumps(status_as_dict(status), option=orjson.OPT_INDENT_2).decode())
    else:
        print(format_status(status))
    return 1 if status.problems else 0


async def read_status(settings: Settings) -> PipelineStatus:
    client = status_redis(settings.redis_url, timeout=READ_TIMEOUT_SECONDS)
    gone_after = settings.worker_gone_seconds
    try:
        try:
            conn = await asyncpg.connect(settings.database_url, timeout=READ_TIMEOUT_SECONDS)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            return await gather_status(
                client, None, gone_after=gone_after, database_problem=describe_error(exc)
            )
        try:
            return await gather_status(client, conn, gone_after=gone_after)
        finally:
            await conn.close()
    finally:
        await client.aclose()


def format_status(status: PipelineStatus) -> str:
    """The page's figures as plain text, with the page's labels and formatting."""
    queue, store, web = status.queue, status.store, status.web
    lines = [f"Pipeline status at {status.taken_at:%Y-%m-%d %H:%M:%S} UTC", "", "Queue"]
    lines += _pairs(
        ("Messages waiting", format_count(queue.waiting if queue else None)),
        ("In flight", format_count(queue.in_flight if queue else None)),
        ("Retrying", format_count(queue.delayed if queue else None)),
        ("Worker lag", format_seconds(queue.oldest_waiting_seconds if queue else None)),
        ("Dramatiq dead set", format_count(queue.dead if queue else None)),
        ("Dead letters pending", format_count(store.dead_letters_pending if store else None)),
    )
    lines += ["", "Ingest and storage"]
    share = format_share(store.invalid_share if store else None)
    if store:
        share += (
            f" ({format_count(store.invalid_last_minute)}"
            f" of {format_count(store.events_last_minute)} in the last minute)"
        )
    streams = format_count(web.open_streams if web else None)
    if web:
        count = len(web.processes)
        streams += f" (across {count} web process{'' if count == 1 else 'es'})"
    lines += _pairs(
        ("Ingest rate", format_rate(store.events_per_second if store else None)),
        ("Share invalid", share),
        ("Newest event stored after", format_seconds(store.store_delay_seconds if store else None)),
        ("Database size", format_bytes(store.database_bytes if store else None)),
        ("Open dashboard streams", streams),
    )
    lines += [
        "",
        f"Workers: {status.alive_workers} alive,"
        f" {format_rate(status.workers_events_per_second)} in all",
    ]
    if status.workers:
        rows = [WORKER_COLUMNS]
        rows += [
            (
                w.state,
                w.hostname,
                str(w.pid),
                f"{w.started_at:%Y-%m-%d %H:%M:%S}",
                f"{format_seconds(w.silent_seconds)} ago",
                format_count(w.messages),
                format_count(w.events),
                format_count(w.failed),
                format_rate(w.events_per_second),
            )
            for w in status.workers
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines += [
            "  " + "  ".join(c.ljust(n) for c, n in zip(row, widths, strict=True)).rstrip()
            for row in rows
        ]
    elif queue:
        lines.append("  No worker reported in the last 10 minutes: start one with `lvd worker`.")
    if status.problems:
        lines += ["", "Problems (their figures show n/a)"]
        lines += [f"  {problem}" for problem in status.problems]
    return "\n".join(lines)


def _pairs(*pairs: tuple[str, str]) -> list[str]:
    width = max(len(label) for label, _ in pairs)
    return [f"  {label.ljust(width)}  {value}" for label, value in pairs]


def prepare_metrics_dir(configured: str | None) -> Path:
    """prometheus_client's multiprocess directory for a web server, without an earlier run's files.

    Counters summed from files a previous run left would start from its totals, so the
    directory is emptied at start, as prometheus_client requires. A configured directory
    (PROMETHEUS_MULTIPROC_DIR) loses its *.db files; otherwise each server gets its own
    temporary directory named after this process id (which the exec'd hypercorn keeps), and
    directories of servers no longer running are removed.
    """
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        return path
    root = Path(tempfile.gettempdir())
    for old in root.glob(f"{METRICS_DIR_PREFIX}*"):
        pid = old.name.removeprefix(METRICS_DIR_PREFIX)
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    path = root / f"{METRICS_DIR_PREFIX}{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700)
    return path


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
