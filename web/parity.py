"""Parity across platforms: test sessions side by side, as a page, Markdown, CSV and JSON.

`?session=A&session=B` names 2 to 6 sessions (400 too_few_sessions, too_many_sessions,
invalid_session otherwise); a session with no stored event is 404 unknown_session, its id
in the message and in the error's `sessions`: an empty column would only hide a typo.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from quart import Blueprint, Response, jsonify, render_template, request, url_for

from web.attachments import text_file
from web.context import services
from web.core.apps import require_app
from web.core.errors import Rejected
from web.core.exports import csv_lines
from web.core.filters import EventFilter
from web.core.parity import (
    MAX_SESSION_LENGTH,
    MAX_SESSIONS,
    MIN_SESSIONS,
    NameCounts,
    Parity,
    SessionTally,
    compare,
    read_sessions,
    tally,
)
from web.core.parity_exports import parity_csv_rows, parity_json, parity_markdown
from web.core.queries.base import App, Connection
from web.core.queries.dashboard import select_name_activity
from web.core.queries.parity import (
    RecentSession,
    select_recent_sessions,
    select_session_events,
    select_stored_sessions,
)

blueprint = Blueprint("parity", __name__)

# Each session's properties are read from its newest EVENTS_READ events (issue 18: never
# all of a session's history); its counts per event name, from the rollups, are exact.
EVENTS_READ = 2000
# Distinct event names counted per session at most.
NAMES_READ = 2000
# The picker lists the sessions with events in this recent span, the latest first.
RECENT_SPAN = timedelta(days=7)
RECENT_LISTED = 50


@dataclass(frozen=True)
class Report:
    app: App
    parity: Parity
    generated_at: datetime


async def _tally(conn: Connection, app_id: str, session: str) -> SessionTally:
    activity = await select_name_activity(conn, app_id, EventFilter(session=session), NAMES_READ)
    counts = {item.event_name: NameCounts(item.total, item.invalid) for item in activity}
    events, capped = await select_session_events(conn, app_id, session, EVENTS_READ)
    return tally(session, counts, ((e.event_name, e.containers) for e in events), capped=capped)


async def build_report(conn: Connection, app: App, sessions: list[str]) -> Report:
    """The sessions compared; 404 unknown_session when one has no stored event."""
    stored = await select_stored_sessions(conn, app.id, sessions)
    unknown = [session for session in sessions if session not in stored]
    if unknown:
        raise Rejected(
            404,
            "unknown_session",
            f"no events stored for session {', '.join(unknown)} of app {app.id}",
            {"sessions": unknown},
        )
    tallies = [await _tally(conn, app.id, session) for session in sessions]
    return Report(app, compare(tallies), datetime.now(UTC))


async def _report(app_id: str) -> Report:
    sessions = read_sessions(request.args.getlist("session"))
    async with services().pool.acquire() as conn:
        app = await require_app(conn, app_id)
        return await build_report(conn, app, sessions)


@blueprint.get("/apps/<app_id>/parity")
async def parity_page(app_id: str) -> tuple[str, int]:
    """The picker, and the table once sessions are picked; a refusal shows on the picker."""
    # The picker's free-text field is add_session: app.js drops a GET form's empty fields by
    # name, and an empty one named session would take the ticked sessions with it.
    asked = [*request.args.getlist("session"), *request.args.getlist("add_session")]
    given = [value for value in asked if value.strip()]
    # ?pick= ticks a session in the picker without comparing yet (the coverage page's link).
    ticked = [*given, *request.args.getlist("pick")]
    async with services().pool.acquire() as conn:
        app = await require_app(conn, app_id)
        recent = await select_recent_sessions(
            conn, app.id, datetime.now(UTC) - RECENT_SPAN, RECENT_LISTED
        )
        report, refusal, status = None, None, 200
        if given:
            try:
                report = await build_report(conn, app, read_sessions(given))
            except Rejected as exc:
                refusal, status = exc, exc.status
    html = await render_template(
        "parity.html",
        app=app,
        report=report,
        parity=report.parity if report else None,
        refusal=refusal,
        picker=_picker(recent, ticked),
        chosen=set(ticked),
        events_read=EVENTS_READ,
        min_sessions=MIN_SESSIONS,
        max_sessions=MAX_SESSIONS,
        recent_days=RECENT_SPAN.days,
        args={"session": given},
    )
    return html, status


def _picker(recent: list[RecentSession], given: list[str]) -> list[RecentSession | str]:
    """The recent sessions, then any session asked for that is not among them (by id)."""
    listed = {item.session for item in recent}
    others = (
        s
        for s in given
        if s.strip() and s not in listed and len(s) <= MAX_SESSION_LENGTH and "\x00" not in s
    )
    return [*recent, *list(dict.fromkeys(others))[:MAX_SESSIONS]]


@blueprint.get("/apps/<app_id>/parity.md")
async def parity_markdown_file(app_id: str) -> Response:
    report = await _report(app_id)
    path = url_for("parity.parity_page", app_id=app_id, session=list(report.parity.sessions))
    text = parity_markdown(
        report.parity,
        app_name=report.app.name,
        app_id=report.app.id,
        generated_at=report.generated_at,
        view_url=f"{request.host_url.rstrip('/')}{path}",
        events_read=EVENTS_READ,
    )
    return _download(text, "text/markdown", report, "md")


@blueprint.get("/apps/<app_id>/parity.csv")
async def parity_csv_file(app_id: str) -> Response:
    report = await _report(app_id)
    return _download(csv_lines(parity_csv_rows(report.parity)), "text/csv", report, "csv")


@blueprint.get("/api/apps/<app_id>/parity")
async def parity_api(app_id: str) -> Response:
    report = await _report(app_id)
    return jsonify(
        parity_json(
            report.parity,
            app_id=report.app.id,
            generated_at=report.generated_at,
            events_read=EVENTS_READ,
        )
    )


def _download(text: str, mimetype: str, report: Report, extension: str) -> Response:
    return text_file(text, mimetype, f"{report.app.id}-parity", report.generated_at, extension)
