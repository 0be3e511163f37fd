"""One event in full: payload with failing paths marked, verdict, schema, times, cURL replay."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quart import Blueprint, Response, render_template, request

from web.context import services
from web.core.apps import require_app
from web.core.errors import Rejected
from web.core.payloads import (
    JsonLine,
    curl_command,
    findings_by_pointer,
    json_lines,
    schema_findings,
)
from web.core.queries.base import PlanVersion
from web.core.queries.events import select_log_entry
from web.core.queries.plans import select_plan_version

blueprint = Blueprint("detail", __name__)


@dataclass(frozen=True)
class SchemaExcerpt:
    version: int
    planned: bool  # the event's name is in that plan version
    lines: list[JsonLine]
    common_lines: list[JsonLine]


@blueprint.get("/apps/<app_id>/events/<int:entry_id>")
async def event_detail(app_id: str, entry_id: int) -> Response:
    """The detail as an htmx fragment for the live view's panel, or as a page of its own."""
    async with services().pool.acquire() as conn:
        app = await require_app(conn, app_id)
        entry = await select_log_entry(conn, app_id, entry_id)
        if entry is None:
            raise Rejected(404, "unknown_event", f"app {app_id!r} has no event {entry_id}")
        # The version the event was judged against, not the current one.
        plan = (
            await select_plan_version(conn, app_id, entry.plan_version)
            if entry.plan_version is not None
            else None
        )
    findings = findings_by_pointer(entry.errors)
    context: dict[str, Any] = {
        "app": app,
        "entry": entry,
        "errors": [e for e in entry.errors if e.get("severity") != "warning"],
        "warnings": [e for e in entry.errors if e.get("severity") == "warning"],
        "payload_lines": json_lines(entry.payload, findings),
        "schema": _excerpt(plan, entry.event_name, findings),
        "stored_after_ms": (entry.created_at - entry.received_at).total_seconds() * 1000,
        "curl": curl_command(
            f"{request.host_url}api/logs/{app_id}",
            entry.payload,
            session=entry.session,
            write_key=app.write_key if app.require_write_key else None,
        ),
    }
    panel = request.headers.get("HX-Request") == "true"
    html = await render_template(
        "_event_detail.html" if panel else "event.html", panel=panel, **context
    )
    response = Response(html, mimetype="text/html")
    response.headers["Vary"] = "HX-Request"
    return response


def _excerpt(
    plan: PlanVersion | None, name: str | None, findings: dict[str, Any]
) -> SchemaExcerpt | None:
    if plan is None:
        return None
    document = plan.document if isinstance(plan.document, dict) else {}
    events = document.get("events") if isinstance(document.get("events"), dict) else {}
    schema = events.get(name) if name is not None and events else None
    common = document.get("common")
    return SchemaExcerpt(
        version=plan.version,
        planned=schema is not None,
        lines=json_lines(schema, schema_findings(schema, findings)) if schema is not None else [],
        common_lines=(
            json_lines(common, schema_findings(common, findings)) if common is not None else []
        ),
    )
