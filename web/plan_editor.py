"""The visual plan editor's routes: edits as htmx fragments, a draft's impact, property stats."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
from quart import Blueprint, Response, jsonify, render_template, request
from werkzeug.datastructures import MultiDict

from web.api_types import refuse_null_characters
from web.context import services
from web.core import plan_editing, plans
from web.core.apps import require_app
from web.core.errors import Rejected
from web.core.filters import EventFilter
from web.core.plan_editing import EditRefused
from web.core.property_stats import property_stats
from web.core.queries.base import Connection
from web.core.queries.events import select_log_entries
from web.core.queries.property_stats import select_recent_payloads
from web.core.validation.naming import CONVENTIONS
from web.core.validation.plan import PlanProblem, check_plan, compile_plan
from web.openapi_plan_editor import (
    DEFAULT_STATS_HOURS,
    MAX_STATS_HOURS,
    PlanImpact,
    PlanStats,
)
from web.plan_pages import IMPACT_HOURS, parse_plan_text, pretty
from web.requests import json_body

blueprint = Blueprint("plan_editor", __name__)

# The formats the form offers (the validator checks them: validate_formats=True).
FORMATS = (
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "uri",
    "uuid",
    "ipv4",
    "ipv6",
    "hostname",
    "regex",
)
# Property statistics read at most this many of the window's newest events, and keep at most
# STATS_PER_EVENT of each name.
STATS_RECENT = 10_000
STATS_PER_EVENT = 200


def field_id(pointer: str, name: str) -> str:
    """A stable element id for one field of one schema, so htmx keeps focus across swaps."""
    digest = hashlib.blake2s(f"{pointer}|{name}".encode(), digest_size=6).hexdigest()
    return f"pe-{digest}"


# Names the editor's templates use to read a document.
EDITOR_HELPERS: dict[str, Any] = {
    "types_of": plan_editing.types_of,
    "enum_text": plan_editing.enum_text,
    "others": plan_editing.others,
    "plan_others": plan_editing.plan_others,
    "CONVENTIONS": CONVENTIONS,
    "FORMATS": FORMATS,
    "pointer": plan_editing.make_pointer,
    "field_id": field_id,
    "pretty": pretty,
    "TYPES": plan_editing.TYPES,
}


async def visual_view(
    app_id: str, document: dict[str, Any], refusal: EditRefused | None = None
) -> Response:
    """The visual editor for this document with its problems; 400 when an edit was refused."""
    html = await render_template(
        "_plan_editor.html",
        app_id=app_id,
        document=document,
        draft_json=orjson.dumps(document).decode(),
        problems=check_plan(document),
        refusal=refusal,
        **EDITOR_HELPERS,
    )
    return Response(html, status=400 if refusal else 200, mimetype="text/html")


async def json_view(
    app_id: str, text: str, problems: list[PlanProblem], status: int = 200
) -> Response:
    html = await render_template(
        "_plan_editor_json.html",
        app_id=app_id,
        editor_text=text,
        problems=problems,
        checked=True,
    )
    return Response(html, status=status, mimetype="text/html")


async def _known_app(app_id: str) -> None:
    async with services().pool.acquire() as conn:
        await require_app(conn, app_id)


async def _draft(app_id: str) -> tuple[MultiDict[str, str], dict[str, Any] | Response]:
    """The form, and the draft it carries as a JSON object; or, when the draft is not one,
    the JSON tab answering 400 with the reason. Checking the plan is left to the view."""
    await _known_app(app_id)
    form = await request.form
    text = form.get("document", "")
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        document = None
    if isinstance(document, dict):
        return form, document
    _, problems = parse_plan_text(text)  # says why: a syntax error, or not an object
    return form, await json_view(app_id, text, problems, status=400)


@blueprint.post("/apps/<app_id>/plan/editor/edit")
async def edit(app_id: str) -> Response:
    """Apply one edit to the draft the form carries and answer the editor re-rendered."""
    form, draft = await _draft(app_id)
    if isinstance(draft, Response):
        return draft
    try:
        edited = plan_editing.apply_edit(draft, form.get("op", ""), form, form.getlist("types"))
    except EditRefused as refused:
        return await visual_view(app_id, draft, refused)
    return await visual_view(app_id, edited)


@blueprint.post("/apps/<app_id>/plan/editor/visual")
async def to_visual(app_id: str) -> Response:
    """The visual tab, from the JSON tab's text (which stays, with why, if it is not a plan
    object)."""
    _, draft = await _draft(app_id)
    return draft if isinstance(draft, Response) else await visual_view(app_id, draft)


@blueprint.post("/apps/<app_id>/plan/editor/json")
async def to_json(app_id: str) -> Response:
    """The JSON tab, showing the draft the visual tab carries."""
    _, draft = await _draft(app_id)
    if isinstance(draft, Response):
        return draft
    return await json_view(app_id, pretty(draft), check_plan(draft))


# ---- what would break -----------------------------------------------------------------------


async def judge_draft(
    conn: Connection, app_id: str, document: Any, filters: EventFilter
) -> PlanImpact:
    """The stored events the filter selects (the newest REVALIDATE_LIMIT) judged against an
    unsaved plan: what would change, by event and rule. Rejected (400) for a bad plan."""
    plans.refuse_problems(document)
    await require_app(conn, app_id)
    entries = await select_log_entries(conn, app_id, filters=filters, limit=plans.REVALIDATE_LIMIT)
    report = plans.revalidate(compile_plan(document, 0), entries)
    counts = report.as_dict()["counts"]
    return {
        "judged": len(entries),
        "capped": len(entries) >= plans.REVALIDATE_LIMIT,
        "limit": plans.REVALIDATE_LIMIT,
        "since": filters.since.isoformat() if filters.since else None,
        "session": filters.session,
        "counts": counts,
        "changes": [cast(Any, change.as_dict()) for change in report.changes()],
    }


def impact_filter(since: Any, session: Any, default_hours: int = 24) -> EventFilter:
    """Events since a time, of a session, or both; without either, the last default_hours."""
    if not isinstance(since, str | None) or not isinstance(session, str | None):
        raise Rejected(400, "invalid_filter", "since and session must be strings")
    found = EventFilter.from_args({"since": since, "session": session})
    if found.since is None and found.session is None:
        return EventFilter(since=datetime.now(UTC) - timedelta(hours=default_hours))
    return found


@blueprint.post("/api/apps/<app_id>/plan/impact")
async def impact_api(app_id: str) -> Response:
    """What an unsaved plan would break or fix among stored events; stores nothing."""
    body = await json_body()
    refuse_null_characters(body)
    filters = impact_filter(body.get("since"), body.get("session"))
    async with services().pool.acquire() as conn:
        await require_app(conn, app_id)
        answer = await judge_draft(conn, app_id, body.get("plan"), filters)
    return jsonify(answer)


@blueprint.post("/apps/<app_id>/plan/editor/impact")
async def impact_fragment(app_id: str) -> Response:
    """The page's "what would break": the draft against the last 1, 6 or 24 hours, or a
    session; a broken draft or window is shown in the fragment (400)."""
    form = await request.form
    hours, session = form.get("hours", "24"), form.get("session", "").strip()
    document, _ = parse_plan_text(form.get("document", ""))
    answer, refusal = None, None
    try:
        if not session and hours not in {str(h) for h in IMPACT_HOURS}:
            raise Rejected(400, "invalid_filter", "hours must be 1, 6 or 24")
        filters = (
            EventFilter.from_args({"session": session})
            if session
            else EventFilter(since=datetime.now(UTC) - timedelta(hours=int(hours)))
        )
        async with services().pool.acquire() as conn:
            answer = await judge_draft(conn, app_id, document, filters)
    except Rejected as refused:
        if refused.status != 400:
            raise
        refusal = refused
    html = await render_template(
        "_plan_impact.html", app_id=app_id, impact=answer, refusal=refusal, hours=hours
    )
    return Response(html, status=400 if refusal else 200, mimetype="text/html")


# ---- property statistics --------------------------------------------------------------------


async def read_stats(app_id: str) -> PlanStats:
    """The statistics of the window the request's `hours` names (default 24); Rejected (400
    invalid_hours) for another value."""
    raw = request.args.get("hours", str(DEFAULT_STATS_HOURS))
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_STATS_HOURS:
        message = f"hours must be a whole number, 1 to {MAX_STATS_HOURS}"
        raise Rejected(400, "invalid_hours", message)
    since = datetime.now(UTC) - timedelta(hours=int(raw))
    async with services().pool.acquire() as conn:
        await require_app(conn, app_id)
        sample = await select_recent_payloads(conn, app_id, since, STATS_PER_EVENT, STATS_RECENT)
    return {
        "since": since.isoformat(),
        "read": sample.read,
        "recent_limit": STATS_RECENT,
        "per_event_limit": STATS_PER_EVENT,
        "events": [cast(Any, stats.as_dict()) for stats in property_stats(sample.payloads)],
    }


@blueprint.get("/api/apps/<app_id>/plan/stats")
async def stats_api(app_id: str) -> Response:
    return jsonify(await read_stats(app_id))


@blueprint.get("/apps/<app_id>/plan/stats")
async def stats_fragment(app_id: str) -> str:
    """Property statistics as the plan page loads them, after the page itself."""
    stats = await read_stats(app_id)
    hours = request.args.get("hours", str(DEFAULT_STATS_HOURS))
    return await render_template("_plan_stats.html", stats=stats, hours=hours)
