"""The API description's reusable parts: schemas, parameters, error responses, refs to them."""

from __future__ import annotations

from typing import Any

from web.core.filters import MAX_NAMES, MAX_SESSION, MAX_TEXT
from web.core.ingest.accept import SESSION_HEADER
from web.core.ingest.formats.amplitude import MAX_EVENTS as AMPLITUDE_MAX_EVENTS
from web.core.ingest.formats.segment import SEGMENT_CALLS
from web.core.settings import Limits
from web.query_api import DEFAULT_LIMIT, MAX_LIMIT

JSON = "application/json"
Schema = dict[str, Any]


def components(limits: Limits) -> dict[str, Any]:
    """The document's components; every limit in them is read from `limits`."""
    return {
        "schemas": schemas(limits),
        "parameters": parameters(),
        "responses": error_responses(limits),
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
    }


# ---- refs


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def ref_param(name: str) -> Schema:
    return {"$ref": f"#/components/parameters/{name}"}


def json_response(description: str, schema: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": ref(schema)}}}


def filter_params() -> list[Schema]:
    names = ("Status", "EventName", "Session", "Rule", "Text", "Since", "Until")
    return [ref_param(name) for name in names]


# ---- schemas


def schemas(limits: Limits) -> dict[str, Schema]:
    """Every payload's schema: the native API's, then each wire format's."""
    return {
        **_error_schemas(),
        "Issue": _issue(),
        "Event": _native_event(limits),
        **_verdict_schemas(),
        "StoredEvent": _stored_event(),
        **_query_schemas(),
        **_segment_schemas(limits),
        "AmplitudeEvent": _amplitude_event(limits),
        **_amplitude_schemas(),
        "SnowplowPayload": _snowplow_payload(limits),
        **_posthog_schemas(limits),
    }


def _event_id(limits: Limits) -> Schema:
    return {"type": ["string", "integer"], "minLength": 1, "maxLength": limits.max_event_id_length}


def _text_or_null() -> Schema:
    return {"type": ["string", "null"]}


def _status() -> Schema:
    return {"enum": ["valid", "invalid"]}


def _message_size(limits: Limits) -> str:
    return (
        f"One message at most {limits.max_event_bytes} bytes serialised;"
        f" a request at most {limits.max_request_bytes} bytes."
    )


def _error_schemas() -> dict[str, Schema]:
    error_body: Schema = {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
    }
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
        # PostHog's mobile SDKs and Amplitude share /batch: its refusals are either.
        "SdkOrAmplitudeError": {"oneOf": [ref("SdkError"), ref("AmplitudeError")]},
    }


