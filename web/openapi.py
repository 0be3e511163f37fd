"""GET /openapi.json: the whole JSON API as OpenAPI 3.1, built from the live limits and types."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from quart import Blueprint, Response, jsonify

from web.context import services
from web.core.ingest.formats.posthog import FORM
from web.core.ingest.registry import SESSION_PREFIX, WIRE_FORMATS, routes_by_format
from web.core.ingest.wire import Route, WireFormat
from web.core.settings import Limits
from web.openapi_components import SHARED_ERROR_SCHEMAS, components, error_refs, filter_params
from web.openapi_manage import TAGS, management_paths
from web.openapi_operations import READ, WRITE, answer, operation, query, refusal
from web.openapi_refs import JSON, Schema, json_response, ref, ref_param
from web.query_api import MAX_WAIT_COUNT, MAX_WAIT_SECONDS

blueprint = Blueprint("openapi", __name__)


@blueprint.get("/openapi.json")
async def openapi_json() -> Response:
    return jsonify(openapi_document(services().settings.limits))


def openapi_document(limits: Limits) -> dict[str, Any]:
    """The API description; every limit in it is read from `limits`."""
    paths: dict[str, Any] = {
        "/api/logs/{app_id}": {
            "parameters": [ref_param("AppId")],
            "post": _native_ingest(limits),
            "get": _list_events(),
            "delete": _reset(),
        },
        "/api/logs/{app_id}/summary": {"parameters": [ref_param("AppId")], "get": _summary()},
        "/api/logs/{app_id}/wait": {"parameters": [ref_param("AppId")], "get": _wait()},
        **{
            f"/apps/{{app_id}}/events.{extension}": {
                "parameters": [ref_param("AppId")],
                "get": _export(extension, media_type),
            }
            for extension, media_type in (("csv", "text/csv"), ("ndjson", "application/x-ndjson"))
        },
        **{
            f"/apps/{{app_id}}/coverage.{extension}": {
                "parameters": [ref_param("AppId")],
                "get": _coverage(extension, media_type),
            }
            for extension, media_type in (("csv", "text/csv"), ("md", "text/markdown"))
        },
        **management_paths(),
    }
    paths.update(_sdk_paths())
    for item in paths.values():
        if not item.get("parameters", True):
            del item["parameters"]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Live Validation Dashboard",
            "version": "1",
            "description": _description(limits),
            "x-lvd-limits": asdict(limits),
        },
        "paths": paths,
        "tags": [
            *TAGS,
            *(
                {"name": fmt.title, "description": fmt.description}
                for fmt in WIRE_FORMATS
                if fmt.name != "native"
            ),
        ],
        "components": components(limits),
    }


def _description(limits: Limits) -> str:
    return (
        "Analytics events are judged against the app's tracking plan the moment they arrive"
        " and stored exactly once per (app, event id).\n\n"
        f"Limits: one event at most {limits.max_event_bytes} bytes serialised"
        f" (413 event_too_large); one request body at most {limits.max_request_bytes} bytes"
        f" before and after gzip (413 request_too_large); at most"
        f" {limits.max_events_per_request} events per request (413 too_many_events); JSON"
        f" nested at most {limits.max_json_depth} levels (400 too_deep); an event id at most"
        f" {limits.max_event_id_length} characters (400 invalid_event_id); an event name over"
        f" {limits.max_event_name_length} characters makes the event invalid (maxLength).\n\n"
        "Test sessions: the X-LVD-Session header (or ?session=) tags events; SDKs whose host is"
        " <server>/v1/session/<id> tag theirs with <id>. Every query takes ?session=."
    )


# ---- operations


def _native_ingest(limits: Limits) -> dict[str, Any]:
    return {
        "operationId": "ingestEvents",
        "tags": ["ingest"],
        "summary": "Send one event, or an array of events, to be judged and stored",
        "security": [{}, {"writeKeyBasic": []}, {"writeKeyHeader": []}],
        "parameters": [ref_param("SessionHeader"), ref_param("QuerySession")],
        "requestBody": {
            "required": True,
            "content": {
                JSON: {
                    "schema": {
                        "oneOf": [
                            ref("Event"),
                            {
                                "type": "array",
                                "items": ref("Event"),
                                "minItems": 1,
                                "maxItems": limits.max_events_per_request,
                            },
                        ]
                    }
                }
            },
        },
        "responses": {
            "202": {
                "description": "Accepted: the verdict (one event) or one verdict per event",
                "content": {JSON: {"schema": {"oneOf": [ref("Verdict"), ref("VerdictList")]}}},
            },
            **{status: refusal(status, codes) for status, codes in INGEST_REFUSALS.items()},
        },
    }


# The native ingest's refusals, each with every code it may carry (README: "Errors").
INGEST_REFUSALS = {
    "400": (
        "empty_body",
        "invalid_json",
        "invalid_utf8",
        "too_deep",
        "invalid_number",
        "null_character",
        "invalid_top_level",
        "empty_batch",
        "invalid_event",
        "invalid_event_id",
        "invalid_encoding",
        "invalid_session",
    ),
    "401": ("write_key_required", "invalid_write_key"),
    "404": ("unknown_app",),
    "413": ("request_too_large", "event_too_large", "too_many_events"),
    "415": ("unsupported_media_type", "unsupported_encoding"),
    "429": ("rate_limited",),
    "503": ("queue_unavailable", "busy"),
}


_QUERY_REFUSALS = {"400": ("invalid_filter",), "403": ("cross_site_request",)}


def _list_events() -> dict[str, Any]:
    return operation(
        "get",
        "listEvents",
        "query",
        "An app's stored events matching the filters, newest first, a page at a time",
        scope=READ,
        answer=answer("A page of events", "EventPage"),
        refusals={**_QUERY_REFUSALS, "400": ("invalid_filter", "invalid_cursor")},
        parameters=[*filter_params(), ref_param("Limit"), ref_param("Cursor")],
    )


def _summary() -> dict[str, Any]:
    return operation(
        "get",
        "summariseEvents",
        "query",
        "Counts of an app's stored events by status and by event name",
        scope=READ,
        answer=answer("The counts", "Summary"),
        refusals=_QUERY_REFUSALS,
        parameters=filter_params(),
    )


def _reset() -> dict[str, Any]:
    return operation(
        "delete",
        "resetEvents",
        "query",
        "Delete an app's stored events: all of them, or one session's",
        scope=WRITE,
        answer=answer("How many events were deleted", "ResetResult"),
        refusals=_QUERY_REFUSALS,
        parameters=[ref_param("Session")],
    )


def _wait() -> dict[str, Any]:
    return operation(
        "get",
        "waitForEvents",
        "query",
        "Long-poll until `count` matching events are stored, or the timeout",
        scope=READ,
        answer=answer("The matching events, newest first", "WaitResult"),
        refusals=_QUERY_REFUSALS,
        description=(
            "Answers as soon as `count` stored events match (those stored before the call"
            " count too), else at the timeout with what there is and `reached: false`."
        ),
        parameters=[
            *filter_params(),
            query(
                "count",
                {"type": "integer", "minimum": 1, "maximum": MAX_WAIT_COUNT},
                "How many matching events to wait for (default 1).",
            ),
            query(
                "timeout",
                {"type": "number", "minimum": 0, "maximum": MAX_WAIT_SECONDS},
                "Seconds to wait at most (default 10).",
            ),
        ],
    )


def _export(extension: str, media_type: str) -> dict[str, Any]:
    operation_id = f"exportEvents{extension.title()}"
    return operation(
        "get",
        operation_id,
        "export",
        f"Every stored event matching the filters, newest first, as {extension.upper()}",
        scope=READ,
        answer={
            "description": "The rows, newest first (CSV: a header line first)",
            "content": {media_type: {"schema": {"type": "string"}}},
        },
        refusals={"400": ("invalid_filter", "invalid_limit", "invalid_before_id")},
        description=(
            "Streamed as it is read, with no ceiling on the number of rows. Each row carries"
            " its `id` (CSV's first column, NDJSON's `id`). If the connection drops, ask again"
            " with `before_id` set to the id of the last whole row received: the answer is"
            " exactly the rest (events stored since the export began are never in it). An"
            " export cut short ends without the final chunk of its chunked encoding."
        ),
        parameters=[
            *filter_params(),
            query("limit", {"type": "integer", "minimum": 1}, "Rows at most (default: all)."),
            query(
                "before_id",
                {"type": "integer", "minimum": 1},
                "Only rows whose id is below this: where a cut export resumes.",
            ),
        ],
    )


def _coverage(extension: str, media_type: str) -> dict[str, Any]:
    return operation(
        "get",
        f"exportCoverage{extension.title()}",
        "export",
        f"Which planned events were seen, and which seen events are unplanned, as"
        f" {extension.upper()}",
        scope=READ,
        answer={
            "description": "The coverage report (default: the last 24 hours)",
            "content": {media_type: {"schema": {"type": "string"}}},
        },
        refusals={"400": ("invalid_filter",)},
        parameters=filter_params(),
    )


# Every refusal an ingest path may give, before the formats' final statuses.
REFUSALS = ("400", "401", "404", "413", "415", "429", "503")
Served = list[tuple[WireFormat, Route]]


def _sdk_paths() -> dict[str, Any]:
    """Every SDK path of the wire formats, at the root and under a session-scoped host.

    A path two formats share (/batch) is one operation whose body and refusals are either's.
    """
    by_path: dict[str, Served] = {}
    for fmt, route in routes_by_format():
        if fmt.name != "native":  # described in full above
            by_path.setdefault(route.path, []).append((fmt, route))
    paths: dict[str, Any] = {}
    for path, served in by_path.items():
        for prefix in ("", SESSION_PREFIX):
            openapi_path = re.sub(r"<(\w+)>", r"{\1}", f"{prefix}{path}")
            names = re.findall(r"{(\w+)}", openapi_path)
            item: dict[str, Any] = {"parameters": [_path_param(n) for n in names]}
            for method in served[0][1].methods:
                item[method.lower()] = _sdk_operation(served, method, scoped=bool(prefix))
            paths[openapi_path] = item
    return paths


def _sdk_operation(served: Served, method: str, *, scoped: bool) -> Schema:
    fmt, route = served[0]
    where = " in the session named by the path" if scoped else ""
    operation: Schema = {
        "operationId": f"{fmt.name}_{route.name}_{method.lower()}{'_in_session' if scoped else ''}",
        "tags": list(dict.fromkeys(f.title for f, _ in served)),
        "summary": " / ".join(r.summary for _, r in served) + where,
        "security": [{"writeKeyBasic": []}, {}] if fmt.basic_auth else [{}],
    }
    error_schema = _error_schema(served)
    if route.document is not None:
        operation["responses"] = {
            "200": {"description": "A document the SDK reads"},
            **error_refs("413", schema=error_schema),
        }
        return operation
    if method == "POST":
        operation["requestBody"] = _request_body(served)
    query = [] if scoped else [ref_param("SessionHeader"), ref_param("QuerySession")]
    if method == "GET":  # Snowplow's pixel: the event is the query string
        query.append(_EVENT_IN_QUERY)
    operation["parameters"] = query
    refusals = sorted({r.final_statuses.get(int(s), int(s)) for _, r in served for s in REFUSALS})
    accepted = (
        {"description": "Accepted: a 1x1 GIF", "content": {"image/gif": {}}}
        if method == "GET"
        else json_response("Accepted: one verdict per event", fmt.result_schema)
    )
    operation["responses"] = {
        "200": accepted,
        **error_refs(*(str(status) for status in refusals), schema=error_schema),
    }
    return operation


def _error_schema(served: Served) -> str:
    schemas = frozenset(fmt.error_schema for fmt, _ in served)
    return next(iter(schemas)) if len(schemas) == 1 else SHARED_ERROR_SCHEMAS[schemas]


def _request_body(served: Served) -> Schema:
    names = list(dict.fromkeys(route.body_schema or fmt.body_schema for fmt, route in served))
    schema = ref(names[0]) if len(names) == 1 else {"oneOf": [ref(name) for name in names]}
    content: Schema = {JSON: {"schema": schema}, "text/plain": {"schema": schema}}
    if "PostHogCapture" in names:
        content[FORM] = {"schema": ref("PostHogForm")}
    return {"required": True, "content": content}


# Snowplow's GET /i carries one event's tracker fields as query parameters.
_EVENT_IN_QUERY: Schema = {
    "name": "event",
    "in": "query",
    "style": "form",
    "explode": True,
    "description": "The tracker's fields (e, eid, aid, tv, se_ca, ue_px...), one event",
    "schema": {"type": "object", "additionalProperties": {"type": "string"}},
}


def _path_param(name: str) -> Schema:
    if name == "session":
        return ref_param("PathSession")
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
