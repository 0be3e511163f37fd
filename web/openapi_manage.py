"""The API description's management paths: apps, plans, alerts, retention, dead letters, status."""

from __future__ import annotations

from web.api_types import MAX_INT4
from web.openapi_hygiene import TAG as HYGIENE_TAG
from web.openapi_hygiene import hygiene_paths
from web.openapi_micro import TAG as MICRO_TAG
from web.openapi_micro import micro_paths
from web.openapi_operations import READ, WRITE, answer, operation, query
from web.openapi_parity import parity_paths
from web.openapi_plan_editor import plan_editor_paths
from web.openapi_refs import Schema, ref_param
from web.openapi_scenarios import TAG as SCENARIOS_TAG
from web.openapi_scenarios import scenario_paths
from web.openapi_tokens import token_paths

_VERSION: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_INT4}
_NO_VERSION = {"404": ("unknown_plan_version",)}
_APP = "/api/apps/{app_id}"
# The document's groups of operations, in the order /docs shows them (the SDKs' follow).
TAGS: tuple[Schema, ...] = (
    {"name": "ingest", "description": "Send events to be judged and stored."},
    {"name": "query", "description": "Read, count, wait for and reset an app's stored events."},
    {"name": "export", "description": "Stored events and plan coverage as files."},
    {"name": "apps", "description": "The apps events are sent for."},
    {
        "name": "plans",
        "description": "Tracking plans: versions, diff, check, draft, re-validation.",
    },
    {"name": "alerts", "description": "When to alert, by e-mail and webhook, and recent alerts."},
    {"name": "retention", "description": "How long each app's events are kept."},
    {"name": "pipeline", "description": "Dead letters and the pipeline's status."},
    {"name": "tokens", "description": "API tokens for scripts and CI (admin)."},
    HYGIENE_TAG,
    MICRO_TAG,
    SCENARIOS_TAG,
)


def management_paths() -> dict[str, Schema]:
    """Every management operation, by path."""
    return {
        **_app_paths(),
        **_plan_paths(),
        **_plan_history_paths(),
        **_plan_tool_paths(),
        **plan_editor_paths(),
        **_settings_paths(),
        **hygiene_paths(),
        **_pipeline_paths(),
        **token_paths(),
        **micro_paths(),
        **parity_paths(),
        **scenario_paths(),
    }


def _app_paths() -> dict[str, Schema]:
    return {
        "/api/apps": {
            "get": operation(
                "get",
                "listApps",
                "apps",
                "Every app",
                scope=READ,
                answer=answer("The apps", "AppList"),
                about_app=False,
            ),
            "post": operation(
                "post",
                "addApp",
                "apps",
                "Add an app, with a fresh write key",
                scope=WRITE,
                answer=answer("The app added", "AppEntry"),
                status="201",
                body="NewApp",
                about_app=False,
                refusals={
                    "400": ("invalid_app_id", "invalid_app_name", "null_character"),
                    "409": ("app_exists",),
                },
            ),
        },
        _APP: {
            "parameters": [ref_param("AppId")],
            "get": operation(
                "get", "getApp", "apps", "One app", scope=READ, answer=answer("The app", "AppEntry")
            ),
        },
    }


def _plan_paths() -> dict[str, Schema]:
    app = [ref_param("AppId")]
    return {
        f"{_APP}/plan": {
            "parameters": app,
            "get": operation(
                "get",
                "getPlan",
                "plans",
                "The app's current tracking plan",
                scope=READ,
                answer=answer("The current version", "SavedPlan"),
                refusals=_NO_VERSION,
            ),
            "put": operation(
                "put",
                "savePlan",
                "plans",
                "Save a new version of the app's tracking plan",
                scope=WRITE,
                answer=answer("The version saved", "SavedPlan"),
                body="TrackingPlan",
                refusals={"400": ("invalid_plan", "null_character")},
                description="Ingest judges against it at once. A refused plan's problems are"
                " in the error's `details.problems`, each located by a JSON Pointer.",
            ),
        },
    }