def _issue() -> Schema:
    return {
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


def _native_event(limits: Limits) -> Schema:
    event_id = _event_id(limits)
    return {
        "type": "object",
        "description": f"Any JSON object. {_message_size(limits)} Named by eventName, event or"
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
    }


def _verdict_schemas() -> dict[str, Schema]:
    return {
        "Verdict": {
            "type": "object",
            "required": ["event_id", "event_name", "status", "errors", "task_id", "message"],
            "properties": {
                "event_id": {"type": "string"},
                "event_name": _text_or_null(),
                "status": _status(),
                "errors": {"type": "array", "items": ref("Issue")},
                "task_id": {"type": "string"},
                "message": {"type": "string"},
            },
        },
        "VerdictList": {
            "type": "object",
            "required": ["results"],
            "properties": {"results": {"type": "array", "items": ref("Verdict")}},
        },
        "SdkResult": {
            "type": "object",
            "required": ["success", "results"],
            "properties": {
                "success": {"const": True},
                "results": {"type": "array", "items": ref("Verdict")},
            },
        },
    }


def _stored_event() -> Schema:
    properties: Schema = {
        "event_id": {"type": "string"},
        "event_name": _text_or_null(),
        "status": _status(),
        "errors": {"type": "array", "items": ref("Issue")},
        "payload": {"type": "object", "description": "The event as it was sent"},
        "plan_version": {"type": ["integer", "null"]},
        "session": _text_or_null(),
        "received_at": {"type": "string", "format": "date-time"},
        "created_at": {"type": "string", "format": "date-time"},
    }
    return {"type": "object", "required": list(properties), "properties": properties}


def _query_schemas() -> dict[str, Schema]:
    counts: Schema = {
        "type": "object",
        "required": ["valid", "invalid"],
        "properties": {"valid": {"type": "integer"}, "invalid": {"type": "integer"}},
    }
    name_counts: Schema = {
        "type": "object",
        "required": ["event_name", "total", "valid", "invalid"],
        "properties": {
            "event_name": _text_or_null(),
            "total": {"type": "integer"},
            "valid": {"type": "integer"},
            "invalid": {"type": "integer"},
        },
    }
    return {
        "EventPage": {
            "type": "object",
            "required": ["events", "next_cursor"],
            "properties": {
                "events": {"type": "array", "items": ref("StoredEvent")},
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
                "by_event_name": {"type": "array", "items": name_counts},
            },
        },
        "WaitResult": {
            "type": "object",
            "required": ["reached", "count", "wanted", "events"],
            "properties": {
                "reached": {"type": "boolean"},
                "count": {"type": "integer"},
                "wanted": {"type": "integer"},
                "events": {"type": "array", "items": ref("StoredEvent")},
            },
        },
        "ResetResult": {
            "type": "object",
            "required": ["deleted", "session"],
            "properties": {"deleted": {"type": "integer"}, "session": _text_or_null()},
        },
    }


def _segment_schemas(limits: Limits) -> dict[str, Schema]:
    return {
        "SegmentMessage": {
            "type": "object",
            "description": f"A Segment message. {_message_size(limits)}",
            "properties": {
                "type": {"enum": ["track", *[c for c in SEGMENT_CALLS if c != "track"]]},
                "event": {"type": "string"},
                "messageId": _event_id(limits),
                "userId": _text_or_null(),
                "anonymousId": _text_or_null(),
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
                    "items": ref("SegmentMessage"),
                    "minItems": 1,
                    "maxItems": limits.max_events_per_request,
                },
                "writeKey": {"type": "string"},
                "sentAt": {"type": "string", "format": "date-time"},
            },
        },
    }


def _amplitude_event(limits: Limits) -> Schema:
    return {
        "type": "object",
        "description": f"An Amplitude event, named by event_type. {_message_size(limits)}",
        "required": ["event_type"],
        "properties": {
            "event_type": {"type": "string"},
            "insert_id": _event_id(limits),
            "user_id": _text_or_null(),
            "device_id": _text_or_null(),
            "time": {"type": "integer"},
            "event_properties": {"type": "object"},
            "user_properties": {"type": "object"},
        },
        "additionalProperties": True,
    }


def _amplitude_schemas() -> dict[str, Schema]:
    return {
        "AmplitudeUpload": {
            "type": "object",
            "required": ["api_key", "events"],
            "properties": {
                "api_key": {"type": "string", "description": "The app's write key"},
                "events": {
                    "type": "array",
                    "items": ref("AmplitudeEvent"),
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
                "results": {"type": "array", "items": ref("Verdict")},
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
    }


def _snowplow_payload(limits: Limits) -> Schema:
    return {
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
    }


def _posthog_schemas(limits: Limits) -> dict[str, Schema]:
    return {
        "PostHogEvent": {
            "type": "object",
            "properties": {
                "event": {"type": "string"},
                "distinct_id": {"type": ["string", "integer"]},
                "properties": {"type": "object"},
                "timestamp": {"type": "string", "format": "date-time"},
                "uuid": _event_id(limits),
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
                    "items": ref("PostHogEvent"),
                    "minItems": 1,
                    "maxItems": limits.max_events_per_request,
                },
                "sent_at": {"type": "string"},
            },
        },
        "PostHogCapture": {
            "description": "What posthog-js and the capture endpoints take: a batch, one event"
            " (with api_key or token), or an array of events (each with properties.token);"
            " as JSON, as gzip (by Content-Encoding, ?compression=gzip-js or the magic bytes),"
            " or as a data=<base64> form.",
            "oneOf": [
                ref("PostHogBatch"),
                {"allOf": [ref("PostHogEvent")], "properties": {"api_key": {"type": "string"}}},
                {"type": "array", "items": ref("PostHogEvent"), "minItems": 1},
            ],
        },
        "PostHogForm": {
            "type": "object",
            "required": ["data"],
            "properties": {
                "data": {"type": "string", "description": "The JSON body, base64"},
                "compression": {"enum": ["gzip-js", "base64"]},
            },
        },
    }


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
    "503": "queue_unavailable, with Retry-After: nothing was stored; retry",
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
