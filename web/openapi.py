"""GET /openapi.json: the ingest and query API as OpenAPI 3.1, built from the live limits."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from quart import Blueprint, Response, jsonify

from web.context import services
from web.core.filters import MAX_NAMES, MAX_SESSION, MAX_TEXT
from web.core.ingest.accept import SESSION_HEADER
from web.core.ingest.formats.amplitude import MAX_EVENTS as AMPLITUDE_MAX_EVENTS
from web.core.ingest.formats.segment import SEGMENT_CALLS
from web.core.ingest.registry import SESSION_PREFIX, WIRE_FORMATS, routes_by_format
from web.core.ingest.wire import Route, WireFormat
from web.core.settings import Limits
from web.query_api import DEFAULT_LIMIT, MAX_LIMIT, MAX_WAIT_COUNT, MAX_WAIT_SECONDS

blueprint = Blueprint("openapi", __name__)

JSON = "application/json"
Schema = dict[str, Any]


@blueprint.get("/openapi.json")
async def openapi_json() -> Response:
    return jsonify(openapi_document(services().settings.limits))


def openapi_document(limits: Limits) -> dict[str, Any]:
    """The API description; every limit in it is read from `limits`."""
    paths: dict[str, Any] = {
        "/api/logs/{app_id}": {
            "parameters": [_ref_param("AppId")],
            "post": _native_ingest(limits),
            "get": _list_events(),
            "delete": _reset(),
        },
        "/api/logs/{app_id}/summary": {"parameters": [_ref_param("AppId")], "get": _summary()},
        "/api/logs/{app_id}/wait": {"parameters": [_ref_param("AppId")], "get": _wait()},
    }
    paths.update(_sdk_paths())
    for item in paths.values():
        if not item["parameters"]:
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
            {"name": fmt.title, "description": fmt.description}
            for fmt in WIRE_FORMATS
            if fmt.name != "native"
        ],
        "components": {
            "schemas": _schemas(limits),
            "parameters": _parameters(),
            "responses": _responses(limits),
            "securitySchemes": {
                "writeKeyBasic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "The app's write key as the user name, an empty password.",
                },
                "writeKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Write-Key"},
                "dashboardUser": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "A dashboard user; needed only when sign-in is required.",
                },
            },
        },
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
        "parameters": [_ref_param("SessionHeader"), _ref_param("QuerySession")],
        "requestBody": {
            "required": True,
            "content": {
                JSON: {
                    "schema": {
                        "oneOf": [
                            _ref("Event"),
                            {
                                "type": "array",
                                "items": _ref("Event"),
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
                "content": {JSON: {"schema": {"oneOf": [_ref("Verdict"), _ref("VerdictList")]}}},
            },
            **_errors("400", "401", "404", "413", "415", "429", "503"),
        },
    }


def _list_events() -> dict[str, Any]:
    return {
        "operationId": "listEvents",
        "tags": ["query"],
        "summary": "An app's stored events matching the filters, newest first, a page at a time",
        "security": [{}, {"dashboardUser": []}],
        "parameters": [
            *_filter_params(),
            _ref_param("Limit"),
            _ref_param("Cursor"),
        ],
        "responses": {
            "200": _json_response("A page of events", "EventPage"),
            **_errors("400", "403", "404"),
        },
    }


def _summary() -> dict[str, Any]:
    return {
        "operationId": "summariseEvents",
        "tags": ["query"],
        "summary": "Counts of an app's stored events by status and by event name",
        "security": [{}, {"dashboardUser": []}],
        "parameters": _filter_params(),
        "responses": {
            "200": _json_response("The counts", "Summary"),
            **_errors("400", "403", "404"),
        },
    }


def _reset() -> dict[str, Any]:
    return {
        "operationId": "resetEvents",
        "tags": ["query"],
        "summary": "Delete an app's stored events: all of them, or one session's",
        "security": [{}, {"dashboardUser": []}],
        "parameters": [_ref_param("Session")],
        "responses": {
            "200": _json_response("How many events were deleted", "ResetResult"),
            **_errors("400", "403", "404"),
        },
    }


def _wait() -> dict[str, Any]:
    return {
        "operationId": "waitForEvents",
        "tags": ["query"],
        "summary": "Long-poll until `count` matching events are stored, or the timeout",
        "description": (
            "Answers as soon as `count` stored events match (those stored before the call"
            " count too), else at the timeout with what there is and `reached: false`."
        ),
        "security": [{}, {"dashboardUser": []}],
        "parameters": [
            *_filter_params(),
            {
                "name": "count",
                "in": "query",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_WAIT_COUNT},
                "description": "How many matching events to wait for (default 1).",
            },
            {
                "name": "timeout",
                "in": "query",
                "schema": {"type": "number", "minimum": 0, "maximum": MAX_WAIT_SECONDS},
                "description": "Seconds to wait at most (default 10).",
            },
        ],
        "responses": {
            "200": _json_response("The matching events, newest first", "WaitResult"),
            **_errors("400", "403", "404"),
        },
    }


def _sdk_paths() -> dict[str, Any]:
    """Every SDK route of the wire formats, at the root and under a session-scoped host."""
    paths: dict[str, Any] = {}
    for fmt, route in routes_by_format():
        if fmt.name == "native":  # described in full above
            continue
        for prefix in ("", SESSION_PREFIX):
            path = re.sub(r"<(\w+)>", r"{\1}", f"{prefix}{route.path}")
            names = re.findall(r"{(\w+)}", path)
            item = paths.setdefault(path, {"parameters": [_path_param(n) for n in names]})
            for method in route.methods:
                item[method.lower()] = _sdk_operation(fmt, route, method, scoped=bool(prefix))
    return paths


def _sdk_operation(fmt: WireFormat, route: Route, method: str, *, scoped: bool) -> Schema:
    where = " in the session named by the path" if scoped else ""
    operation: Schema = {
        "operationId": f"{fmt.name}_{route.name}_{method.lower()}{'_in_session' if scoped else ''}",
        "tags": [fmt.title],
        "summary": f"{route.summary}{where}",
    }
    operation["security"] = [{"writeKeyBasic": []}, {}] if fmt.basic_auth else [{}]
    errors = _errors("400", "401", "404", "413", "415", "429", "503", schema=fmt.error_schema)
    if route.document is not None:
        operation["responses"] = {
            "200": {"description": "A document the SDK reads"},
            **_errors("413", schema=fmt.error_schema),
        }
        return operation
    if method == "POST":
        schema = route.body_schema or fmt.body_schema
        operation["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": _ref(schema)}, "text/plain": {"schema": _ref(schema)}},
        }
    if not scoped:
        operation["parameters"] = [_ref_param("SessionHeader"), _ref_param("QuerySession")]
    accepted = (
        {"description": "Accepted: a 1x1 GIF"}
        if method == "GET"
        else _json_response("Accepted: one verdict per event", fmt.result_schema)
    )
    operation["responses"] = {"200": accepted, **errors}
    return operation


def _path_param(name: str) -> Schema:
    if name == "session":
        return _ref_param("PathSession")
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


# ---- components


def _schemas(limits: Limits) -> dict[str, Schema]:
    event_id: Schema = {
        "type": ["string", "integer"],
        "minLength": 1,
        "maxLength": limits.max_event_id_length,
    }
    error_body: Schema = {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
    }
    issue: Schema = {
        "type": "object",
        "required": ["path", "rule", "message", "severity"],
        "properties": {
            "path": {"type": "string", "description": "JSON Pointer into the event"},
            "rule": {"type": "string"},
            "message": {"type": "string"},
            "expected": {},
            "actual": {},
            "severity": {"enum": ["error", "warning"]},
        },
    }
    status: Schema = {"enum": ["valid", "invalid"]}
    nullable_text: Schema = {"type": ["string", "null"]}
    stored: Schema = {
        "type": "object",
        "required": [
            "event_id",
            "event_name",
            "status",
            "errors",
            "payload",
            "plan_version",
            "session",
            "received_at",
            "created_at",
        ],
        "properties": {
            "event_id": {"type": "string"},
            "event_name": nullable_text,
            "status": status,
            "errors": {"type": "array", "items": _ref("Issue")},
            "payload": {"type": "object", "description": "The event as it was sent"},
            "plan_version": {"type": ["integer", "null"]},
            "session": nullable_text,
            "received_at": {"type": "string", "format": "date-time"},
            "created_at": {"type": "string", "format": "date-time"},
        },
    }
    counts: Schema = {
        "type": "object",
        "required": ["valid", "invalid"],
        "properties": {"valid": {"type": "integer"}, "invalid": {"type": "integer"}},
    }
    message_size = (
        f"One message at most {limits.max_event_bytes} bytes serialised;"
        f" a request at most {limits.max_request_bytes} bytes."
    )
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": error_body},
        },
        "SdkError": {
            "description": "The Error shape, with code and message also at the top level"
            " (and `detail` on PostHog paths), where the SDKs read them.",
            "type": "object",
            "required": ["error", "code", "message"],
            "properties": {
                "error": error_body,
                "code": {"type": "string"},
                "message": {"type": "string"},
                "detail": {"type": "string"},
            },
        },
        "Issue": issue,
        "Event": {
            "type": "object",
            "description": f"Any JSON object. {message_size} Named by eventName, event or"
            " event_name; identified by event_id, messageId or uuid (else the server assigns"
            " an id).",
            "properties": {
                "eventName": {"type": "string", "maxLength": limits.max_event_name_length},
                "event": {"type": "string"},
                "event_name": {"type": "string"},
                "event_id": event_id,
                "messageId": event_id,
                "uuid": event_id,
                "timestamp": {"type": "string", "format": "date-time"},
            },
            "additionalProperties": True,
            "x-max-bytes": limits.max_event_bytes,
        },
        "Verdict": {
            "type": "object",
            "required": ["event_id", "event_name", "status", "errors", "task_id", "message"],
            "properties": {
                "event_id": {"type": "string"},
                "event_name": nullable_text,
                "status": status,
                "errors": {"type": "array", "items": _ref("Issue")},
                "task_id": {"type": "string"},
                "message": {"type": "string"},
            },
        },
        "VerdictList": {
            "type": "object",
            "required": ["results"],
            "properties": {"results": {"type": "array", "items": _ref("Verdict")}},
        },
        "SdkResult": {
            "type": "object",
            "required": ["success", "results"],
            "properties": {
                "success": {"const": True},
                "results": {"type": "array", "items": _ref("Verdict")},
            },
        },
        "StoredEvent": stored,
        "EventPage": {
            "type": "object",
            "required": ["events", "next_cursor"],
            "properties": {
                "events": {"type": "array", "items": _ref("StoredEvent")},
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": "Pass as ?cursor= for the next (older) page; null at the end",
                },
            },
        },
        "Summary": {
            "type": "object",
            "required": ["total", "by_status", "by_event_name"],
            "properties": {
                "total": {"type": "integer"},
                "by_status": counts,
                "by_event_name": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["event_name", "total", "valid", "invalid"],
                        "properties": {
                            "event_name": nullable_text,
                            "total": {"type": "integer"},
                            "valid": {"type": "integer"},
                            "invalid": {"type": "integer"},
                        },
                    },
                },
            },
        },
        "WaitResult": {
            "type": "object",
            "required": ["reached", "count", "wanted", "events"],
            "properties": {
                "reached": {"type": "boolean"},
                "count": {"type": "integer"},
                "wanted": {"type": "integer"},
                "events": {"type": "array", "items": _ref("StoredEvent")},
            },
        },
        "ResetResult": {
            "type": "object",
            "required": ["deleted", "session"],
            "properties": {"deleted": {"type": "integer"}, "session": nullable_text},
        },
        "SegmentMessage": {
            "type": "object",
            "description": f"A Segment message. {message_size}",
            "properties": {
                "type": {"enum": ["track", *[c for c in SEGMENT_CALLS if c != "track"]]},
                "event": {"type": "string"},
                "messageId": event_id,
                "userId": nullable_text,
                "anonymousId": nullable_text,
                "properties": {"type": "object"},
                "traits": {"type": "object"},
                "context": {"type": "object"},
                "timestamp": {"type": "string", "format": "date-time"},
                "writeKey": {"type": "string"},
            },
            "additionalProperties": True,
            "x-max-bytes": limits.max_event_bytes,
        },
        "SegmentBatch": {
            "type": "object",
            "required": ["batch"],
            "properties": {
                "batch": {
                    "type": "array",
                    "items": _ref("SegmentMessage"),
                    "minItems": 1,
                    "maxItems": limits.max_events_per_request,
                },
                "writeKey": {"type": "string"},
                "sentAt": {"type": "string", "format": "date-time"},
            },
        },
        "AmplitudeEvent": {
            "type": "object",
            "description": f"An Amplitude event, named by event_type. {message_size}",
            "required": ["event_type"],
            "properties": {
                "event_type": {"type": "string"},
                "insert_id": event_id,
                "user_id": nullable_text,
                "device_id": nullable_text,
                "time": {"type": "integer"},
                "event_properties": {"type": "object"},
                "user_properties": {"type": "object"},
            },
            "additionalProperties": True,
        },
        "AmplitudeUpload": {
            "type": "object",
            "required": ["api_key", "events"],
            "properties": {
                "api_key": {"type": "string", "description": "The app's write key"},
                "events": {
                    "type": "array",
                    "items": _ref("AmplitudeEvent"),
                    "minItems": 1,
                    "maxItems": AMPLITUDE_MAX_EVENTS,
                },
                "options": {"type": "object"},
            },
        },
        "AmplitudeResult": {
            "type": "object",
            "required": ["code", "events_ingested", "results"],
            "properties": {
                "code": {"const": 200},
                "events_ingested": {"type": "integer"},
                "payload_size_bytes": {"type": "integer"},
                "server_upload_time": {"type": "integer"},
                "results": {"type": "array", "items": _ref("Verdict")},
            },
        },
        "AmplitudeError": {
            "description": "Amplitude's error shape; error_code is this server's code. A bad"
            " or missing key is 400 'Invalid API key', as Amplitude answers it.",
            "type": "object",
            "required": ["code", "error", "error_code"],
            "properties": {
                "code": {"type": "integer"},
                "error": {"type": "string"},
                "error_code": {"type": "string"},
            },
        },
        "SnowplowPayload": {
            "type": "object",
            "description": "Snowplow's payload_data envelope: tracker payloads, every field a"
            " string (e, eid, aid, ue_pr/ue_px, co/cx, se_ca, se_ac...).",
            "required": ["data"],
            "properties": {
                "schema": {"type": "string"},
                "data": {
                    "type": "array",
                    "items": {"type": "object", "additionalProperties": True},
                    "minItems": 1,
                    "maxItems": limits.max_events_per_request,
                },
            },
        },
        "PostHogEvent": {
            "type": "object",
            "properties": {
                "event": {"type": "string"},
                "distinct_id": {"type": ["string", "integer"]},
                "properties": {"type": "object"},
                "timestamp": {"type": "string", "format": "date-time"},
                "uuid": event_id,
            },
            "additionalProperties": True,
            "x-max-bytes": limits.max_event_bytes,
        },
        "PostHogBatch": {
            "type": "object",
            "required": ["api_key", "batch"],
            "properties": {
                "api_key": {"type": "string", "description": "The app's write key"},
                "batch": {
                    "type": "array",
                    "items": _ref("PostHogEvent"),
                    "minItems": 1,
                    "maxItems": limits.max_events_per_request,
                },
                "sent_at": {"type": "string"},
            },
        },
    }


def _parameters() -> dict[str, Schema]:
    session: Schema = {"type": "string", "minLength": 1, "maxLength": MAX_SESSION}
    return {
        "AppId": {
            "name": "app_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"},
        },
        "PathSession": {
            "name": "session",
            "in": "path",
            "required": True,
            "description": "The test session the events join",
            "schema": session,
        },
        "SessionHeader": {
            "name": SESSION_HEADER,
            "in": "header",
            "description": "Tag the events with this test session",
            "schema": session,
        },
        "QuerySession": {
            "name": "session",
            "in": "query",
            "description": f"Tag the events with this test session (as {SESSION_HEADER})",
            "schema": session,
        },
        "Session": {
            "name": "session",
            "in": "query",
            "description": "Only this test session's events",
            "schema": session,
        },
        "Status": {
            "name": "status",
            "in": "query",
            "schema": {"enum": ["valid", "invalid", "all"]},
        },
        "EventName": {
            "name": "event_name",
            "in": "query",
            "description": f"Comma-separated event names (at most {MAX_NAMES}); may repeat",
            "schema": {"type": "string"},
        },
        "Rule": {
            "name": "rule",
            "in": "query",
            "description": "Only events with an error of this rule (e.g. required, type)",
            "schema": {"type": "string", "maxLength": 100},
        },
        "Text": {
            "name": "q",
            "in": "query",
            "description": "Case-insensitive text anywhere in the payload",
            "schema": {"type": "string", "maxLength": MAX_TEXT},
        },
        "Since": {
            "name": "since",
            "in": "query",
            "description": "Received at or after this time",
            "schema": {"type": "string", "format": "date-time"},
        },
        "Until": {
            "name": "until",
            "in": "query",
            "description": "Received before this time",
            "schema": {"type": "string", "format": "date-time"},
        },
        "Limit": {
            "name": "limit",
            "in": "query",
            "description": f"Events per page (default {DEFAULT_LIMIT})",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        },
        "Cursor": {
            "name": "cursor",
            "in": "query",
            "description": "The previous page's next_cursor (opaque)",
            "schema": {"type": "string"},
        },
    }


_ERROR_TEXT = {
    "400": "Bad input: invalid_json, invalid_utf8, too_deep, invalid_number, null_character,"
    " invalid_top_level, empty_batch, invalid_batch, invalid_event, invalid_event_id,"
    " invalid_encoding, invalid_session, empty_body, invalid_filter, invalid_cursor",
    "401": "write_key_required, invalid_write_key",
    "403": "cross_site_request: a web page of another site",
    "404": "unknown_app",
    "415": "unsupported_media_type, unsupported_encoding",
    "429": "rate_limited, with Retry-After",
    "503": "queue_unavailable, with Retry-After: nothing was stored; retry",
}


def _responses(limits: Limits) -> dict[str, Schema]:
    too_large = (
        f"request_too_large (over {limits.max_request_bytes} bytes), event_too_large (over"
        f" {limits.max_event_bytes} bytes), too_many_events (over"
        f" {limits.max_events_per_request})"
    )
    texts = {**_ERROR_TEXT, "413": too_large}
    found: dict[str, Schema] = {}
    retry_after = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds"}}
    for status, text in texts.items():
        for schema, prefix in _ERROR_RESPONSE_PREFIXES.items():
            response = found[f"{prefix}{status}"] = _json_response(text, schema)
            if status in ("429", "503"):
                response["headers"] = retry_after
    return found


# Each error schema's responses are components named <prefix><status>.
_ERROR_RESPONSE_PREFIXES = {"Error": "E", "SdkError": "SdkE", "AmplitudeError": "AmplitudeE"}


def _errors(*statuses: str, schema: str = "Error") -> dict[str, Any]:
    prefix = _ERROR_RESPONSE_PREFIXES[schema]
    return {status: {"$ref": f"#/components/responses/{prefix}{status}"} for status in statuses}


def _filter_params() -> list[Schema]:
    names = ("Status", "EventName", "Session", "Rule", "Text", "Since", "Until")
    return [_ref_param(name) for name in names]


def _json_response(description: str, schema: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": _ref(schema)}}}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _ref_param(name: str) -> Schema:
    return {"$ref": f"#/components/parameters/{name}"}
