"""The plan page: events, an editor checked on the server, history, draft, re-validate."""

from __future__ import annotations

from typing import Any

import orjson
from quart import Blueprint, Response, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response as WerkzeugResponse

from web.context import services
from web.core import plans
from web.core.apps import require_app
from web.core.queries.events import select_log_entries, select_payload_samples
from web.core.queries.plans import select_plan_version, select_plan_versions
from web.core.validation.plan import PlanProblem, check_plan
from web.plans import DRAFT_SAMPLES_PER_EVENT, require_version

blueprint = Blueprint("plan_pages", __name__)

# The windows "what would break" offers, in hours (web/plan_editor.py judges them).
IMPACT_HOURS = (1, 6, 24)

EMPTY_PLAN: dict[str, Any] = {"events": {}, "allow_unplanned": False, "naming": None}


def pretty(document: Any) -> str:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()


@blueprint.get("/apps/<app_id>/plan")
async def plan_page(app_id: str) -> str:
    draft = request.args.get("draft") == "1"
    async with services().pool.acquire() as conn:
        app = await require_app(conn, app_id)
        versions = await select_plan_versions(conn, app_id)
        samples = (
            await select_payload_samples(conn, app_id, DRAFT_SAMPLES_PER_EVENT) if draft else {}
        )
    current = next((v for v in versions if v.version == app.plan_version), None)
    document = current.document if current else EMPTY_PLAN
    editor_text = pretty(plans.draft_plan(samples) if draft else document)
    return await render_template(
        "plan.html",
        app=app,
        current=current,
        events=summarise_events(document),
        editor_text=editor_text,
        draft=draft,
        versions=versions,
        problems=[],
        impact_hours=IMPACT_HOURS,
    )


@blueprint.post("/apps/<app_id>/plan")
async def save_plan_form(app_id: str) -> Response | WerkzeugResponse:
    form = await request.form
    text = form.get("document", "")
    document, problems = parse_plan_text(text)
    if not problems:
        async with services().pool.acquire() as conn:
            await plans.save_plan(conn, app_id, document)
        services().apps.forget(app_id)
        return redirect(url_for("plan_pages.plan_page", app_id=app_id), 303)
    async with services().pool.acquire() as conn:
        app = await require_app(conn, app_id)
        versions = await select_plan_versions(conn, app_id)
    current = next((v for v in versions if v.version == app.plan_version), None)
    html = await render_template(
        "plan.html",
        app=app,
        current=current,
        events=summarise_events(current.document if current else EMPTY_PLAN),
        editor_text=text,
        draft=False,
        versions=versions,
        problems=problems,
        impact_hours=IMPACT_HOURS,
    )
    return Response(html, status=400, mimetype="text/html")


@blueprint.post("/apps/<app_id>/plan/check")
async def check_fragment(app_id: str) -> str:
    """The editor's inline problems, as an htmx fragment."""
    async with services().pool.acquire() as conn:
        await require_app(conn, app_id)
    form = await request.form
    _, problems = parse_plan_text(form.get("document", ""))
    return await render_template("_plan_problems.html", problems=problems, checked=True)


@blueprint.get("/apps/<app_id>/plan/versions/<int:version>/diff")
async def diff_fragment(app_id: str, version: int) -> str:
    async with services().pool.acquire() as conn:
        new = await require_version(conn, app_id, version)
        old = await select_plan_version(conn, app_id, version - 1) if version > 1 else None
    diff = plans.diff_plans(old.document if old else {}, new.document)
    return await render_template("_plan_diff.html", diff=diff, old=old, new=new)


@blueprint.post("/apps/<app_id>/plan/revalidate")
async def revalidate_fragment(app_id: str) -> str:
    form = await request.form
    raw_version = form.get("version", "")
    version = int(raw_version) if raw_version.isdigit() else None
    async with services().pool.acquire() as conn:
        saved = await require_version(conn, app_id, version)
        entries = await select_log_entries(conn, app_id, limit=plans.REVALIDATE_LIMIT)
    report = plans.revalidate(plans.compile_version(saved), entries)
    return await render_template("_revalidation.html", report=report.as_dict(), app_id=app_id)


def parse_plan_text(text: str) -> tuple[Any, list[PlanProblem]]:
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return None, [PlanProblem("", f"not valid JSON: {exc}")]
    return document, check_plan(document)


def summarise_events(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Per planned event: its properties with type, whether required, and their other rules."""
    summary = []
    for name, schema in sorted((document.get("events") or {}).items()):
        schema = schema if isinstance(schema, dict) else {}
        required = set(schema.get("required") or [])
        properties = []
        for prop, rules in (schema.get("properties") or {}).items():
            rules = rules if isinstance(rules, dict) else {}
            kind = rules.get("type", ("$ref" in rules and "see " + str(rules["$ref"])) or "any")
            other = {k: v for k, v in rules.items() if k not in ("type", "description")}
            properties.append(
                {
                    "name": prop,
                    "type": kind if isinstance(kind, str) else " | ".join(map(str, kind)),
                    "required": prop in required,
                    "rules": ", ".join(
                        f"{k}: {orjson.dumps(v).decode()}" for k, v in other.items()
                    ),
                    "description": rules.get("description", ""),
                }
            )
        for prop in sorted(required - {p["name"] for p in properties}):
            properties.append(
                {"name": prop, "type": "any", "required": True, "rules": "", "description": ""}
            )
        summary.append({"name": name, "properties": properties})
    return summary
