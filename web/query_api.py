"""The query API test suites use: list, count, reset and wait for an app's stored events."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any, NotRequired, cast

from pydantic import Field
from quart import Blueprint, Response, jsonify, request
from typing_extensions import TypedDict

from web.api_types import Count, EventStatus, Timestamp
from web.context import services
from web.core.apps import require_app
from web.core.errors import Rejected
from web.core.filters import STATUSES, EventFilter
from web.core.queries.base import LogEntry
from web.core.queries.events import delete_log_entries, select_event_counts, select_log_entries
from web.core.validation.verdict import Issue
from web.security import refuse_other_sites

blueprint = Blueprint("query_api", __name__)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_WAIT_COUNT = 1000
DEFAULT_WAIT_SECONDS = 10.0
# A long poll holds a subscription and a request slot: bounded, and well under Quart's
# 60 s response timeout plus what a client's read timeout usually allows.
MAX_WAIT_SECONDS = 60.0


blueprint.before_request(refuse_other_sites)


class StoredEvent(TypedDict):
    """An event as stored: its verdict, its payload as sent, its session and times."""

    event_id: str
    event_name: str | None
    status: EventStatus
    errors: list[Issue]
    payload: Annotated[dict[str, Any], Field(description="The event as it was sent")]
    plan_version: int | None
    session: str | None
    received_at: Timestamp
    created_at: Timestamp


class EventPage(TypedDict):
    """A page of an app's stored events, newest first."""

    events: list[StoredEvent]
    next_cursor: Annotated[
        str | None,
        Field(description="Pass as ?cursor= for the next (older) page; null at the end"),
    ]
    searched_since: NotRequired[
        Annotated[
            Timestamp,
            Field(
                description="A text search without `since` covered events from here on;"
                " its next_cursor keeps that start for the following pages"
            ),
        ]
    ]


class StatusCounts(TypedDict):
    """Events by verdict."""

    valid: Count
    invalid: Count


class NameCounts(TypedDict):
    """One event name's events by verdict."""

    event_name: str | None
    total: Count
    valid: Count
    invalid: Count


class Summary(TypedDict):
    """Counts of the matching events by verdict and by event name (most first)."""

    total: Count
    by_status: StatusCounts
    by_event_name: list[NameCounts]


class WaitResult(TypedDict):
    """The matching events, newest first; `reached` says whether `wanted` were found."""

    reached: bool
    count: Count
    wanted: Count
    events: list[StoredEvent]


class ResetResult(TypedDict):
    """How many events were deleted, and whose session (null: all the app's)."""

    deleted: Count
    session: str | None


@blueprint.get("/api/logs/<app_id>")
async def list_events(app_id: str) -> Response:
    asked = EventFilter.from_args(request.args)
    before_id, searched_since = _cursor()
    # A text search without `since` covers the last hour; the answer says from when, and
    # its cursor carries that start, so the next pages cover the same window.
    if searched_since is not None and asked.text and asked.since is None:
        filters = replace(asked, since=searched_since)
    else:
        filters = asked.bounded(datetime.now(UTC))
    limit = _int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    async with services().pool.acquire() as conn:
        await require_app(conn, app_id)
        # One row past the page says whether there is a next one.
        entries = await select_log_entries(
            conn, app_id, filters=filters, before_id=before_id, limit=limit + 1
        )
    page = entries[:limit]
    bounded_since = filters.since if filters.since != asked.since else None
    next_cursor = None
    if len(entries) > limit:
        next_cursor = _next_cursor(page[-1].id, bounded_since)
    answer: EventPage = {
        "events": [event_as_json(e) for e in page],
        "next_cursor": next_cursor,
    }
    if bounded_since is not None:
        answer["searched_since"] = bounded_since.isoformat()
    return jsonify(answer)


@blueprint.get("/api/logs/<app_id>/summary")
async def summary(app_id: str) -> Response:
    filters = EventFilter.from_args(request.args)
    async with services().pool.acquire() as conn:
        await require_app(conn, app_id)
        counts = await select_event_counts(conn, app_id, filters=filters)
    by_status = Counter({status: 0 for status in STATUSES})
    by_name: dict[str | None, dict[str, int]] = {}
    for row in counts:
        by_status[row.status] += row.count
        named = by_name.setdefault(row.event_name, {"total": 0, **dict.fromkeys(STATUSES, 0)})
        named["total"] += row.count
        named[row.status] += row.count
    answer: Summary = {
        "total": sum(by_status.values()),
        "by_status": {"valid": by_status["valid"], "invalid": by_status["invalid"]},
        "by_event_name": [
            {"event_name": name, **numbers}  # type: ignore[typeddict-item]
            for name, numbers in sorted(
                by_name.items(), key=lambda item: (-item[1]["total"], item[0] or "")
            )
        ],
    }
    return jsonify(answer)


