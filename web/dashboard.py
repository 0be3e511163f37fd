"""Pages: the list of apps, and an app's live view of its latest events."""

from __future__ import annotations

from quart import Blueprint, render_template, request

from web.context import services
from web.core import queries
from web.core.errors import Rejected
from web.core.filters import STATUSES, EventFilter

blueprint = Blueprint("dashboard", __name__)

STATUS_FILTERS = ("all", *STATUSES)


@blueprint.get("/")
async def index() -> str:
    async with services().pool.acquire() as conn:
        summaries = await queries.select_app_summaries(conn)
    return await render_template("index.html", summaries=summaries)


@blueprint.get("/apps/<app_id>")
async def app_page(app_id: str) -> str:
    filters = EventFilter.from_args(request.args)
    settings = services().settings
    async with services().pool.acquire() as conn:
        app = await queries.select_app(conn, app_id)
        if app is None:
            raise Rejected(404, "unknown_app", f"no app with id {app_id!r}")
        entries = await queries.select_log_entries(
            conn, app_id, filters=filters, limit=settings.page_size
        )
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
    )
