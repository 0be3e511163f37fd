"""Tracking plan API: versions, diff, check, draft from traffic, re-validate."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify, request

from web.context import services
from web.core import plans
from web.core.apps import require_app
from web.core.errors import Rejected
from web.core.filters import STATUSES, EventFilter
from web.core.queries.base import Connection, PlanVersion
from web.core.queries.events import select_log_entries, select_payload_samples
from web.core.queries.plans import select_plan_version, select_plan_versions
from web.core.validation.plan import check_plan
from web.requests import json_body

blueprint = Blueprint("plans", __name__)

# Stored events per event name the draft reads at most.
DRAFT_SAMPLES_PER_EVENT = 200


def version_as_json(saved: PlanVersion) -> dict[str, Any]:
    return {
        "app_id": saved.app_id,
        "version": saved.version,
        "created_at": saved.created_at.isoformat(),
        "plan": saved.document,
    }


async def require_version(conn: Connection, app_id: str, version: int | None) -> PlanVersion:
    await require_app(conn, app_id)
    saved = await select_plan_version(conn, app_id, version)
    if saved is None:
        which = f"version {version}" if version else "plan yet"
        raise Rejected(404, "unknown_plan_version", f"app {app_id!r} has no {which}")
    return saved


@blueprint.put("/api/apps/<app_id>/plan")
async def put_plan(app_id: str) -> Response:
    document = await json_body()
    svc = services()
    async with svc.pool.acquire() as conn:
        saved = await plans.save_plan(conn, app_id, document)
    # This process applies it at once; the others hear of it through NOTIFY.
    svc.apps.forget(app_id)
    return jsonify(version_as_json(saved))


@blueprint.get("/api/apps/<app_id>/plan")
async def get_plan(app_id: str) -> Response:
    async with services().pool.acquire() as conn:
        saved = await require_version(conn, app_id, None)
    return jsonify(version_as_json(saved))


@blueprint.get("/api/apps/<app_id>/plan/versions")
async def list_versions(app_id: str) -> Response:
    async with services().pool.acquire() as conn:
        app = await require_app(conn, app_id)
        versions = await select_plan_versions(conn, app_id)
    return jsonify(
        {
            "current": app.plan_version,
            "versions": [
                {
                    "version": v.version,
                    "created_at": v.created_at.isoformat(),
                    "events": len(v.document.get("events") or {}),
                }
                for v in versions
            ],
        }
    )


@blueprint.get("/api/apps/<app_id>/plan/versions/<int:version>")
async def get_version(app_id: str, version: int) -> Response:
    async with services().pool.acquire() as conn:
        saved = await require_version(conn, app_id, version)
    return jsonify(version_as_json(saved))


@blueprint.get("/api/apps/<app_id>/plan/diff")
async def diff(app_id: str) -> Response:
    old_version, new_version = _int_arg("from"), _int_arg("to")
    async with services().pool.acquire() as conn:
        new = await require_version(conn, app_id, new_version)
        old = await require_version(conn, app_id, old_version or max(new.version - 1, 1))
    return jsonify(
        {
            "from": old.version,
            "to": new.version,
            **plans.diff_plans(old.document, new.document).as_dict(),
        }
    )


@blueprint.post("/api/apps/<app_id>/plan/check")
async def check(app_id: str) -> Response:
    """Check a plan without saving it (the editor calls this as the user types)."""
    async with services().pool.acquire() as conn:
        await require_app(conn, app_id)
    document = await json_body()
    problems = check_plan(document)
    return jsonify({"ok": not problems, "problems": [p.as_dict() for p in problems]})


@blueprint.get("/api/apps/<app_id>/plan/draft")
async def draft(app_id: str) -> Response:
    async with services().pool.acquire() as conn:
        await require_app(conn, app_id)
        samples = await select_payload_samples(conn, app_id, DRAFT_SAMPLES_PER_EVENT)
    return jsonify(
        {"plan": plans.draft_plan(samples), "events_read": sum(map(len, samples.values()))}
    )


@blueprint.post("/api/apps/<app_id>/revalidate")
async def revalidate(app_id: str) -> Response:
    """Judge stored events against a plan version (default: the current one); stores nothing."""
    options = await json_body(allow_empty=True)
    version = options.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise Rejected(400, "invalid_version", "version must be a whole number")
    status = options.get("status")
    if status is not None and status not in STATUSES:
        raise Rejected(400, "invalid_filter", "status must be valid or invalid")
    async with services().pool.acquire() as conn:
        saved = await require_version(conn, app_id, version)
        entries = await select_log_entries(
            conn, app_id, filters=EventFilter(status=status), limit=plans.REVALIDATE_LIMIT
        )
    report = plans.revalidate(plans.compile_version(saved), entries)
    return jsonify(report.as_dict())


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise Rejected(400, "invalid_version", f"{name} must be a version number")
    return int(raw)
