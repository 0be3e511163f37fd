"""The API description's components: parameters, error responses, and the schemas' index."""

from __future__ import annotations

from typing import Any

from web.core.filters import MAX_NAMES, MAX_SESSION, MAX_TEXT
from web.core.ingest.accept import SESSION_HEADER
from web.core.settings import Limits
from web.openapi_operations import security_schemes
from web.openapi_refs import Schema, json_response, ref_param
from web.openapi_schemas import schemas
from web.query_api import DEFAULT_LIMIT, MAX_LIMIT


def components(limits: Limits) -> dict[str, Any]:
    """The document's components; every limit in them is read from `limits`."""
    return {
        "schemas": schemas(limits),
        "parameters": parameters(),
        "responses": error_responses(limits),
        "securitySchemes": security_schemes(),
    }


# ---- refs


def filter_params() -> list[Schema]:
    names = ("Status", "EventName", "Session", "Rule", "Text", "Since", "Until")
    return [ref_param(name) for name in names]


# ---- parameters


def parameters() -> dict[str, Schema]:
    return {
        "AppId": {
            "name": "app_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"},
        },
        **_session_parameters(),
        **_filter_parameters(),
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


def _session_parameters() -> dict[str, Schema]:
    session: Schema = {"type": "string", "minLength": 1, "maxLength": MAX_SESSION}
    return {
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
    }


def _filter_parameters() -> dict[str, Schema]:
    return {
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
            "description": (
                "Case-insensitive text anywhere in the payload. It reads every payload it"
                " covers: without `since`, a listing searches the hour before `until` (or"
                " now) and says so in `searched_since`"
            ),
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
    }


# ---- error responses

_ERROR_TEXT = {
    "400": "Bad input: invalid_json, invalid_utf8, too_deep, invalid_number, null_character,"
    " invalid_top_level, empty_batch, invalid_batch, invalid_event, invalid_event_id,"
    " invalid_encoding, invalid_session, empty_body, invalid_filter, invalid_cursor",
    "401": "write_key_required, invalid_write_key (answered 400 on Segment's /v1/b and on"
    " Amplitude's paths, which those SDKs take as final)",
    "403": "cross_site_request: a web page of another site; on Snowplow's paths unknown_app"
    " (its trackers would retry a 404)",
    "404": "unknown_app",
    "415": "unsupported_media_type, unsupported_encoding",
    "429": "rate_limited, with Retry-After",
    "503": "queue_unavailable or busy, with Retry-After: nothing was stored; retry",
}
# Each error schema's responses are components named <prefix><status>.
_ERROR_RESPONSE_PREFIXES = {
    "Error": "E",
    "SdkError": "SdkE",
    "AmplitudeError": "AmplitudeE",
    "SdkOrAmplitudeError": "SdkOrAmplitudeE",
}
# The error schema of a path two formats share, by the schemas of the two.
SHARED_ERROR_SCHEMAS = {frozenset({"SdkError", "AmplitudeError"}): "SdkOrAmplitudeError"}


def error_responses(limits: Limits) -> dict[str, Schema]:
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
            response = found[f"{prefix}{status}"] = json_response(text, schema)
            if status in ("429", "503"):
                response["headers"] = retry_after
    return found


def error_refs(*statuses: str, schema: str = "Error") -> dict[str, Any]:
    """Refs to the error responses of these statuses, in the shape of `schema`."""
    prefix = _ERROR_RESPONSE_PREFIXES[schema]
    return {status: {"$ref": f"#/components/responses/{prefix}{status}"} for status in statuses}
