"""The API description's Snowplow Micro paths (web/snowplow_micro.py): all, good, bad, reset."""

from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict

from web.api_types import Count
from web.core.snowplow_micro import DEFAULT_LIMIT, MAX_LIMIT
from web.openapi_operations import READ, WRITE, answer, operation, query
from web.openapi_refs import JSON, Schema

TAG: Schema = {
    "name": "snowplow-micro",
    "description": "Snowplow Micro's test API, answered from stored events: at the root"
    " every app's Snowplow events, under /snowplow/{app} (id or write key) that app's.",
}


class MicroCounts(TypedDict):
    """How many Snowplow events are stored: valid ones are good, invalid ones bad."""

    total: Count
    good: Count
    bad: Count


class MicroFilter(TypedDict, total=False):
    """Micro's filters: /micro/good's schema, event_type and contexts, /micro/bad's vendor
    and version (of the collector API), and a limit for both."""

    schema: str
    event_type: str
    contexts: list[str]
    vendor: str
    version: str
    limit: Any


MICRO_TYPES = (MicroCounts, MicroFilter)
_LISTED = {
    "good": "Valid events, as Micro lists good ones (event, eventType, schema, contexts...)",
    "bad": "Invalid events, as Micro lists bad ones (rawEvent, errors)",
}
_SUMMARY = {
    "all": "How many Snowplow events are stored, good and bad",
    "good": "The good (valid) Snowplow events, newest first",
    "bad": "The bad (invalid) Snowplow events, newest first",
    "reset": "Delete the Snowplow events",
}


def micro_paths() -> dict[str, Schema]:
    paths: dict[str, Schema] = {}
    for prefix in ("", "/snowplow/{app}"):
        for name in ("all", "good", "bad", "reset"):
            item: Schema = {
                method: _operation(name, method, in_app=bool(prefix)) for method in ("get", "post")
            }
            if prefix:
                item["parameters"] = [_APP]
            paths[f"{prefix}/micro/{name}"] = item
    return paths


_APP: Schema = {
    "name": "app",
    "in": "path",
    "required": True,
    "description": "The app's id or write key",
    "schema": {"type": "string"},
}


def _operation(name: str, method: str, *, in_app: bool) -> Schema:
    suffix = "InApp" if in_app else ""
    counted = name in ("all", "reset")
    built = operation(
        method,
        f"micro{name.title()}{method.title()}{suffix}",
        "snowplow-micro",
        _SUMMARY[name] + (" of the app" if in_app else " of every app"),
        scope=WRITE if name == "reset" else READ,
        answer=answer("The counts", "MicroCounts")
        if counted
        else {
            "description": _LISTED[name],
            "content": {JSON: {"schema": {"type": "array", "items": {"type": "object"}}}},
        },
        about_app=in_app,
        refusals={"400": ("invalid_filter", "invalid_json"), "403": ("cross_site_request",)},
        parameters=[] if counted or method == "post" else _filter_parameters(name),
    )
    if method == "post" and not counted:
        built["requestBody"] = {
            "required": False,
            "content": {JSON: {"schema": {"$ref": "#/components/schemas/MicroFilter"}}},
        }
    return built


def _filter_parameters(name: str) -> list[Schema]:
    limit = query(
        "limit",
        {"type": "integer"},
        f"Events at most (default {DEFAULT_LIMIT}, at most {MAX_LIMIT})",
    )
    if name == "bad":
        return [
            query("vendor", {"type": "string"}, "The collector API's vendor"),
            query("version", {"type": "string"}, "The collector API's version"),
            limit,
        ]
    return [
        query("schema", {"type": "string"}, "Only events of this schema (iglu:...)"),
        query("event_type", {"type": "string"}, "Only this event type (page_view, unstruct...)"),
        {
            "name": "contexts",
            "in": "query",
            "description": "Only events with contexts of these schemas",
            "schema": {"type": "array", "items": {"type": "string"}},
            "style": "form",
            "explode": True,
        },
        limit,
    ]
