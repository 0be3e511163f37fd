"""Coverage: which planned events a test session or time range produced; a QA sign-off."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from quart import Blueprint, Response, render_template, request, url_for

from web.attachments import text_file
from web.context import services
from web.core.apps import require_app
from web.core.exports import ScenarioRunLine, coverage_csv_rows, coverage_markdown, csv_lines
from web.core.filters import EventFilter
from web.core.insights import Coverage, build_coverage
from web.core.queries.base import App
from web.core.queries.dashboard import select_name_activity
from web.core.queries.plans import select_plan_version
from web.dashboard import iso_utc
from web.scenario_runs import session_runs

blueprint = Blueprint("coverage", __name__)

# Without a session or a time range, coverage looks at this much recent traffic.
DEFAULT_SPAN = timedelta(hours=24)
# Distinct event names read at most: more than any plan has.
NAMES_READ = 2000


@dataclass(frozen=True)
class Scope:
    filters: EventFilter  # session, since and until only
    label: str
    defaulted: bool  # neither a session nor a range was given


@dataclass(frozen=True)
class Report:
    app: App
    scope: Scope
    coverage: Coverage
    plan_version: int | None
    generated_at: datetime
    runs: list[ScenarioRunLine]  # the session's scenario runs (none without a session)


def read_scope(args: Mapping[str, Any], now: datetime) -> Scope:
    given = EventFilter.from_args(args)
    filters = EventFilter(session=given.session, since=given.since, until=given.until)
    defaulted = filters.is_empty
    if defaulted:
        filters = EventFilter(since=now - DEFAULT_SPAN)
    parts = []
    if filters.session:
        parts.append(f"test session {filters.session}")
    if filters.since:
        parts.append(f"from {_utc(filters.since)}")
    if filters.until:
        parts.append(f"until {_utc(filters.until)}")
    label = ", ".join(parts)
    return Scope(filters, f"last 24 hours ({label})" if defaulted else label, defaulted)


async def build_report(app_id: str) -> Report:
    now = datetime.now(UTC)
    scope = read_scope(request.args, now)
    async with services().pool.acquire() as conn:
        app = await require_app(conn, app_id)
        plan = await select_plan_version(conn, app_id) if app.plan_version else None
        activity = await select_name_activity(conn, app_id, scope.filters, NAMES_READ)
        session = scope.filters.session
        runs = await session_runs(conn, app_id, session) if session else []
    events = plan.document.get("events") if plan and isinstance(plan.document, dict) else None
    planned = list(events) if isinstance(events, dict) else []
    coverage = build_coverage(planned, activity)
    return Report(app, scope, coverage, plan.version if plan else None, now, runs)


@blueprint.get("/apps/<app_id>/coverage")
async def coverage_page(app_id: str) -> str:
    report = await build_report(app_id)
    filters = report.scope.filters
    return await render_template(
        "coverage.html",
        app=report.app,
        report=report,
        coverage=report.coverage,
        scope=report.scope,
        args=filters.query_args(),
        since_value=iso_utc(filters.since) if not report.scope.defaulted else "",
        until_value=iso_utc(filters.until),
    )


@blueprint.get("/apps/<app_id>/coverage.md")
async def coverage_markdown_file(app_id: str) -> Response:
    report = await build_report(app_id)
    text = coverage_markdown(
        report.coverage,
        app_name=report.app.name,
        app_id=report.app.id,
        scope=report.scope.label,
        plan_version=report.plan_version,
        generated_at=report.generated_at,
        view_url=_view_url(report),
        runs=report.runs,
    )
    return _download(text, "text/markdown", report, "md")


@blueprint.get("/apps/<app_id>/coverage.csv")
async def coverage_csv_file(app_id: str) -> Response:
    report = await build_report(app_id)
    return _download(
        csv_lines(coverage_csv_rows(report.coverage, report.runs)), "text/csv", report, "csv"
    )


def _download(text: str, mimetype: str, report: Report, extension: str) -> Response:
    stem = f"{report.app.id}-coverage"
    return text_file(text, mimetype, stem, report.generated_at, extension)


def _view_url(report: Report) -> str:
    args: dict[str, Any] = report.scope.filters.query_args()
    path = url_for("coverage.coverage_page", app_id=report.app.id, **args)
    return f"{request.host_url.rstrip('/')}{path}"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
