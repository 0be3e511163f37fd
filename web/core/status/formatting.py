"""Presenting a reading: the page, the CLI and the JSON API format figures with these."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

from web.core.status.records import PipelineStatus


def status_as_dict(status: PipelineStatus) -> dict[str, Any]:
    """The reading as JSON-ready data (`lvd status --json`, GET /api/status)."""
    queue = status.queue
    store = status.store
    web = status.web
    return {
        "taken_at": status.taken_at.isoformat(),
        "queue": None
        if queue is None
        else {
            "waiting": queue.waiting,
            "in_flight": queue.in_flight,
            "delayed": queue.delayed,
            "dramatiq_dead": queue.dead,
            "oldest_waiting_seconds": round(queue.oldest_waiting_seconds, 3),
        },
        "dead_letters_pending": None if store is None else store.dead_letters_pending,
        "workers": [
            {
                "worker_id": w.worker_id,
                "hostname": w.hostname,
                "pid": w.pid,
                "state": w.state,
                "started_at": w.started_at.isoformat(),
                "last_seen": w.last_seen.isoformat(),
                "silent_seconds": round(w.silent_seconds, 3),
                "messages": w.messages,
                "events": w.events,
                "failed": w.failed,
                "events_per_second": round(w.events_per_second, 3),
            }
            for w in status.workers
        ],
        "ingest": None
        if store is None
        else {
            "events_last_minute": store.events_last_minute,
            "invalid_last_minute": store.invalid_last_minute,
            "events_per_second": round(store.events_per_second, 3),
            "invalid_share": None if store.invalid_share is None else round(store.invalid_share, 4),
            "store_delay_seconds": None
            if store.store_delay_seconds is None
            else round(store.store_delay_seconds, 3),
        },
        "database_bytes": None if store is None else store.database_bytes,
        "open_streams": None if web is None else web.open_streams,
        "web_processes": None if web is None else len(web.processes),
        "problems": list(status.problems),
    }


def format_count(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def format_rate(per_second: float | None) -> str:
    if per_second is None:
        return "n/a"
    return f"{per_second:,.1f}/s" if per_second < 100 else f"{per_second:,.0f}/s"


def format_share(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.1f} %"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def format_bytes(size: int | None) -> str:
    if size is None:
        return "n/a"
    if size < 1024:
        return f"{size} B"
    exponent = min(int(math.log(size, 1024)), 4)
    return f"{size / 1024**exponent:.1f} {('B', 'KiB', 'MiB', 'GiB', 'TiB')[exponent]}"


# The formatters by kind, as the page's templates call them: fmt.count(...), fmt.rate(...).
FORMAT = SimpleNamespace(
    count=format_count,
    rate=format_rate,
    share=format_share,
    seconds=format_seconds,
    bytes=format_bytes,
)
