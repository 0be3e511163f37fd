"""Pages: the list of apps, and an app's live view: tiles, filters, rows, older pages."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from quart import Blueprint, render_template, request

from web.context import services
from web.core.apps import require_app
from web.core.errors import Rejected
from web.core.filters import STATUSES, EventFilter
from web.core.insights import TILE_MINUTES, TOP_FAILING, Tiles, build_tiles
from web.core.queries.apps import select_app_summaries
from web.core.queries.base import Connection
from web.core.queries.dashboard import (
    select_known_values,
    select_minute_counts,
    select_top_failing_events,
)
from web.core.queries.events import select_log_entries
from web.core.queries.plans import select_plan_version

blueprint = Blueprint("dashboard", __name__)

STATUS_FILTERS = ("all", *STATUSES)
# Rows the page keeps at most once someone pages back (the live list keeps page_size).
ROW_CAP_PAGES = 10
# Newest events read for the filter form's suggestions (event names and error rules).
SUGGESTION_SCAN = 2000
# Links that set the time range to the last so long (as absolute times: the link stays true).
WIDER_SEARCHES = (
    ("24 hours", timedelta(hours=24)),
    ("7 days", timedelta(days=7)),
    ("30 days", timedelta(days=30)),
)
QUICK_RANGES = (
    ("last 15 min", timedelta(minutes=15)),
    ("last hour", timedelta(hours=1)),
    ("last 24 h", timedelta(hours=24)),
)


@blueprint.get("/")
async def index() -> str:
    async with services().pool.acquire() as conn:
        summaries = await select_app_summaries(conn)
    return await render_template("index.html", summaries=summaries)


@blueprint.get("/apps/<app_id>")
async def app_page(app_id: str) -> str:
    asked = EventFilter.from_args(request.args)
    settings = services().settings
    now = datetime.now(UTC)
    # The start a text search got is written into the form, links and stream like any other.
    filters = asked.bounded(now)
    async with services().pool.acquire() as conn:
        app = await require_app(conn, app_id)
        entries = await select_log_entries(
            conn, app_id, filters=filters, limit=settings.page_size + 1
        )
        known = await select_known_values(conn, app_id, SUGGESTION_SCAN)
        plan = await select_plan_version(conn, app_id) if app.plan_version else None
        tiles = await read_tiles(conn, app_id, now)
    more, entries = len(entries) > settings.page_size, entries[: settings.page_size]
    planned = list((plan.document.get("events") or {}) if plan else [])
    # Stamped after the queries, just before the page goes out: the browser pairs it with
    # the moment the first byte arrived to learn how far its clock is from ours.
    rendered_at = datetime.now(UTC)
    return await render_template(
        "app.html",
        app=app,
        entries=entries,
        filters=filters,
        status=filters.status or "all",
        status_filters=STATUS_FILTERS,
        # The stream starts after the newest row shown, so nothing falls between the two.
        after_id=entries[0].id if entries else 0,
        page_size=settings.page_size,
        row_cap=settings.page_size * ROW_CAP_PAGES,
        more=more,
        tiles=tiles,
        name_suggestions=sorted(set(planned) | set(known.event_names)),
        rule_suggestions=known.rules,
        since_value=iso_utc(filters.since),
        until_value=iso_utc(filters.until),
        quick_ranges=[
            (label, replace(filters, since=now - span, until=None)) for label, span in QUICK_RANGES
        ],
        # A search bounded here says what it covered, and how to search further back.
        search_bounded=filters is not asked,
        wider_searches=[
            (label, replace(filters, since=(filters.until or now) - span))
            for label, span in WIDER_SEARCHES
        ],
        server_now_ms=int(rendered_at.timestamp() * 1000),
    )


@blueprint.get("/apps/<app_id>/rows")
async def rows_fragment(app_id: str) -> str:
    """A page of older rows (before the ?before= row id) for the live view's "Older events"."""
    filters = EventFilter.from_args(request.args)
    before = request.args.get("before", "")
    if not before.isdigit():
        raise Rejected(400, "invalid_cursor", "before must be a row id")
    page_size = services().settings.page_size
    async with services().pool.acquire() as conn:
        app = await require_app(conn, app_id)
        entries = await select_log_entries(
            conn, app_id, filters=filters, before_id=int(before), limit=page_size + 1
        )
    return await render_template(
        "_older_rows.html",
        app=app,
        entries=entries[:page_size],
        more=len(entries) > page_size,
        filters=filters,
        row_cap=page_size * ROW_CAP_PAGES,
    )


@blueprint.get("/apps/<app_id>/tiles")
async def tiles_fragment(app_id: str) -> str:
    async with services().pool.acquire() as conn:
        app = await require_app(conn, app_id)
        tiles = await read_tiles(conn, app_id, datetime.now(UTC))
    return await render_template("_tiles.html", app=app, tiles=tiles)


async def read_tiles(conn: Connection, app_id: str, now: datetime) -> Tiles:
    since = now - timedelta(minutes=TILE_MINUTES)
    minutes = await select_minute_counts(conn, app_id, since)
    top = await select_top_failing_events(conn, app_id, since, TOP_FAILING)
    return build_tiles(minutes, top, since=since)


def iso_utc(moment: datetime | None) -> str:
    """A time as the filter form shows it: ISO 8601 in UTC, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""