@blueprint.delete("/api/logs/<app_id>")
async def reset(app_id: str) -> Response:
    session = EventFilter.from_args({"session": request.args.get("session")}).session
    async with services().pool.acquire() as conn:
        await require_app(conn, app_id)
        deleted = await delete_log_entries(conn, app_id, session)
    answer: ResetResult = {"deleted": deleted, "session": session}
    return jsonify(answer)


@blueprint.get("/api/logs/<app_id>/wait")
async def wait(app_id: str) -> Response:
    """Answer once `count` matching events are stored, or at the timeout with what there is."""
    filters = EventFilter.from_args(request.args)
    count = _int_arg("count", 1, 1, MAX_WAIT_COUNT)
    timeout = _seconds_arg("timeout", DEFAULT_WAIT_SECONDS, MAX_WAIT_SECONDS)
    svc = services()
    async with svc.pool.acquire() as conn:
        await require_app(conn, app_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # Subscribe before reading what is stored: a row committed in between is then in the
    # queue as well as (perhaps) in the read, and the id check counts it once. A client that
    # disconnects cancels this handler, and leaving the block releases the subscription.
    async with svc.hub.subscribe(app_id, filters) as subscription:
        found = {entry.id: entry for entry in await _stored(app_id, filters, count)}
        while len(found) < count:
            if subscription.overflowed.is_set():
                # The hub dropped rows for us; what it dropped is in the database.
                subscription.overflowed.clear()
                found.update((e.id, e) for e in await _stored(app_id, filters, count))
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                entry = await asyncio.wait_for(subscription.queue.get(), remaining)
            except TimeoutError:
                break
            found[entry.id] = entry
    events = sorted(found.values(), key=lambda e: e.id, reverse=True)[:count]
    answer: WaitResult = {
        "reached": len(events) >= count,
        "count": len(events),
        "wanted": count,
        "events": [event_as_json(e) for e in events],
    }
    return jsonify(answer)


def event_as_json(entry: LogEntry) -> StoredEvent:
    return {
        "event_id": entry.event_id,
        "event_name": entry.event_name,
        "status": cast(EventStatus, entry.status),  # the column allows these two only
        "errors": cast(list[Issue], entry.errors),  # stored as each Issue's fields
        "payload": entry.payload,
        "plan_version": entry.plan_version,
        "session": entry.session,
        "received_at": entry.received_at.isoformat(),
        "created_at": entry.created_at.isoformat(),
    }


async def _stored(app_id: str, filters: EventFilter, count: int) -> list[LogEntry]:
    async with services().pool.acquire() as conn:
        return await select_log_entries(conn, app_id, filters=filters, limit=count)


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise Rejected(400, "invalid_filter", f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def _seconds_arg(name: str, default: float, high: float) -> float:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 <= value <= high:  # also refuses NaN
        raise Rejected(
            400, "invalid_filter", f"{name} must be a number of seconds from 0 to {high:g}"
        )
    return value


def _cursor() -> tuple[int | None, datetime | None]:
    """The opaque next_cursor of the previous page: events older than its row id come next,
    within the start a bounded text search had (`<id>` or `<id>s<start in microseconds>`)."""
    raw = request.args.get("cursor")
    if raw is None or raw == "":
        return None, None
    row, _, start = raw.partition("s")
    refused = Rejected(400, "invalid_cursor", "cursor must be a next_cursor this API returned")
    parts = (row, start or "0")
    if not all(part.isascii() and part.isdigit() and len(part) <= 19 for part in parts):
        raise refused
    if int(row) < 1:  # row 0 names nothing older
        raise refused
    try:
        since = datetime.fromtimestamp(int(start) / 1_000_000, UTC) if start else None
    except (OverflowError, ValueError, OSError):
        raise refused from None
    return int(row), since


def _next_cursor(row_id: int, searched_since: datetime | None) -> str:
    if searched_since is None:
        return str(row_id)
    return f"{row_id}s{round(searched_since.timestamp() * 1_000_000)}"
