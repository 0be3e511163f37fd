"""The API description's plan-editor paths (impact of a draft, property statistics) and types."""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import Field
from typing_extensions import TypedDict

from web.api_types import Count, Timestamp
from web.core.filters import MAX_SESSION
from web.core.plans import Rejudged
from web.openapi_operations import READ, answer, operation, query
from web.openapi_refs import Schema, ref_param
from web.plans import OutcomeCounts, TrackingPlan

# Property statistics read the last `hours` of traffic: a week at most, a day by default.
MAX_STATS_HOURS = 168
DEFAULT_STATS_HOURS = 24


class PlanImpactRequest(TypedDict):
    """An unsaved plan, and which stored events to judge with it: those received since a
    time (default: the last 24 hours), of one test session, or both."""

    plan: TrackingPlan
    since: NotRequired[Timestamp | None]
    session: NotRequired[Annotated[str, Field(min_length=1, max_length=MAX_SESSION)] | None]


class RuleChangeEntry(TypedDict):
    """How many events of one name would change outcome through one rule, and a few."""

    outcome: Literal["fixed", "newly_failing"]
    event_name: str | None
    rule: str
    count: Count
    examples: list[Rejudged]


class PlanImpact(TypedDict):
    """What saving the plan would change for the stored events judged; nothing is saved."""

    judged: Count
    capped: Annotated[bool, Field(description="the newest `limit` events were judged, not all")]
    limit: Count
    since: Timestamp | None
    session: str | None
    counts: OutcomeCounts
    changes: list[RuleChangeEntry]


class TopValueEntry(TypedDict):
    value: str | int | float | bool
    count: Count


class PropertyStatsEntry(TypedDict):
    """One property (`name`, or `parent.child` one level into an object) of one event."""

    path: str
    present: Count
    missing: Count
    missing_share: Annotated[float, Field(ge=0, le=1)]
    types: dict[str, Count]
    top_values: list[TopValueEntry]


class EventPropertyStats(TypedDict):
    event_name: str
    sampled: Count
    properties: list[PropertyStatsEntry]


class PlanStats(TypedDict):
    """Per event name and property of recent traffic: the types seen, the share of events
    without it, and its most frequent values."""

    since: Timestamp
    read: Annotated[Count, Field(description="stored events read (at most recent_limit)")]
    recent_limit: Count
    per_event_limit: Count
    events: list[EventPropertyStats]


def plan_editor_paths() -> dict[str, Schema]:
    """POST /api/apps/{app_id}/plan/impact and GET /api/apps/{app_id}/plan/stats."""
    app = [ref_param("AppId")]
    hours: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_STATS_HOURS}
    return {
        "/api/apps/{app_id}/plan/impact": {
            "parameters": app,
            "post": operation(
                "post",
                "planImpact",
                "plans",
                "What an unsaved plan would break or fix in stored traffic",
                scope=READ,
                answer=answer("What would change, by event and rule", "PlanImpact"),
                body="PlanImpactRequest",
                refusals={"400": ("invalid_plan", "invalid_filter", "null_character")},
                description="Judges the newest stored events (at most 10 000) received since"
                " `since` and/or of `session` against `plan`; stores nothing.",
            ),
        },
        "/api/apps/{app_id}/plan/stats": {
            "parameters": app,
            "get": operation(
                "get",
                "planPropertyStats",
                "plans",
                "Per event and property of recent traffic: types, share missing, top values",
                scope=READ,
                answer=answer("The statistics and what was read", "PlanStats"),
                refusals={"400": ("invalid_hours",)},
                parameters=[
                    query("hours", hours, f"The window, in hours (default {DEFAULT_STATS_HOURS})")
                ],
            ),
        },
    }


# What web/openapi_types.py generates schemas for.
PLAN_EDITOR_REQUESTS: tuple[object, ...] = (PlanImpactRequest,)
PLAN_EDITOR_ANSWERS: tuple[object, ...] = (PlanImpact, PlanStats)
