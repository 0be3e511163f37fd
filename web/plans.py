"""Tracking plan API: versions, diff, check, draft from traffic, re-validate."""

from __future__ import annotations

from typing import Annotated, Any, NotRequired, cast

from pydantic import ConfigDict, Field, with_config
from quart import Blueprint, Response, jsonify, request
from typing_extensions import TypedDict

from web.api_types import (
    MAX_INT4,
    Count,
    EventStatus,
    Int4,
    Timestamp,
    refuse_null_characters,
    whole_number,
)
from web.context import services
from web.core import plans
from web.core.apps import require_app
from web.core.errors import Rejected
from web.core.filters import STATUSES, EventFilter
from web.core.plans import Change, Rejudged
from web.core.queries.base import Connection, PlanVersion
from web.core.queries.events import select_log_entries, select_payload_samples
from web.core.queries.plans import select_plan_version, select_plan_versions
from web.core.validation.naming import Convention
from web.core.validation.plan import PlanProblem, check_plan
from web.requests import json_body

blueprint = Blueprint("plans", __name__)

# Stored events per event name the draft reads at most.
DRAFT_SAMPLES_PER_EVENT = 200

# ---- the bodies

TrackingPlan = TypedDict(
    "TrackingPlan",
    {
        "events": NotRequired[
            Annotated[dict[str, Any], Field(description="event name -> its JSON Schema")]
        ],
        "common": NotRequired[
            Annotated[Any, Field(description="a JSON Schema every event must pass")]
        ],
        "allow_unplanned": NotRequired[bool],
        "naming": NotRequired[Convention | None],
        "$defs": NotRequired[dict[str, Any]],
        "$schema": NotRequired[Annotated[str, Field(description="the schemas' dialect")]],
        "description": NotRequired[Any],
    },
)
TrackingPlan.__doc__ = (
    "A tracking plan: each event's JSON Schema, checked (400 invalid_plan) when saved."
)
with_config(ConfigDict(extra="forbid"))(TrackingPlan)


class SavedPlan(TypedDict):
    """One stored version of an app's tracking plan."""

    app_id: str
    version: Int4
    created_at: Timestamp
    plan: TrackingPlan


class PlanVersionSummary(TypedDict):
    """A stored version: its number, when, and how many events it plans."""

    version: Int4
    created_at: Timestamp
    events: Count


class PlanVersions(TypedDict):
    """Every version of the app's plan, newest first, and the one ingest judges against."""

    current: Int4 | None
    versions: list[PlanVersionSummary]


PlanDiffAnswer = TypedDict(
    "PlanDiffAnswer",
    {
        "from": Int4,
        "to": Int4,
        "events_added": list[str],
        "events_removed": list[str],
        "events_changed": dict[str, list[Change]],
        "settings_changed": list[Change],
    },
)
PlanDiffAnswer.__doc__ = "What changed from one version to another, as JSON Pointer changes."


class PlanCheck(TypedDict):
    """Whether a plan would be saved, and every problem with it, located in it."""

    ok: bool
    problems: list[PlanProblem]


class PlanDraft(TypedDict):
    """A plan proposed from the app's stored events, not saved."""

    plan: TrackingPlan
    events_read: Count


class RevalidateOptions(TypedDict, total=False):
    """Which plan version to judge with (default: the current one; one the app does not have
    is 404 unknown_plan_version), and which events."""

    version: int | None
    status: EventStatus | None


class OutcomeCounts(TypedDict):
    """How many events each outcome had."""

    fixed: Count
    newly_failing: Count
    still_invalid: Count
    still_valid: Count


class OutcomeExamples(TypedDict):
    """A few events of each outcome."""

    fixed: list[Rejudged]
    newly_failing: list[Rejudged]
    still_invalid: list[Rejudged]
    still_valid: list[Rejudged]


class Revalidation(TypedDict):
    """The app's stored events judged again against a plan version; nothing is stored."""

    version: Int4
    judged: Count
    counts: OutcomeCounts
    examples: OutcomeExamples


def version_as_json(saved: PlanVersion) -> SavedPlan:
    return {
        "app_id": saved.app_id,
        "version": saved.version,
        "created_at": saved.created_at.isoformat(),
        "plan": cast(TrackingPlan, saved.document),  # checked when it was saved
    }


async def require_version(conn: Connection, app_id: str, version: int | None) -> PlanVersion:
    await require_app(conn, app_id)
    # A number outside PostgreSQL's integer names no version (and would not bind).
    beyond = version is not None and not -MAX_INT4 <= version <= MAX_INT4
    saved = None if beyond else await select_plan_version(conn, app_id, version)
    if saved is None:
        which = f"version {version}" if version else "plan yet"
        raise Rejected(404, "unknown_plan_version", f"app {app_id!r} has no {which}")
    return saved


@blueprint.put("/api/apps/<app_id>/plan")
async def put_plan(app_id: str) -> Response:
    document = await json_body()
    refuse_null_characters(document)
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
    answer: PlanVersions = {
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
    return jsonify(answer)


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
    changes = plans.diff_plans(old.document, new.document)
    answer: PlanDiffAnswer = {
        "from": old.version,
        "to": new.version,
        "events_added": changes.events_added,
        "events_removed": changes.events_removed,
        "events_changed": changes.events_changed,
        "settings_changed": changes.settings_changed,
    }
    return jsonify(answer)  # a dataclass (Change) is written as its fields


@blueprint.post("/api/apps/<app_id>/plan/check")
async def check(app_id: str) -> Response:
    """Check a plan without saving it (the editor calls this as the user types)."""
    async with services().pool.acquire() as conn:
        await require_app(conn, app_id)
    document = await json_body()
    problems = check_plan(document)
    answer: PlanCheck = {"ok": not problems, "problems": problems}
    return jsonify(answer)  # a dataclass (PlanProblem) is written as its fields


@blueprint.get("/api/apps/<app_id>/plan/draft")
async def draft(app_id: str) -> Response:
    async with services().pool.acquire() as conn:
        await require_app(conn, app_id)
        samples = await select_payload_samples(conn, app_id, DRAFT_SAMPLES_PER_EVENT)
    answer: PlanDraft = {
        "plan": cast(TrackingPlan, plans.draft_plan(samples)),
        "events_read": sum(map(len, samples.values())),
    }
    return jsonify(answer)


@blueprint.post("/api/apps/<app_id>/revalidate")
async def revalidate(app_id: str) -> Response:
    """Judge stored events against a plan version (default: the current one); stores nothing."""
    version, status = parse_revalidate_options(await json_body(allow_empty=True))
    async with services().pool.acquire() as conn:
        saved = await require_version(conn, app_id, version)
        entries = await select_log_entries(
            conn, app_id, filters=EventFilter(status=status), limit=plans.REVALIDATE_LIMIT
        )
    report = plans.revalidate(plans.compile_version(saved), entries)
    answer = cast(Revalidation, report.as_dict())  # the report's as_dict() writes this shape
    return jsonify(answer)


def parse_revalidate_options(options: dict[str, Any]) -> tuple[int | None, str | None]:
    """The version and status a RevalidateOptions body asks for; Rejected (400) when bad."""
    version = options.get("version")
    if version is not None and not whole_number(version):
        raise Rejected(400, "invalid_version", "version must be a whole number")
    status = options.get("status")
    if status is not None and status not in STATUSES:
        raise Rejected(400, "invalid_filter", "status must be valid or invalid")
    return version, status


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise Rejected(400, "invalid_version", f"{name} must be a version number")
    return int(raw)