def _plan_history_paths() -> dict[str, Schema]:
    app = [ref_param("AppId")]
    return {
        f"{_APP}/plan/versions": {
            "parameters": app,
            "get": operation(
                "get",
                "listPlanVersions",
                "plans",
                "Every version of the app's plan",
                scope=READ,
                answer=answer("The versions, newest first", "PlanVersions"),
            ),
        },
        f"{_APP}/plan/versions/{{version}}": {
            "parameters": [
                *app,
                {"name": "version", "in": "path", "required": True, "schema": _VERSION},
            ],
            "get": operation(
                "get",
                "getPlanVersion",
                "plans",
                "One version of the app's plan",
                scope=READ,
                answer=answer("The version", "SavedPlan"),
                refusals=_NO_VERSION,
            ),
        },
        f"{_APP}/plan/diff": {
            "parameters": app,
            "get": operation(
                "get",
                "diffPlanVersions",
                "plans",
                "What changed between two plan versions",
                scope=READ,
                answer=answer("The changes", "PlanDiffAnswer"),
                refusals={"400": ("invalid_version",), **_NO_VERSION},
                parameters=[
                    query("from", _VERSION, "The older version (default: the one before `to`)"),
                    query("to", _VERSION, "The newer version (default: the current one)"),
                ],
            ),
        },
    }


def _plan_tool_paths() -> dict[str, Schema]:
    app = [ref_param("AppId")]
    return {
        f"{_APP}/plan/check": {
            "parameters": app,
            "post": operation(
                "post",
                "checkPlan",
                "plans",
                "Check a plan without saving it",
                scope=WRITE,
                answer=answer("Whether it would be saved, and its problems", "PlanCheck"),
                body="TrackingPlan",
            ),
        },
        f"{_APP}/plan/draft": {
            "parameters": app,
            "get": operation(
                "get",
                "draftPlan",
                "plans",
                "A plan proposed from the app's stored events",
                scope=READ,
                answer=answer("The draft, not saved", "PlanDraft"),
            ),
        },
        f"{_APP}/revalidate": {
            "parameters": app,
            "post": operation(
                "post",
                "revalidateEvents",
                "plans",
                "Judge the stored events again against a plan version; stores nothing",
                scope=WRITE,
                answer=answer("What would change", "Revalidation"),
                body="RevalidateOptions",
                body_required=False,
                refusals={"400": ("invalid_version", "invalid_filter"), **_NO_VERSION},
            ),
        },
    }


def _settings_paths() -> dict[str, Schema]:
    app = [ref_param("AppId")]
    return {
        f"{_APP}/alerts": {
            "parameters": app,
            "get": operation(
                "get",
                "getAlerts",
                "alerts",
                "The app's alert settings and recent alerts",
                scope=READ,
                answer=answer("Settings and alerts", "AlertsAnswer"),
            ),
            "put": operation(
                "put",
                "saveAlerts",
                "alerts",
                "Replace the app's alert settings; a section left out takes its default",
                scope=WRITE,
                answer=answer("The settings saved", "SavedAlertSettings"),
                body="AlertSettings",
                refusals={"400": ("invalid_alert_settings", "null_character")},
            ),
        },
        f"{_APP}/retention": {
            "parameters": app,
            "get": operation(
                "get",
                "getRetention",
                "retention",
                "How long the app's events are kept",
                scope=READ,
                answer=answer("The retention", "Retention"),
            ),
            "put": operation(
                "put",
                "saveRetention",
                "retention",
                "Keep the app's events N days, or the default (null)",
                scope=WRITE,
                answer=answer("The retention saved", "Retention"),
                body="RetentionChange",
                refusals={"400": ("invalid_retention",)},
            ),
        },
    }


def _pipeline_paths() -> dict[str, Schema]:
    return {
        "/api/dead-letters": {
            "get": operation(
                "get",
                "listDeadLetters",
                "pipeline",
                "Events the worker could not store",
                scope=READ,
                answer=answer("The dead letters, newest first", "DeadLetterList"),
                about_app=False,
                parameters=[
                    query("all", {"enum": ["1"]}, "1: retried ones too (default: pending only)")
                ],
            ),
        },
        "/api/dead-letters/retry": {
            "post": operation(
                "post",
                "retryDeadLetters",
                "pipeline",
                "Send dead letters through the queue again",
                scope=WRITE,
                answer=answer("What was sent", "RetryResult"),
                body="RetryRequest",
                about_app=False,
                refusals={"400": ("invalid_ids",), "503": ("queue_unavailable",)},
            ),
        },
        "/api/status": {
            "get": operation(
                "get",
                "getStatus",
                "pipeline",
                "Queue depths, workers, ingest and open streams (as `lvd status --json`)",
                scope=READ,
                answer=answer("A reading", "PipelineReading"),
                about_app=False,
            ),
        },
    }
